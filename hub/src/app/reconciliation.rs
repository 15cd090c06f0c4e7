//! The hub's side of the bank connector: the daily reconciliation of the bank's statement
//! against the fee orders and payments in the cases' histories.
use std::collections::{HashMap, HashSet};

use connectors::bank::inbound::StatementSource;
use connectors::bank::protocol::Payment;
use contracts::Event;

use crate::store::Store;
use hub_core::fees::{reconcile, PaymentLine, Reconciliation};

pub struct Reconciler {
    pub source: StatementSource,
    pub store: Store,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("a day is YYYY-MM-DD, not {0:?}")]
    BadDay(String),
    #[error("the bank's statement could not be read: {0}")]
    Statement(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl Reconciler {
    /// Reconciles `day` (`YYYY-MM-DD`, China Standard Time) and keeps the report.
    pub async fn run(&self, day: &str) -> Result<Reconciliation, ReconcileError> {
        let date = time::Date::parse(day, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|_| ReconcileError::BadDay(day.into()))?;
        // Midnight in Beijing is 16:00 UTC the day before.
        let from = (date.midnight().assume_utc().unix_timestamp() - 8 * 3_600) * 1_000;
        let until = from + 86_400_000;
        let statement = self.source.fetch(day).await.map_err(|error| ReconcileError::Statement(error.to_string()))?;
        let orders: HashMap<String, i64> = self
            .store
            .events_between("FeeOrderRequested", 0, i64::MAX)
            .await?
            .into_iter()
            .filter_map(|event| {
                if let Event::FeeOrderRequested(order) = event {
                    Some((order.order_number, order.total_fen))
                } else {
                    None
                }
            })
            .collect();
        let payments = |events: Vec<Event>| -> Vec<PaymentLine> {
            events
                .into_iter()
                .filter_map(|event| {
                    if let Event::PaymentConfirmed(p) = event {
                        Some(PaymentLine {
                            payment_id: p.payment_id,
                            order_number: p.order_number,
                            amount_fen: p.amount_fen,
                        })
                    } else {
                        None
                    }
                })
                .collect()
        };
        let recorded = payments(self.store.events_between("PaymentConfirmed", from, until).await?);
        let paid_before: HashSet<String> = payments(self.store.events_between("PaymentConfirmed", 0, from).await?)
            .into_iter()
            .map(|p| p.order_number)
            .collect();
        let stated: Vec<PaymentLine> = statement
            .into_iter()
            .map(|p: Payment| PaymentLine {
                payment_id: p.payment_id,
                order_number: p.order_number,
                amount_fen: p.amount_fen,
            })
            .collect();
        let report = reconcile(day, &orders, &recorded, &stated, &paid_before);
        self.store.save_reconciliation(day, &serde_json::to_value(&report).map_err(anyhow::Error::from)?).await?;
        Ok(report)
    }
}
