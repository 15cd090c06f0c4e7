//! The operators' commands against a running hub's API: connectors, audit, catalogue sync,
//! bank reconciliation. Each prints the hub's JSON answer; exit code 2 when the hub refused.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// A running hub's API and the token to call it with.
#[derive(Debug, Args)]
pub struct HubApi {
    /// The hub's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Your API token (`hub tokens issue` makes the first one).
    #[arg(long, env = "HUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl HubApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.trim_end_matches('/'))
    }

    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", token.trim()).parse()?);
        }
        Ok(reqwest::Client::builder().default_headers(headers).build()?)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConnectorAction {
    /// Each connector's state, applied batches and incidents.
    Status,
    /// Stop a connector taking requests until resumed.
    Pause {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Let a paused or restarting connector run again; resolves its open incidents.
    Resume { name: String },
    /// Let a connector try again now, without waiting out its restart backoff; its open
    /// incidents close once calls succeed.
    Restart { name: String },
    /// Where a connector (or any consumer group) stands on each partition: committed offset, end, lag.
    Offsets { name: String },
    /// Move a connector's (or any consumer group's) offsets: `earliest` reads everything held
    /// again, `latest` skips the backlog, an RFC 3339 instant starts from the messages written then.
    ResetOffsets {
        name: String,
        #[arg(long)]
        to: String,
        /// Only this topic; every topic the group reads by default.
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the whole chain and every checkpoint; names the first bad entry.
    Verify,
    /// Sign a checkpoint over the ledger now.
    Checkpoint,
    /// The hub's public key, for checking checkpoints offline.
    PublicKey,
    /// Entries about a person (by ID number), a department's exchanges in a period, or those
    /// with no case behind them.
    Search {
        #[arg(long)]
        subject_id: Option<String>,
        #[arg(long)]
        department: Option<String>,
        /// RFC 3339 instants.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        without_case: bool,
    },
    /// Exchanges per day and pair of parties (requesting department, provider).
    Volume {
        /// RFC 3339 instants; the last 30 days by default.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
    /// Alerts of the anomaly rules (bulk reads off hours, reads with no case, volume above norm).
    Alerts {
        /// RFC 3339 instants; the last 30 days by default.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
    /// One entry with its inclusion proof against the newest checkpoint (save it to check offline).
    Proof { seq: i64 },
    /// Archive the entries recorded before an instant now (retention does it hourly).
    Archive {
        /// RFC 3339 instant.
        #[arg(long)]
        before: String,
    },
    /// The archive files made so far.
    Archives,
    /// Offline, with the public key alone: check an exported checkpoint, entry proof, bundle or
    /// archive (JSON files); several archives are also checked to link up, in the order given.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        public_key: String,
    },
}

impl ConnectorAction {
    pub async fn run(self, api: HubApi) -> anyhow::Result<ExitCode> {
        let client = api.client()?;
        let base = api.url("/api/v1/connectors");
        let request = match self {
            ConnectorAction::Status => client.get(base),
            ConnectorAction::Pause { name, reason } => {
                client.post(format!("{base}/{name}/pause")).json(&serde_json::json!({ "reason": reason }))
            }
            ConnectorAction::Resume { name } => client.post(format!("{base}/{name}/resume")),
            ConnectorAction::Restart { name } => client.post(format!("{base}/{name}/restart")),
            ConnectorAction::Offsets { name } => client.get(format!("{base}/{name}/offsets")),
            ConnectorAction::ResetOffsets { name, to, topic } => client
                .post(format!("{base}/{name}/offsets/reset"))
                .json(&serde_json::json!({ "to": to, "topic": topic })),
        };
        print_answer(request).await
    }
}

impl AuditAction {
    pub async fn run(self, api: HubApi) -> anyhow::Result<ExitCode> {
        let client = api.client()?;
        let base = api.url("/api/v1/audit");
        let request = match self {
            AuditAction::Check { files, public_key } => return check_exported(&files, &public_key),
            AuditAction::Archive { before } => {
                client.post(format!("{base}/archives")).json(&serde_json::json!({ "before": before }))
            }
            AuditAction::Archives => client.get(format!("{base}/archives")),
            AuditAction::Verify => client.get(format!("{base}/verify")),
            AuditAction::Checkpoint => client.post(format!("{base}/checkpoints")),
            AuditAction::PublicKey => client.get(format!("{base}/public-key")),
            AuditAction::Search { subject_id, department, from, until, without_case } => {
                let mut query = period_query(from, until);
                query.extend(
                    [
                        ("subject_id", subject_id),
                        ("department", department),
                        ("without_case", without_case.then(|| "true".to_string())),
                    ]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v))),
                );
                client.get(format!("{base}/entries")).query(&query)
            }
            AuditAction::Volume { from, until } => {
                client.get(format!("{base}/volume")).query(&period_query(from, until))
            }
            AuditAction::Alerts { from, until } => {
                client.get(format!("{base}/alerts")).query(&period_query(from, until))
            }
            AuditAction::Proof { seq } => client.get(format!("{base}/entries/{seq}/proof")),
        };
        print_answer(request).await
    }
}

/// `hub catalogue-sync`.
pub async fn sync_catalogue(api: HubApi) -> anyhow::Result<ExitCode> {
    print_answer(api.client()?.post(api.url("/api/v1/catalogue/sync"))).await
}

/// `hub bank-reconcile --date`.
pub async fn reconcile_bank_day(api: HubApi, date: String) -> anyhow::Result<ExitCode> {
    print_answer(api.client()?.post(api.url("/api/v1/bank/reconciliations")).json(&serde_json::json!({ "date": date })))
        .await
}

/// `hub archive-hand-in --month [--unit]`.
pub async fn archive_hand_in(api: HubApi, month: String, unit: Option<String>) -> anyhow::Result<ExitCode> {
    let query: Vec<(&str, String)> = std::iter::once(("month", month)).chain(unit.map(|unit| ("unit", unit))).collect();
    print_answer(api.client()?.get(api.url("/api/v1/archive/hand-in")).query(&query)).await
}

/// `hub report`: the figures as JSON; with `--html` or `--xlsx`, the period's 办件通报 saved too.
pub async fn report(api: HubApi, asked: ReportAsked) -> anyhow::Result<ExitCode> {
    let client = api.client()?;
    for (file, path) in [(&asked.html, "/api/v1/reports/bulletin"), (&asked.xlsx, "/api/v1/reports/bulletin/xlsx")] {
        let Some(file) = file else { continue };
        let response = client.get(api.url(path)).query(&[("period", &asked.period)]).send().await?;
        if !response.status().is_success() {
            anyhow::bail!("{path}: {} {}", response.status(), response.text().await?);
        }
        std::fs::write(file, response.bytes().await?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
        eprintln!("wrote {}", file.display());
    }
    let query: Vec<(&str, String)> = std::iter::once(("period", asked.period))
        .chain(asked.unit.map(|unit| ("unit", unit)))
        .chain(asked.staff.map(|staff| ("staff", staff)))
        .chain(asked.recount.then(|| ("recount", "true".to_string())))
        .collect();
    print_answer(client.get(api.url("/api/v1/reports")).query(&query)).await
}

/// What `hub report` is asked for.
#[derive(Debug, clap::Args)]
pub struct ReportAsked {
    /// `2026-12-02`, `2026-12`, `2026-Q4` or `2026` (China Standard Time).
    #[arg(long)]
    pub period: String,
    /// A township's, service point's, window's or department's code; the county by default.
    #[arg(long)]
    pub unit: Option<String>,
    /// One staff member, as their token names them.
    #[arg(long)]
    pub staff: Option<String>,
    /// Also recount from every case's history and say whether the figures match.
    #[arg(long)]
    pub recount: bool,
    /// Save the period's 办件通报 as a printable A4 page.
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,
    /// Save the period's 办件通报 as a spreadsheet.
    #[arg(long)]
    pub xlsx: Option<std::path::PathBuf>,
}

/// Checks an exported checkpoint or entry proof with the public key alone.
fn check_exported(files: &[PathBuf], public_key: &str) -> anyhow::Result<ExitCode> {
    let trusted = hub::app::audit::public_key(public_key)?;
    let mut archives = Vec::new();
    let mut holds = true;
    for file in files {
        let exported = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        match hub::app::audit::check_offline(&exported, &trusted) {
            Ok(found) => println!("{}: {found}", file.display()),
            Err(problem) => {
                println!("{}: DOES NOT HOLD: {problem}", file.display());
                holds = false;
            }
        }
        archives.extend(serde_json::from_str::<hub::app::audit::Archive>(&exported).ok());
    }
    if holds && archives.len() > 1 {
        match hub::app::audit::check_archive_series(&archives, &trusted) {
            Ok(found) => println!("{found}"),
            Err(problem) => {
                println!("DOES NOT HOLD: {problem}");
                holds = false;
            }
        }
    }
    Ok(if holds { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// The `from` and `until` of a period, as far as given.
fn period_query(from: Option<String>, until: Option<String>) -> Vec<(&'static str, String)> {
    [("from", from), ("until", until)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect()
}

/// Sends an operator's request to a running hub and prints its JSON answer; exit code 2 when
/// the hub refused it.
async fn print_answer(request: reqwest::RequestBuilder) -> anyhow::Result<ExitCode> {
    let response = request.send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
