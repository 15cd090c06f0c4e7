//! The hub's side of the bank connector: the daily reconciliation of the bank's statements
//! against the fee orders, payments and refunds in the cases' histories.
use std::collections::{HashMap, HashSet};

use connectors::bank::inbound::StatementSource;
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

/// What the hub recorded of one kind of money movement, in the reconciliation's terms: the
/// amounts ordered (by order or refund number) and the confirmed lines.
fn ordered(events: Vec<Event>) -> HashMap<String, i64> {
    events
        .into_iter()
        .filter_map(|event| match event {
            Event::FeeOrderRequested(order) => Some((order.order_number, order.total_fen)),
            Event::RefundRequested(refund) => Some((refund.refund_number, refund.amount_fen)),
            _ => None,
        })
        .collect()
}

fn confirmed(events: Vec<Event>) -> Vec<PaymentLine> {
    events
        .into_iter()
        .filter_map(|event| match event {
            Event::PaymentConfirmed(p) => {
                Some(PaymentLine { payment_id: p.payment_id, order_number: p.order_number, amount_fen: p.amount_fen })
            }
            Event::RefundConfirmed(r) => {
                Some(PaymentLine { payment_id: r.refund_id, order_number: r.refund_number, amount_fen: r.amount_fen })
            }
            _ => None,
        })
        .collect()
}

impl Reconciler {
    /// Reconciles `day` (`YYYY-MM-DD`, China Standard Time) and keeps the report.
    pub async fn run(&self, day: &str) -> Result<Reconciliation, ReconcileError> {
        let date = time::Date::parse(day, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|_| ReconcileError::BadDay(day.into()))?;
        // Midnight in Beijing is 16:00 UTC the day before.
        let from = (date.midnight().assume_utc().unix_timestamp() - 8 * 3_600) * 1_000;
        let until = from + 86_400_000;
        let statement_error = |error: connectors::framework::CallError| ReconcileError::Statement(error.to_string());
        let payments = self.source.payments(day).await.map_err(statement_error)?;
        let refunds = self.source.refunds(day).await.map_err(statement_error)?;
        let stated_payments: Vec<PaymentLine> = payments
            .into_iter()
            .map(|p| PaymentLine { payment_id: p.payment_id, order_number: p.order_number, amount_fen: p.amount_fen })
            .collect();
        let stated_refunds: Vec<PaymentLine> = refunds
            .into_iter()
            .map(|r| PaymentLine { payment_id: r.refund_id, order_number: r.refund_number, amount_fen: r.amount_fen })
            .collect();
        let mut report =
            self.reconcile(day, "FeeOrderRequested", "PaymentConfirmed", &stated_payments, (from, until)).await?;
        let refunds = self.reconcile(day, "RefundRequested", "RefundConfirmed", &stated_refunds, (from, until)).await?;
        report.refunds = Some(Box::new(refunds));
        self.store.save_reconciliation(day, &serde_json::to_value(&report).map_err(anyhow::Error::from)?).await?;
        Ok(report)
    }

    /// One kind's reconciliation: the `stated` lines against the hub's `order_kind` events and
    /// the `confirmation_kind` events within `day_span`.
    async fn reconcile(
        &self,
        day: &str,
        order_kind: &str,
        confirmation_kind: &str,
        stated: &[PaymentLine],
        (from, until): (i64, i64),
    ) -> Result<Reconciliation, ReconcileError> {
        let orders = ordered(self.store.events_between(order_kind, 0, i64::MAX).await?);
        let recorded = confirmed(self.store.events_between(confirmation_kind, from, until).await?);
        let settled_before: HashSet<String> = confirmed(self.store.events_between(confirmation_kind, 0, from).await?)
            .into_iter()
            .map(|p| p.order_number)
            .collect();
        Ok(reconcile(day, &orders, &recorded, stated, &settled_before))
    }
}
