//! Operating connectors: pause and resume, incidents raised when a counterpart stays unreachable
//! past the retry policy, automatic restart with backoff, and the figures an operator looks at.
//! The hub serves these as its connector admin API; `hub connectors` is the CLI over it.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use hub_core::access::{Role, Rule};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::calls::now_ms;
use hub_web::{ApiResult, BadRequest, Route, ValidJson};

/// First wait before a connector paused by an incident tries again; doubled per consecutive
/// incident up to `MAX_RESTART_DELAY`.
const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub opened_at: i64,
    pub reason: String,
    pub resolved_at: Option<i64>,
    /// `operator` or `recovered` (the counterpart answered again after a restart).
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    pub name: String,
    /// `running`, `paused` (by an operator) or `restarting` (after an incident).
    pub state: String,
    pub paused_reason: Option<String>,
    pub batches_applied: u64,
    pub incidents: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq)]
enum Run {
    Running,
    Paused(String),
    /// Paused by an incident; tries again at the given instant (epoch ms).
    Restarting {
        at: i64,
    },
}

struct Figures {
    batches_applied: u64,
    incidents: Vec<Incident>,
    consecutive_incidents: u32,
}

/// What an operator must find again after the hub restarts: the incidents and an operator's
/// pause (a connector paused for maintenance at its counterpart stays paused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedControl {
    pub paused_reason: Option<String>,
    pub incidents: Vec<Incident>,
}

/// A change to keep, sent to the hub's journal writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlChange {
    /// An incident opened or resolved.
    Incident { connector: String, incident: Incident },
    /// Paused by an operator (Some) or no longer (None).
    Pause { connector: String, reason: Option<String> },
}

pub type ControlJournal = mpsc::UnboundedSender<ControlChange>;

/// The run switch and figures of one connector.
pub struct ConnectorControl {
    name: String,
    run: watch::Sender<Run>,
    figures: Mutex<Figures>,
    journal: Option<ControlJournal>,
}

impl ConnectorControl {
    /// A connector with no history that keeps nothing (tests, tools).
    pub fn new(name: &str) -> Arc<ConnectorControl> {
        ConnectorControl::restore(name, SavedControl::default(), None)
    }

    /// A connector as it was left, every later change sent to `journal`.
    pub fn restore(name: &str, saved: SavedControl, journal: Option<ControlJournal>) -> Arc<ConnectorControl> {
        let run = match saved.paused_reason {
            Some(reason) => Run::Paused(reason),
            None => Run::Running,
        };
        Arc::new(ConnectorControl {
            name: name.into(),
            run: watch::Sender::new(run),
            figures: Mutex::new(Figures { batches_applied: 0, incidents: saved.incidents, consecutive_incidents: 0 }),
            journal,
        })
    }

    fn keep(&self, change: ControlChange) {
        if let Some(journal) = &self.journal {
            // The writer only goes away when the hub stops.
            let _ = journal.send(change);
        }
    }

    fn keep_pause(&self, reason: Option<String>) {
        self.keep(ControlChange::Pause { connector: self.name.clone(), reason });
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits while the connector is paused, or until an incident's restart is due.
    pub async fn until_running(&self) {
        let mut run = self.run.subscribe();
        loop {
            let state = run.borrow_and_update().clone();
            match state {
                Run::Running => return,
                Run::Paused(_) => {
                    let _ = run.changed().await;
                }
                Run::Restarting { at } => {
                    let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => return,
                        _ = run.changed() => {}
                    }
                }
            }
        }
    }

    pub fn pause(&self, reason: &str) {
        self.run.send_replace(Run::Paused(reason.into()));
        self.keep_pause(Some(reason.into()));
    }

    /// Takes on an operator's pause (Some) or resume (None) made through another instance, as
    /// the shared database tells: the same switch, nothing kept again.
    pub fn follow_pause(&self, reason: Option<&str>) {
        self.run.send_if_modified(|run| match (reason, &*run) {
            (Some(reason), Run::Paused(current)) if current == reason => false,
            (Some(reason), _) => {
                *run = Run::Paused(reason.into());
                true
            }
            (None, Run::Paused(_)) => {
                *run = Run::Running;
                true
            }
            (None, _) => false,
        });
    }

    /// Runs again; open incidents are resolved by the operator.
    pub fn resume(&self) {
        self.resolve_open("operator");
        self.figures.lock().expect("figures lock").consecutive_incidents = 0;
        if matches!(self.run.send_replace(Run::Running), Run::Paused(_)) {
            self.keep_pause(None);
        }
    }

    /// A stopped connector tries again now, without waiting out the restart backoff or an
    /// operator's pause; open incidents stay open until calls succeed again, which closes them
    /// as recovered. A running connector is left as it is.
    pub fn restart(&self) {
        self.figures.lock().expect("figures lock").consecutive_incidents = 0;
        let mut was_paused = false;
        self.run.send_if_modified(|run| {
            was_paused = matches!(run, Run::Paused(_));
            let stopped = *run != Run::Running;
            if stopped {
                *run = Run::Restarting { at: now_ms() };
            }
            stopped
        });
        if was_paused {
            self.keep_pause(None);
        }
    }

    /// The counterpart stayed unreachable past the retry policy: an incident, and a pause until
    /// an automatic restart (backing off per consecutive incident) or an operator's resume.
    pub fn raise_incident(&self, reason: &str) {
        let delay = {
            let mut figures = self.figures.lock().expect("figures lock");
            if !figures.incidents.iter().any(|i| i.resolved_at.is_none()) {
                // Numbered by when it opened, so instances sharing a database never reuse a number.
                let id = figures.incidents.last().map_or(0, |last| last.id + 1).max(now_ms() as u64);
                let incident =
                    Incident { id, opened_at: now_ms(), reason: reason.into(), resolved_at: None, resolved_by: None };
                self.keep(ControlChange::Incident { connector: self.name.clone(), incident: incident.clone() });
                figures.incidents.push(incident);
            }
            figures.consecutive_incidents += 1;
            FIRST_RESTART_DELAY.saturating_mul(1 << (figures.consecutive_incidents - 1).min(6)).min(MAX_RESTART_DELAY)
        };
        tracing::error!(
            connector = self.name,
            reason,
            ?delay,
            "incident: connector paused until it restarts or an operator resumes it"
        );
        // An operator's pause stands; otherwise restart after the delay.
        self.run.send_if_modified(|run| {
            if matches!(run, Run::Paused(_)) {
                return false;
            }
            *run = Run::Restarting { at: now_ms() + delay.as_millis() as i64 };
            true
        });
    }

    /// A batch went through: the counterpart answers, so open incidents are over.
    pub fn applied(&self) {
        {
            let mut figures = self.figures.lock().expect("figures lock");
            figures.batches_applied += 1;
            figures.consecutive_incidents = 0;
        }
        self.resolve_open("recovered");
        self.run.send_if_modified(|run| {
            let restarting = matches!(run, Run::Restarting { .. });
            if restarting {
                *run = Run::Running;
            }
            restarting
        });
    }

    fn resolve_open(&self, by: &str) {
        let mut figures = self.figures.lock().expect("figures lock");
        for incident in figures.incidents.iter_mut().filter(|i| i.resolved_at.is_none()) {
            incident.resolved_at = Some(now_ms());
            incident.resolved_by = Some(by.into());
            self.keep(ControlChange::Incident { connector: self.name.clone(), incident: incident.clone() });
        }
    }

    pub fn status(&self) -> ConnectorStatus {
        let figures = self.figures.lock().expect("figures lock");
        let (state, paused_reason) = match &*self.run.borrow() {
            Run::Running => ("running", None),
            Run::Paused(reason) => ("paused", Some(reason.clone())),
            Run::Restarting { .. } => ("restarting", figures.incidents.last().map(|i| i.reason.clone())),
        };
        ConnectorStatus {
            name: self.name.clone(),
            state: state.into(),
            paused_reason,
            batches_applied: figures.batches_applied,
            incidents: figures.incidents.clone(),
        }
    }
}

/// Every connector of a hub, for the admin API.
pub type Connectors = Arc<Vec<Arc<ConnectorControl>>>;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, for the audit and the other operators.
    pub reason: String,
}

/// The connector admin API, for integrators: `GET /api/v1/connectors`, `GET
/// /api/v1/connectors/{name}`, `POST /api/v1/connectors/{name}/pause` (`{reason}`), `/resume`
/// and `/restart`.
pub fn routes(connectors: Connectors) -> Vec<Route> {
    const OPERATORS: Rule = Rule::Roles(&[Role::Integrator]);
    const TAG: &str = "integrators";
    vec![
        Route::get("/api/v1/connectors", OPERATORS, list)
            .doc(TAG, "each connector's state, applied batches and incidents"),
        Route::get("/api/v1/connectors/{name}", OPERATORS, one).doc(TAG, "one connector's state"),
        Route::post("/api/v1/connectors/{name}/pause", OPERATORS, pause)
            .doc(TAG, "pause a connector")
            .body::<PauseRequest>(),
        Route::post("/api/v1/connectors/{name}/resume", OPERATORS, |state, name| {
            switch(state, name, ConnectorControl::resume)
        })
        .doc(TAG, "resume a connector; resolves its open incidents"),
        Route::post("/api/v1/connectors/{name}/restart", OPERATORS, |state, name| {
            switch(state, name, ConnectorControl::restart)
        })
        .doc(TAG, "let a connector try again now"),
    ]
    .into_iter()
    .map(|route| route.with_state(connectors.clone()))
    .collect()
}

fn find<'c>(connectors: &'c Connectors, name: &str) -> Result<&'c Arc<ConnectorControl>, BadRequest> {
    connectors.iter().find(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
        BadRequest::not_found(format!("no connector {name}; there are {}", known.join(", ")))
    })
}

async fn list(State(connectors): State<Connectors>) -> Json<Vec<ConnectorStatus>> {
    Json(connectors.iter().map(|c| c.status()).collect())
}

async fn one(State(connectors): State<Connectors>, Path(name): Path<String>) -> ApiResult<Json<ConnectorStatus>> {
    Ok(Json(find(&connectors, &name)?.status()))
}

async fn pause(
    State(connectors): State<Connectors>,
    Path(name): Path<String>,
    ValidJson(request): ValidJson<PauseRequest>,
) -> ApiResult<Json<ConnectorStatus>> {
    let connector = find(&connectors, &name)?;
    if request.reason.trim().is_empty() {
        return Err(BadRequest::field("reason", "say why the connector is paused").into());
    }
    connector.pause(&request.reason);
    Ok(Json(connector.status()))
}

/// Resumes or restarts a connector, answering its status.
async fn switch(
    State(connectors): State<Connectors>,
    Path(name): Path<String>,
    action: fn(&ConnectorControl),
) -> ApiResult<Json<ConnectorStatus>> {
    let connector = find(&connectors, &name)?;
    action(connector);
    Ok(Json(connector.status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paused_connector_waits_for_its_operator() {
        let control = ConnectorControl::new("c");
        control.pause("maintenance at the counterpart");
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { control.until_running().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert_eq!(control.status().state, "paused");
        control.raise_incident("down");
        assert_eq!(control.status().state, "paused", "an incident does not lift an operator's pause");
        control.resume();
        waiting.await.unwrap();
        let status = control.status();
        assert_eq!((status.state.as_str(), status.incidents[0].resolved_by.as_deref()), ("running", Some("operator")));
    }

    #[tokio::test]
    async fn an_incident_restarts_by_itself_and_closes_when_calls_succeed() {
        let control = ConnectorControl::new("c");
        control.raise_incident("HTTP 503");
        control.raise_incident("HTTP 503 again");
        let status = control.status();
        assert_eq!((status.state.as_str(), status.incidents.len()), ("restarting", 1), "one open incident at a time");
        let started = std::time::Instant::now();
        control.until_running().await;
        assert!(
            started.elapsed() >= Duration::from_millis(1_500),
            "the second consecutive incident waits twice as long"
        );
        control.applied();
        let status = control.status();
        assert_eq!((status.state.as_str(), status.batches_applied), ("running", 1));
        assert_eq!(status.incidents[0].resolved_by.as_deref(), Some("recovered"));
    }

    #[tokio::test]
    async fn a_restored_connector_keeps_its_pause_and_incidents_and_journals_changes() {
        let (journal, mut changes) = mpsc::unbounded_channel();
        let earlier = Incident { id: 3, opened_at: 1, reason: "HTTP 503".into(), resolved_at: None, resolved_by: None };
        let saved = SavedControl { paused_reason: Some("银行系统升级".into()), incidents: vec![earlier.clone()] };
        let control = ConnectorControl::restore("c", saved, Some(journal));
        let status = control.status();
        assert_eq!(
            (status.state.as_str(), status.paused_reason.as_deref(), status.incidents),
            ("paused", Some("银行系统升级"), vec![earlier])
        );
        control.raise_incident("still down");
        assert_eq!(control.status().incidents.len(), 1, "the restored incident is still the open one");
        control.resume();
        control.raise_incident("down again");
        let kept: Vec<ControlChange> = std::iter::from_fn(|| changes.try_recv().ok()).collect();
        let [ControlChange::Incident { incident: resolved, .. }, ControlChange::Pause { reason: None, .. }, ControlChange::Incident { incident: opened, .. }] =
            kept.as_slice()
        else {
            panic!("unexpected journal {kept:?}");
        };
        assert_eq!((resolved.id, resolved.resolved_by.as_deref()), (3, Some("operator")));
        assert_eq!((opened.resolved_at, opened.reason.as_str()), (None, "down again"));
        assert!(opened.id > 3 && opened.id >= opened.opened_at as u64, "numbered by its opening: {opened:?}");
    }

    #[tokio::test]
    async fn a_restart_tries_again_at_once_and_success_closes_the_incident() {
        let control = ConnectorControl::new("c");
        for _ in 0..4 {
            control.raise_incident("HTTP 503");
        }
        control.restart();
        let started = std::time::Instant::now();
        control.until_running().await;
        assert!(started.elapsed() < Duration::from_millis(500), "no waiting out the eight-second backoff");
        assert_eq!(control.status().incidents[0].resolved_at, None, "open until a call succeeds");
        control.applied();
        let status = control.status();
        assert_eq!((status.state.as_str(), status.incidents[0].resolved_by.as_deref()), ("running", Some("recovered")));
    }
}
