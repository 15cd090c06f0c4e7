//! Wiring: the store, the bus, the outbox relay, the consumer groups, the connectors and the
//! HTTP API of one hub process.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bus::{run_consumer, run_relay, BatchHandler, Bus, Outbox, OutboxStore};
use connectors::bank::{self, inbound::StatementSource, outbound::BankOutbound};
use connectors::control::{self, ConnectorControl, Connectors};
use connectors::ecert::{self, inbound::CertificateLookup, outbound::EcertOutbound};
use connectors::postal::{self, outbound::PostalOutbound};
use connectors::province::{self, inbound::CatalogueSource, outbound::{CaseDirectory, ProvinceOutbound}};
use contracts::Catalogue;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::notify::{self, Notifier};
use crate::domain::anomaly::Detector;
use crate::domain::Reference;
use crate::bank::Reconciler;
use crate::province::{CatalogueSync, CurrentReference, OnlineDesk};
use crate::store::{keep_control_changes, Store};
use crate::workflow::{check_deadlines, CaseProcessor, Intake};
use crate::access::{self, Gate, Tokens};
use crate::{api, metrics};
use crate::audit::{self, AuditRecorder, Ledger};

/// The hub's own consumer groups; each reads the topics the catalogue lists it under. The
/// hub's reactions to its own events run in the transaction that produced them, so no group
/// reads hub.cases.lifecycle: that topic is for the systems around the hub.
pub const HUB_CONSUMERS: [&str; 2] = ["hub-acceptance", "hub-delivery"];

pub struct Hub {
    pub store: Store,
    pub bus: Arc<Bus>,
    pub reference: CurrentReference,
    pub api_address: SocketAddr,
    pub ledger: Arc<Ledger>,
    /// The API's tokens: the demo and the tests issue theirs here.
    pub tokens: Tokens,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Hub {
    /// Starts everything; the API serves on `api_listener`.
    pub async fn start(config: &Config, api_listener: TcpListener) -> anyhow::Result<Hub> {
        if config.postal.base_url.is_empty() {
            bail!("postal.base_url is not set (HUB_POSTAL__BASE_URL): the postal connector needs the carrier's API");
        }
        if config.ecert.base_url.is_empty() {
            bail!("ecert.base_url is not set (HUB_ECERT__BASE_URL): the e-certificate connector needs the repository's API");
        }
        if config.bank.base_url.is_empty() {
            bail!("bank.base_url is not set (HUB_BANK__BASE_URL): the bank connector needs the bank network's collection API");
        }
        if config.province.base_url.is_empty() {
            bail!("province.base_url is not set (HUB_PROVINCE__BASE_URL): the provincial platform connector needs the platform's exchange API");
        }
        let catalogue = Arc::new(Catalogue::builtin());
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
        let store = Store::connect(&config.database.url, catalogue.clone()).await?;
        reference.restore_versions(store.matter_versions().await?).map_err(anyhow::Error::msg)?;
        let reference = CurrentReference::new(reference);
        let (republished, settled) = store.resettle_outbox().await?;
        if republished > 0 {
            tracing::info!(republished, settled, "re-publishing events not yet applied by every consumer");
        }
        let bus = Arc::new(Bus::connect(&config.bus, catalogue.clone()).await?);
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let relay_store: Arc<dyn OutboxStore> = Arc::new(store.clone());
        tasks.spawn(run_relay(relay_store, bus.producer()?, store.outbox_written.clone(), shutdown.clone()));

        let outbox: Arc<dyn Outbox> = Arc::new(store.clone());
        let mut handlers: Vec<(&str, Arc<dyn BatchHandler>)> = HUB_CONSUMERS
            .iter()
            .map(|&group| {
                let processor = CaseProcessor { consumer: group.to_string(), store: store.clone(), reference: reference.clone() };
                (group, Arc::new(processor) as Arc<dyn BatchHandler>)
            })
            .collect();
        let subject_key = reference.get().subject_key.clone();
        let mut saved_controls = store.saved_controls().await?;
        let (journal, control_changes) = tokio::sync::mpsc::unbounded_channel();
        tasks.spawn(keep_control_changes(store.clone(), control_changes, shutdown.clone()));
        let [postal_control, ecert_control, province_control, bank_control] = [postal::CONSUMER, ecert::CONSUMER, province::CONSUMER, bank::CONSUMER]
            .map(|name| ConnectorControl::restore(name, saved_controls.remove(name).unwrap_or_default(), Some(journal.clone())));
        let connectors: Connectors = Arc::new(vec![postal_control.clone(), ecert_control.clone(), province_control.clone(), bank_control.clone()]);
        handlers.push((bank::CONSUMER, Arc::new(BankOutbound::new(config.bank.clone(), outbox.clone(), bank_control)?)));
        let reconciler = Arc::new(Reconciler { source: StatementSource::new(config.bank.clone(), outbox.clone())?, store: store.clone() });
        handlers.push((postal::CONSUMER, Arc::new(PostalOutbound::new(config.postal.clone(), outbox.clone(), postal_control)?)));
        handlers.push((ecert::CONSUMER, Arc::new(EcertOutbound::new(config.ecert.clone(), outbox.clone(), ecert_control)?)));
        let directory: Arc<dyn CaseDirectory> = Arc::new(store.clone());
        handlers.push((province::CONSUMER, Arc::new(ProvinceOutbound::new(config.province.clone(), outbox.clone(), province_control, directory, subject_key.clone())?)));
        let lookup = Arc::new(CertificateLookup::new(config.ecert.clone(), outbox.clone(), subject_key.clone())?);
        handlers.push((notify::CONSUMER, Arc::new(Notifier::new(&config.mail, store.clone(), reference.get())?)));
        let ledger = Arc::new(ledger_of(config, store.clone(), &reference.get())?);
        if config.audit.keep_ledger {
            handlers.push((audit::CONSUMER, Arc::new(AuditRecorder { ledger: ledger.clone() })));
            tasks.spawn(audit::sign_checkpoints(ledger.clone(), Duration::from_secs(config.audit.checkpoint_seconds.max(1)), shutdown.clone()));
            if config.audit.retention_days > 0 {
                tasks.spawn(audit::archive_expired(ledger.clone(), config.audit.retention_days, shutdown.clone()));
            }
            let (sections, whole) = config.digests();
            ledger.record_start(sections, whole).await?;
        }
        tasks.spawn(scan_deadlines(store.clone(), reference.clone(), Duration::from_secs(config.workflow.deadline_scan_seconds.max(1)), shutdown.clone()));
        let catalogue_sync = Arc::new(CatalogueSync {
            source: CatalogueSource::new(config.province.clone())?,
            store: store.clone(),
            reference: reference.clone(),
            running: Default::default(),
        });
        if config.province.catalogue_sync_seconds > 0 {
            tasks.spawn(sync_catalogue(catalogue_sync.clone(), Duration::from_secs(config.province.catalogue_sync_seconds), shutdown.clone()));
        }
        for (group, handler) in handlers {
            let topics: Vec<String> = catalogue.topics.iter().filter(|t| t.consumers.iter().any(|c| c == group)).map(|t| t.name.clone()).collect();
            if topics.is_empty() {
                bail!("topics/catalogue.toml lists no topic for consumer group {group}");
            }
            let (bus, group, stop, max_batch) = (bus.clone(), group.to_string(), shutdown.clone(), config.consumers.max_batch);
            tasks.spawn(async move {
                if let Err(error) = run_consumer(bus, group.clone(), topics, handler, max_batch, stop).await {
                    tracing::error!(%error, group, "consumer stopped");
                }
            });
        }

        let api_address = api_listener.local_addr()?;
        let tokens = Tokens::new(store.clone(), reference.clone());
        let (intake, intake_task) = Intake::new(store.clone(), reference.clone(), shutdown.clone());
        tasks.spawn(intake_task);
        let desk = Arc::new(OnlineDesk { reference: reference.clone(), intake: intake.clone(), certificates: lookup.clone() });
        let app = api::router(api::ApiState { store: store.clone(), reference: reference.clone(), intake, certificates: lookup.clone(), bus: bus.clone(), catalogue: catalogue_sync, reconciler })
            .merge(province::inbound::router(config.province.clone(), desk, outbox.clone(), subject_key))
            .merge(bank::inbound::router(config.bank.clone(), outbox.clone()))
            .merge(postal::inbound::router(outbox))
            .merge(ecert::inbound::router(lookup))
            .merge(control::router(connectors.clone()))
            .merge(metrics::router(metrics::Probe { store: store.clone(), bus: bus.clone(), connectors }))
            .merge(audit::router(ledger.clone(), reference.clone()))
            .merge(access::router(tokens.clone()))
            .merge(crate::schema_registry::router())
            .merge(crate::openapi::router())
            .merge(crate::console::router());
        let app = if config.audit.keep_ledger { app.layer(axum::middleware::from_fn_with_state(ledger.clone(), audit::record_in_ledger)) } else { app };
        // Outermost: the gate lets in, names the asker for the ledger's middleware, and masks.
        let gate = Arc::new(Gate { tokens: tokens.clone(), ledger: config.audit.keep_ledger.then(|| ledger.clone()) });
        let app = app.layer(axum::middleware::from_fn_with_state(gate, access::guard));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(api_listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = served.await {
                tracing::error!(%error, "HTTP API stopped");
            }
        });
        tracing::info!(%api_address, database = config.database.url, kafka = bus.bootstrap(), "hub started");
        Ok(Hub { store, bus, reference, api_address, ledger, tokens, shutdown, tasks })
    }

    /// Stops the consumers, the relay and the API, waiting a little for them to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drained).await.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// The audit ledger as configured.
fn ledger_of(config: &Config, store: Store, reference: &Reference) -> anyhow::Result<Ledger> {
    let detector = Detector::new(config.audit.anomaly.clone(), reference.calendar.clone()).map_err(anyhow::Error::msg)?;
    let signing_key = audit::signing_key(&config.audit.signing_key)?;
    Ok(Ledger::new(store, signing_key, reference.subject_key.clone(), detector, config.audit.archive_dir.clone().into()))
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

/// Checks the durable deadline timers every `every` until `shutdown`.
async fn scan_deadlines(store: Store, reference: CurrentReference, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = check_deadlines(&store, &reference.get(), crate::store::now_ms()).await {
            tracing::warn!(error = format!("{error:#}"), "deadline check failed; retrying at the next tick");
        }
    }
}

/// Synchronises the matter catalogue with the provincial platform every `every` until
/// `shutdown`, the first time at start.
async fn sync_catalogue(sync: Arc<CatalogueSync>, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match sync.run().await {
            Ok(report) if !report.revised.is_empty() => tracing::info!(revised = ?report.revised, "matter catalogue synchronised"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "matter catalogue sync failed; retrying at the next tick"),
        }
    }
}

/// Binds the API address from the configuration.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| format!("binding the HTTP API to {listen}"))
}
