//! One hub process: the store, the bus, the outbox relay, the consumer groups, the connectors
//! and the HTTP API, started together and stopped together.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bus::{run_consumer, run_relay, BatchHandler, BatchLimit, Bus, Outbox, OutboxStore, RelayEnd};
use connectors::bank::inbound::StatementSource;
use connectors::connector::{ConnectorConfig as _, Ports};
use connectors::ecert::inbound::CertificateLookup;
use connectors::framework::control::{ConnectorControl, Connectors};
use connectors::province::inbound::CatalogueSource;
use connectors::seal::inbound::SealKeys;
use contracts::Catalogue;
use hub_core::anomaly::Detector;
use hub_core::Reference;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::audit::{self, AuditRecorder, Ledger};
use crate::app::cases::{CaseProcessor, Commands};
use crate::app::catalogue::{self, CatalogueSync};
use crate::app::deadlines;
use crate::app::grouped::GroupedOutbox;
use crate::app::housekeeping::{self, Retention};
use crate::app::intake::Intake;
use crate::app::notifier::{self, Notifier};
use crate::app::online_desk::OnlineDesk;
use crate::app::reconciliation::Reconciler;
use crate::app::reference::CurrentReference;
use crate::app::sliced::Sliced;
use crate::app::tokens::Tokens;
use crate::config::Config;
use crate::http;
use crate::store::{follow_pauses, keep_control_changes, Duty, Elections, Sharing, Store};

/// The hub's own consumer groups; each reads the topics the catalogue lists it under. The
/// hub's reactions to its own events run in the transaction that produced them (an
/// application is examined in the one that opens its case), so no group reads the hub's own
/// topics: they are for the systems around the hub. What comes back from outside does.
pub const HUB_CONSUMERS: [&str; 1] = ["hub-delivery"];

/// How recently a person must have waited for the writer for consumers to apply their batches
/// in slices: at a counter's pace, the next is due within it.
const PEOPLE_LATELY: Duration = Duration::from_secs(1);

pub struct Hub {
    pub store: Store,
    pub bus: Arc<Bus>,
    pub reference: CurrentReference,
    pub api_address: SocketAddr,
    pub ledger: Arc<Ledger>,
    /// The API's tokens: the demo and the tests issue theirs here.
    pub tokens: Tokens,
    /// The consumer groups this hub runs, connectors' included.
    pub consumer_groups: Vec<String>,
    shutdown: CancellationToken,
    /// Cancelled when the hub starts draining (readiness turns 503), before `shutdown`.
    draining: CancellationToken,
    tasks: JoinSet<()>,
    elections: Elections,
}

impl Hub {
    /// Starts everything; the API serves on `api_listener`.
    pub async fn start(config: &Config, api_listener: TcpListener) -> anyhow::Result<Hub> {
        let catalogue = Arc::new(Catalogue::builtin());
        let mut reference = reference_of(config);
        reference.public_url = match config.api.public_url.trim_end_matches('/') {
            "" => format!("http://{}", api_listener.local_addr()?),
            url => url.to_string(),
        };
        let store = Store::connect(&config.database.url, catalogue.clone()).await?;
        let sharing = match config.bus.bootstrap_servers.as_deref() {
            Some(servers) if !servers.trim().is_empty() => Sharing::Clustered,
            _ => Sharing::Alone,
        };
        let elections = store.elections(&config.database.url, sharing).await?;
        reference.restore_versions(store.matter_versions().await?).map_err(anyhow::Error::msg)?;
        let reference = CurrentReference::new(reference);
        let shutdown = CancellationToken::new();
        let draining = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (outbox, outbox_task) = GroupedOutbox::new(store.clone(), shutdown.clone());
        tasks.spawn(outbox_task);
        let outbox: Arc<dyn Outbox> = Arc::new(outbox);
        let subject_key = reference.get().subject_key.clone();
        // Each consumer group with its handler and the events it usually takes a batch.
        let max_batch = config.consumers.max_batch;
        let mut consumers: Vec<(&str, Arc<dyn BatchHandler>, usize)> = HUB_CONSUMERS
            .iter()
            .map(|&group| {
                let processor =
                    CaseProcessor { consumer: group.to_string(), store: store.clone(), reference: reference.clone() };
                (group, Arc::new(processor) as Arc<dyn BatchHandler>, max_batch)
            })
            .collect();

        // The connectors, each built from its section of the configuration.
        let certificates = Arc::new(CertificateLookup::new(config.ecert.clone(), outbox.clone(), subject_key.clone())?);
        let seals = config.seal.configured().then(|| SealKeys::new(&config.seal)).transpose()?.map(Arc::new);
        let (intake, intake_task) = Intake::new(store.clone(), reference.clone(), shutdown.clone());
        tasks.spawn(intake_task);
        let (commands, commands_task) = Commands::new(store.clone(), reference.clone(), shutdown.clone());
        tasks.spawn(commands_task);
        let desk = Arc::new(OnlineDesk {
            reference: reference.clone(),
            intake: intake.clone(),
            certificates: certificates.clone(),
        });
        let ports = Ports {
            outbox: outbox.clone(),
            subject_key,
            cases: Arc::new(store.clone()),
            desk,
            certificates: certificates.clone(),
        };
        let mut saved_controls = store.saved_controls().await?;
        let (journal, control_changes) = tokio::sync::mpsc::unbounded_channel();
        tasks.spawn(keep_control_changes(store.clone(), control_changes, shutdown.clone()));
        let mut controls = Vec::new();
        let mut health = Vec::new();
        let mut connector_routes = Vec::new();
        for section in config.connectors().into_iter().filter(|section| section.configured()) {
            let name = section.name();
            let control =
                ConnectorControl::restore(name, saved_controls.remove(name).unwrap_or_default(), Some(journal.clone()));
            let connector = section.build(&ports, control.clone())?;
            consumers.push((connector.name, connector.outbound, section.max_batch().unwrap_or(max_batch)));
            connector_routes.extend(connector.routes);
            health.push((connector.name, connector.health));
            controls.push(control);
        }
        let connectors: Connectors = Arc::new(controls);
        tasks.spawn(follow_pauses(store.clone(), connectors.clone(), shutdown.clone()));
        connector_routes.extend(connectors::framework::control::routes(connectors.clone()));

        let bus = Arc::new(Bus::connect(&config.bus, catalogue.clone()).await?);
        let (relay_store, relay_bus, wake) = (store.clone(), bus.clone(), store.outbox_written.clone());
        tasks.spawn(elections.run_elected(Duty::Relay, shutdown.clone(), move |stop| {
            relay(relay_store.clone(), relay_bus.clone(), wake.clone(), stop)
        }));

        let notifier = Notifier::new(&config.mail, store.clone(), reference.get())?;
        consumers.push((notifier::CONSUMER, Arc::new(notifier), config.consumers.notifier_max_batch));
        let ledger = Arc::new(ledger_of(config, store.clone(), &reference.get())?);
        if config.audit.keep_ledger {
            let recorder = AuditRecorder { ledger: ledger.clone() };
            consumers.push((audit::CONSUMER, Arc::new(recorder), config.consumers.audit_max_batch));
            let every = Duration::from_secs(config.audit.checkpoint_seconds.max(1));
            let (keeper, retention_days) = (ledger.clone(), config.audit.retention_days);
            tasks.spawn(elections.run_elected(Duty::LedgerKeeping, shutdown.clone(), move |stop| {
                audit::keep(keeper.clone(), every, retention_days, stop)
            }));
            let (sections, whole) = config.digests();
            ledger.record_start(sections, whole).await?;
        }
        let every = Duration::from_secs(config.workflow.deadline_scan_seconds.max(1));
        let (scan_store, scan_reference) = (store.clone(), reference.clone());
        tasks.spawn(elections.run_elected(Duty::Deadlines, shutdown.clone(), move |stop| {
            deadlines::scan_every(scan_store.clone(), scan_reference.clone(), every, stop)
        }));
        let catalogue_sync = Arc::new(CatalogueSync {
            source: CatalogueSource::new(config.province.clone())?,
            store: store.clone(),
            reference: reference.clone(),
            running: Default::default(),
        });
        let longest_consumed =
            catalogue.topics.iter().filter(|t| !t.consumers.is_empty()).map(|t| t.retention_ms).max().unwrap_or(0);
        let retention = Retention::new(
            config.database.outbox_retention_days,
            config.database.applied_retention_days,
            longest_consumed,
        );
        let prune_store = store.clone();
        tasks.spawn(elections.run_elected(Duty::Pruning, shutdown.clone(), move |stop| {
            housekeeping::prune_every(prune_store.clone(), retention, Duration::from_secs(3_600), stop)
        }));
        if let Some(keep) = bus.keep_consumed() {
            let trim_bus = bus.clone();
            tasks.spawn(elections.run_elected(Duty::LogTrimming, shutdown.clone(), move |stop| {
                bus::trim::trim_every(trim_bus.clone(), keep, Duration::from_secs(5), stop)
            }));
        }
        let every = Duration::from_secs(1);
        tasks.spawn(catalogue::follow_stored(store.clone(), reference.clone(), every, shutdown.clone()));
        if config.province.catalogue_sync_seconds > 0 {
            let every = Duration::from_secs(config.province.catalogue_sync_seconds);
            let sync = catalogue_sync.clone();
            tasks.spawn(elections.run_elected(Duty::CatalogueSync, shutdown.clone(), move |stop| {
                catalogue::sync_every(sync.clone(), every, stop)
            }));
        }
        let consumer_groups: Vec<String> = consumers.iter().map(|(group, _, _)| group.to_string()).collect();
        let slice = config.consumers.slice_while_people_wait;
        for (group, handler, usual) in consumers {
            let handler: Arc<dyn BatchHandler> = if slice == 0 {
                handler
            } else {
                let store = store.clone();
                Arc::new(Sliced { handler, slice, people_waiting: move || store.people_at_the_writer(PEOPLE_LATELY) })
            };
            let topics: Vec<String> = catalogue.topics_read_by(group).map(|t| t.name.clone()).collect();
            if topics.is_empty() {
                bail!("topics/catalogue.toml lists no topic for consumer group {group}");
            }
            let limit = BatchLimit { usual, behind: config.consumers.max_batch_behind };
            let (bus, group, stop) = (bus.clone(), group.to_string(), shutdown.clone());
            tasks.spawn(async move {
                if let Err(error) = run_consumer(bus, group.clone(), topics, handler, limit, stop).await {
                    tracing::error!(%error, group, "consumer stopped");
                }
            });
        }

        let api_address = api_listener.local_addr()?;
        let tokens = Tokens::new(store.clone(), reference.clone());
        let reconciler = Arc::new(Reconciler {
            source: StatementSource::new(config.bank.clone(), outbox.clone())?,
            store: store.clone(),
        });
        let services = http::Services {
            cases: http::cases::CasesState {
                store: store.clone(),
                reference: reference.clone(),
                intake,
                commands,
                certificates,
                seals: seals.clone(),
            },
            operations: http::operations::OperationsState {
                store: store.clone(),
                bus: bus.clone(),
                catalogue: catalogue_sync,
                reconciler,
            },
            audit: http::audit::AuditState { ledger: ledger.clone(), reference: reference.clone() },
            tokens: tokens.clone(),
            probe: http::metrics::Probe {
                store: store.clone(),
                bus: bus.clone(),
                connectors,
                health: Arc::new(health),
                draining: draining.clone(),
            },
        };
        let routes = http::table(services, connector_routes);
        let app = http::router(routes, tokens.clone(), config.audit.keep_ledger.then(|| ledger.clone()));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(api_listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = served.await {
                tracing::error!(%error, "HTTP API stopped");
            }
        });
        tracing::info!(%api_address, database = config.database.url, kafka = bus.bootstrap(), "hub started");
        Ok(Hub {
            store,
            bus,
            reference,
            api_address,
            ledger,
            tokens,
            consumer_groups,
            shutdown,
            draining,
            tasks,
            elections,
        })
    }

    /// A clean stop, as on SIGTERM: readiness answers 503 at once while requests are still
    /// served for `grace`, then everything stops (`stop`).
    pub async fn drain(self, grace: Duration) {
        self.draining.cancel();
        tracing::info!(grace_seconds = grace.as_secs(), "draining: readiness answers 503");
        tokio::time::sleep(grace).await;
        self.stop().await;
    }

    /// Stops the consumers, the relay and the API, waiting a little for them to finish.
    pub async fn stop(mut self) {
        self.draining.cancel();
        self.shutdown.cancel();
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drained).await.is_err() {
            self.tasks.abort_all();
        }
        self.elections.release().await;
    }
}

/// The built-in reference data with the county's own keys.
fn reference_of(config: &Config) -> Reference {
    let mut reference = Reference::builtin();
    if config.workflow.pickup_secret.is_empty() {
        tracing::warn!("workflow.pickup_secret is not set: locker pickup codes use the development key");
    } else {
        reference.pickup_secret = config.workflow.pickup_secret.clone().into_bytes();
    }
    if config.audit.subject_key.is_empty() {
        tracing::warn!("audit.subject_key is not set: data subjects are hashed with the development key");
    } else {
        reference.subject_key = config.audit.subject_key.clone().into_bytes();
    }
    if config.workflow.review_secret.is_empty() {
        tracing::warn!("workflow.review_secret is not set: review links are signed with the development key");
    } else {
        reference.review_key = config.workflow.review_secret.clone().into_bytes();
    }
    reference.electronic_seals = config.seal.configured();
    reference
}

/// The audit ledger as configured.
fn ledger_of(config: &Config, store: Store, reference: &Reference) -> anyhow::Result<Ledger> {
    let detector =
        Detector::new(config.audit.anomaly.clone(), reference.calendar.clone()).map_err(anyhow::Error::msg)?;
    let signing_key = audit::signing_key(&config.audit.signing_key)?;
    Ok(Ledger::new(
        store,
        signing_key,
        reference.subject_key.clone(),
        detector,
        config.audit.archive_dir.clone().into(),
    ))
}

/// The tokens and the ledger of the configured database, for managing tokens from the command
/// line where the hub runs (the first integrator's token has no one to ask for it over the API).
pub async fn token_desk(config: &Config) -> anyhow::Result<(Tokens, Ledger)> {
    let store = Store::connect(&config.database.url, Arc::new(Catalogue::builtin())).await?;
    let mut reference = Reference::builtin();
    if !config.audit.subject_key.is_empty() {
        reference.subject_key = config.audit.subject_key.clone().into_bytes();
    }
    let ledger = ledger_of(config, store.clone(), &reference)?;
    Ok((Tokens::new(store, CurrentReference::new(reference)), ledger))
}

/// Binds the API address from the configuration.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| format!("binding the HTTP API to {listen}"))
}

/// Runs the outbox relay until `stop`. When the broker turns out to be another cluster than
/// the outbox last published to (its log is not the one counted on), the topics are made again
/// and every event some consumer has not applied is sent again (the consumers are idempotent),
/// then relaying goes on.
pub async fn relay(store: Store, bus: Arc<Bus>, wake: Arc<tokio::sync::Notify>, stop: CancellationToken) {
    let retry = bus::RetryPolicy::default();
    let mut failures = 0;
    while !stop.is_cancelled() {
        let outbox: Arc<dyn OutboxStore> = Arc::new(store.clone());
        let recovered = match run_relay(outbox, &bus, wake.clone(), stop.clone()).await {
            Ok(RelayEnd::Stopped) => return,
            Ok(RelayEnd::BrokerLostLog { was, now }) => {
                tracing::warn!(was, now, "the broker is another cluster: sending again what is unsettled");
                recover_lost_log(&store, &bus, &now).await
            }
            Err(error) => Err(error),
        };
        match recovered {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                tracing::error!(%error, failures, "the outbox relay cannot go on; retrying");
                retry.wait(failures, &stop).await;
            }
        }
    }
}

/// The new cluster is kept last: a relay stopped half-way finds the change again.
async fn recover_lost_log(store: &Store, bus: &Bus, cluster: &str) -> anyhow::Result<()> {
    bus.ensure_topics().await?;
    let (republished, settled) = store.resettle_outbox().await?;
    tracing::warn!(republished, settled, "events not applied by every consumer queued again");
    store.keep_broker_cluster(cluster).await
}
