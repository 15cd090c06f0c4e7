//! Health, readiness and Prometheus metrics of one hub process. The figures are read when
//! scraped — cases per state from the store, lag from the broker's committed offsets,
//! connectors from their controls — so nothing is counted twice across restarts.
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::Json;
use bus::Bus;
use connectors::connector::HealthCheck;
use connectors::framework::control::{ConnectorStatus, Connectors};
use contracts::catalogue::DEAD_LETTER_TOPIC;
use hub_core::access::Rule;
use hub_web::{ApiResult, Route};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Each connector's counterpart check, by connector name.
pub type ConnectorHealth = Arc<Vec<(&'static str, HealthCheck)>>;
use hub_core::CaseState;

/// How long readiness waits for the database or the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Probe {
    pub store: Store,
    pub bus: Arc<Bus>,
    pub connectors: Connectors,
    /// Each connector's counterpart check.
    pub health: ConnectorHealth,
    /// Cancelled when the hub starts draining: readiness answers 503 from then on.
    pub draining: CancellationToken,
}

pub fn routes() -> Vec<Route<Probe>> {
    vec![
        Route::get("/health", Rule::Public, || async { Json(json!({"status": "ok"})) }).doc("service", "liveness"),
        Route::get("/ready", Rule::Public, ready)
            .doc(
                "service",
                "readiness: the database and the broker answer (503 naming what does not, or draining); each connector's counterpart, reported",
            ),
        Route::get("/metrics", Rule::Public, metrics).doc("service", "Prometheus metrics (OpenMetrics text)").produces("application/openmetrics-text"),
    ]
}

/// Ready when the database answers and the broker gives a topic's offsets; 503 naming what
/// does not answer otherwise.
async fn ready(State(probe): State<Probe>) -> Response {
    if probe.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "draining": true}))).into_response();
    }
    let database = match tokio::time::timeout(PROBE_TIMEOUT, probe.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(error)) => format!("{error:#}"),
        Err(_) => "no answer within 5 s".into(),
    };
    let kafka = match tokio::time::timeout(PROBE_TIMEOUT, probe.bus.message_count(DEAD_LETTER_TOPIC)).await {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(error)) => format!("{error:#}"),
        Err(_) => "no answer within 5 s".into(),
    };
    let ready = database == "ok" && kafka == "ok";
    // Reported, not required: a connector whose counterpart is down waits and retries on its
    // own, and the hub keeps taking applications meanwhile.
    let checks = probe.health.iter().map(|(name, check)| async move { (*name, check.check().await) });
    let counterparts: BTreeMap<&str, String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .map(|(name, outcome)| (name, outcome.map_or_else(|error| format!("unreachable: {error}"), |()| "ok".into())))
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ready, "database": database, "kafka": kafka, "counterparts": counterparts})))
        .into_response()
}

type Labels = Vec<(&'static str, String)>;

/// A gauge family registered under `name`.
fn family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

async fn metrics(State(probe): State<Probe>) -> ApiResult<Response> {
    let text = exposition(&probe).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

/// What a scrape shows, read before anything is encoded.
struct Figures {
    cases: BTreeMap<String, i64>,
    warnings: BTreeMap<String, i64>,
    dead_letters: i64,
    lag: BTreeMap<String, i64>,
    handled: BTreeMap<String, i64>,
    connectors: Vec<ConnectorStatus>,
    heap_in_use: Option<u64>,
    writer_held: Option<std::time::Duration>,
}

async fn exposition(probe: &Probe) -> anyhow::Result<String> {
    let counted = probe.store.count_by_state().await?;
    let cases = CaseState::ALL
        .iter()
        .map(|state| (state.as_str().to_string(), counted.get(state.as_str()).copied().unwrap_or(0)))
        .collect();
    let mut warnings: BTreeMap<String, i64> =
        ["warning", "yellow", "red"].into_iter().map(|level| (level.to_string(), 0)).collect();
    for (mut level, count) in probe.store.tally_events("DeadlineWarning", &["level"]).await? {
        *warnings.entry(level.remove(0)).or_default() += count;
    }
    let dead_letters = probe.bus.message_count(DEAD_LETTER_TOPIC).await?;
    let mut lag = BTreeMap::new();
    for (group, behind) in probe.bus.lag_by_group().await {
        match behind {
            Ok(behind) => {
                lag.insert(group, behind);
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), group, "consumer lag could not be read"),
        }
    }
    let connectors = probe.connectors.iter().map(|connector| connector.status()).collect();
    let handled = probe.bus.handled_counts().into_iter().map(|(group, count)| (group, count as i64)).collect();
    let heap_in_use = crate::memory::heap_in_use();
    let writer_held = probe.store.writer_held();
    encode_figures(Figures { cases, warnings, dead_letters, lag, handled, connectors, heap_in_use, writer_held })
}

/// The figures in the OpenMetrics text format.
fn encode_figures(figures: Figures) -> anyhow::Result<String> {
    let mut registry = Registry::default();
    let labelled =
        |registry: &mut Registry, name: &str, help: &str, label: &'static str, values: BTreeMap<String, i64>| {
            let gauges = family(registry, name, help);
            for (value_label, value) in values {
                gauges.get_or_create(&vec![(label, value_label)]).set(value);
            }
        };
    labelled(&mut registry, "hub_cases", "Cases in each state", "state", figures.cases);
    labelled(&mut registry, "hub_deadline_warnings", "Time-limit warnings raised, by level", "level", figures.warnings);
    labelled(
        &mut registry,
        "hub_consumer_lag",
        "Messages not yet committed by each consumer group, all partitions",
        "group",
        figures.lag,
    );
    labelled(
        &mut registry,
        "hub_messages_handled",
        "Messages this instance's consumers handled since it started, by consumer group (its share of the work)",
        "group",
        figures.handled,
    );
    if let Some(bytes) = figures.heap_in_use {
        let heap = Gauge::<i64>::default();
        heap.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        registry.register("hub_heap_in_use_bytes", "This process's heap allocated and not yet freed", heap);
    }
    if let Some(held) = figures.writer_held {
        let seconds = Counter::<f64, AtomicU64>::default();
        seconds.inc_by(held.as_secs_f64());
        registry.register(
            "hub_writer_held_seconds",
            "How long transactions have held SQLite's one writer: its rate is the share of time the writer is busy",
            seconds,
        );
    }
    let dead_letters = Gauge::<i64>::default();
    dead_letters.set(figures.dead_letters);
    registry.register("hub_dead_letters", "Messages on the dead-letter topic", dead_letters);
    let by_connector = |value: &dyn Fn(&ConnectorStatus) -> i64| {
        figures.connectors.iter().map(|status| (status.name.clone(), value(status))).collect::<BTreeMap<_, _>>()
    };
    labelled(
        &mut registry,
        "hub_connector_running",
        "1 while a connector runs, 0 while paused or restarting",
        "connector",
        by_connector(&|s| i64::from(s.state == "running")),
    );
    labelled(
        &mut registry,
        "hub_connector_incidents_open",
        "A connector's incidents not yet resolved",
        "connector",
        by_connector(&|s| s.incidents.iter().filter(|i| i.resolved_at.is_none()).count() as i64),
    );
    labelled(
        &mut registry,
        "hub_connector_incidents",
        "A connector's incidents (failed calls that stopped it), ever",
        "connector",
        by_connector(&|s| s.incidents.len() as i64),
    );
    labelled(
        &mut registry,
        "hub_connector_batches_applied",
        "Batches a connector applied since the hub started",
        "connector",
        by_connector(&|s| s.batches_applied as i64),
    );
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}
