//! The in-process Kafka-compatible broker (tansu, in-memory storage) used when no bootstrap
//! servers are configured. Its log does not survive the process: durability comes from the
//! database outbox (see README, "Durability").
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;
use tokio::time::Instant;

use anyhow::{bail, Context as _};
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
use url::Url;

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
        let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(1)
            .cluster_id("county-hub-embedded")
            .incarnation_id(uuid::Uuid::now_v7())
            .advertised_listener(listener.clone())
            .storage(Url::parse("memory://county-hub/")?)
            .listener(listener)
            .silent(true)
            .build()
            .await
            .context("building the tansu broker")?;
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
