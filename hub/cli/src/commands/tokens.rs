//! `hub tokens`: API tokens on the hub's own database, where the hub runs (the first
//! integrator's token has no one to ask for it over the API).
use std::process::ExitCode;

use clap::Subcommand;
use hub::config::Config;

use super::{init_logging, QUIET};

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Issue a token; its text is printed this once. The first integrator's token comes from here.
    Issue {
        /// The person's or system's name.
        #[arg(long)]
        holder: String,
        /// village_clerk, township_clerk, bank_outlet, county_approver, supervisor, postal, data_bureau or integrator.
        #[arg(long)]
        role: String,
        /// The service point (clerks, outlets) or department (approvers) code.
        #[arg(long)]
        unit: Option<String>,
        /// The window (窗口) a clerk works, by its code in the county's reference data.
        #[arg(long)]
        window: Option<String>,
        /// A system's token rather than a person's.
        #[arg(long)]
        system: bool,
        #[arg(long)]
        valid_days: Option<u32>,
    },
    /// Every token: holder, role, unit, expiry, revocation (never the secret).
    List,
    /// Revoke a token by its id.
    Revoke { token_id: String },
}

/// Issues, lists or revokes tokens on the hub's database, each change an admin ledger entry.
pub async fn manage(config: &Config, action: TokenAction) -> anyhow::Result<ExitCode> {
    init_logging(QUIET);
    let (tokens, ledger) = hub::token_desk(config).await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let answer = match action {
        TokenAction::Issue { holder, role, unit, window, system, valid_days } => {
            let Some(role) = hub_core::access::Role::parse(&role) else {
                anyhow::bail!(
                    "unknown role {role}; one of {}",
                    hub_core::access::Role::ALL.map(|r| r.code()).join(", ")
                );
            };
            let kind = if system { hub::app::tokens::TokenKind::System } else { hub::app::tokens::TokenKind::Person };
            let request = hub::app::tokens::TokenRequest { holder, kind, role, unit, window, valid_days };
            let issued = match tokens.issue(request.clone(), &format!("cli:{operator}")).await {
                Ok(issued) => issued,
                Err(hub::app::tokens::IssueError::Bad(bad)) => anyhow::bail!("{}", bad.message),
                Err(hub::app::tokens::IssueError::Store(error)) => return Err(error),
            };
            ledger
                .record_admin(
                    "POST /api/v1/tokens (cli)",
                    &operator,
                    format!("{} {} {:?} → {}", request.holder, role.code(), request.unit, issued.record.token_id),
                )
                .await?;
            serde_json::to_value(&issued)?
        }
        TokenAction::List => serde_json::json!({ "tokens": tokens.list().await? }),
        TokenAction::Revoke { token_id } => {
            let revoked = tokens.revoke(&token_id).await?.ok_or_else(|| anyhow::anyhow!("no token {token_id}"))?;
            ledger
                .record_admin(&format!("POST /api/v1/tokens/{token_id}/revocation (cli)"), &operator, String::new())
                .await?;
            serde_json::to_value(&revoked)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}
