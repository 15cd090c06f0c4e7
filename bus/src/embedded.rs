//! The in-process Kafka-compatible broker (tansu, in-memory storage) used when no bootstrap
//! servers are configured. Its log does not survive the process: durability comes from the
//! database outbox (see README, "Durability").
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;
use tokio::time::Instant;

use anyhow::{bail, Context as _};
use contracts::Catalogue;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_sans_io::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use tansu_storage::{Storage as _, StorageContainer};
use tokio::task::JoinHandle;
use url::Url;

const NODE_ID: i32 = 1;
const STORAGE: &str = "memory://county-hub/";

/// A cluster id of its own for every start: the log is in memory, so a broker started again is
/// another cluster, and the hubs' relay can tell (see `outbox::RelayEnd::BrokerLostLog`).
fn cluster_id() -> String {
    format!("county-hub-{}", uuid::Uuid::now_v7().simple())
}

pub struct EmbeddedBroker {
    bootstrap: String,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<EmbeddedBroker> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        EmbeddedBroker::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
    }

    /// Starts a broker listening on `address` (`hub broker --listen`: one broker several hub
    /// processes share here) and waits until it accepts connections.
    pub async fn start_on(address: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
        let listener = Url::parse(&format!("tcp://{address}"))?;
        let broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(NODE_ID)
            .cluster_id(cluster_id())
            .incarnation_id(uuid::Uuid::now_v7())
            .advertised_listener(listener.clone())
            .storage(Url::parse(STORAGE)?)
            .listener(listener)
            .silent(true)
            .build()
            .await
            .context("building the tansu broker")?;
        EmbeddedBroker::serve(broker, address).await
    }

    /// Like `start_on`, with the catalogue's topics made before the first client can connect.
    /// A standalone broker that restarts loses its log and its topics; hubs still connected
    /// would fetch from topics that no longer exist, and tansu 0.6.0 answers such a fetch
    /// with neither the topic's name nor its id, on which librdkafka 2.12 crashes.
    /// (Built by hand, so tansu's own console output is on: it prints when it is ready.)
    pub async fn start_with_topics(address: SocketAddr, catalogue: &Catalogue) -> anyhow::Result<EmbeddedBroker> {
        let listener = Url::parse(&format!("tcp://{address}"))?;
        let cluster = cluster_id();
        let storage = StorageContainer::builder()
            .cluster_id(cluster.clone())
            .node_id(NODE_ID)
            .advertised_listener(listener.clone())
            .storage(Url::parse(STORAGE)?)
            .silent(true)
            .build()
            .await
            .context("building the tansu storage")?;
        for spec in &catalogue.topics {
            let configs =
                [("cleanup.policy", spec.cleanup_policy.clone()), ("retention.ms", spec.retention_ms.to_string())]
                    .into_iter()
                    .map(|(name, value)| CreatableTopicConfig::default().name(name.into()).value(Some(value)))
                    .collect();
            let topic = CreatableTopic::default()
                .name(spec.name.clone())
                .num_partitions(spec.partitions)
                .replication_factor(1)
                .assignments(Some(Vec::new()))
                .configs(Some(configs));
            storage.create_topic(topic, false).await.with_context(|| format!("creating topic {}", spec.name))?;
        }
        let groups = Controller::with_storage(storage.clone()).context("the tansu group coordinator")?;
        let broker = Broker::new(NODE_ID, &cluster, listener.clone(), listener, storage, groups, uuid::Uuid::now_v7());
        EmbeddedBroker::serve(broker, address).await
    }

    async fn serve(
        mut broker: Broker<Controller<StorageContainer>, StorageContainer>,
        address: SocketAddr,
    ) -> anyhow::Result<EmbeddedBroker> {
        // `serve` rather than `main`: the hub, not the broker, owns the process's signals.
        let task = tokio::spawn(async move {
            if let Err(error) = broker.serve(Instant::now()).await {
                tracing::error!(%error, "embedded broker stopped");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            if Instant::now() > deadline || task.is_finished() {
                bail!("the embedded broker did not listen on {address}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(%address, "embedded Kafka-compatible broker started");
        Ok(EmbeddedBroker { bootstrap: address.to_string(), task })
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Until the broker stops by itself (it only does on an error).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
