//! Daily reconciliation (对账) of the bank's statements against the fee orders and payments the
//! hub recorded, and the refunds it asked for and heard of: every payment or refund on either
//! side is matched, or named as a discrepancy. Refunds are reconciled as payments are, the
//! refund number standing for the order and the bank's refund id for the transaction.
use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// A payment, as the bank's statement lists it or as the hub recorded its confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLine {
    pub payment_id: String,
    pub order_number: String,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// On the statement, never confirmed to the hub (a lost confirmation): the case still waits.
    MissingInHub,
    /// Confirmed to the hub, not on the bank's statement for the day.
    MissingAtBank,
    /// A further payment of an order already paid.
    Duplicate,
    /// Paid a different amount than the order's total.
    AmountMismatch,
    /// Paid against an order the hub never issued.
    UnknownOrder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub kind: DiscrepancyKind,
    pub payment_id: String,
    pub order_number: String,
    /// The order's total, when the order is known.
    pub expected_fen: Option<i64>,
    pub paid_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub day: String,
    pub statement_lines: usize,
    pub recorded_payments: usize,
    /// Statement lines that agree with the hub in every respect.
    pub matched: usize,
    pub discrepancies: Vec<Discrepancy>,
    /// The same for the refunds of the day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunds: Option<Box<Reconciliation>>,
}

/// Matches the bank's `statement` for `day` against the hub's `orders` (number → total) and the
/// payments it `recorded` that day. `paid_before` are orders paid on earlier days: paying one
/// again is a duplicate too.
pub fn reconcile(
    day: &str,
    orders: &HashMap<String, i64>,
    recorded: &[PaymentLine],
    statement: &[PaymentLine],
    paid_before: &HashSet<String>,
) -> Reconciliation {
    let recorded_ids: HashSet<&str> = recorded.iter().map(|p| p.payment_id.as_str()).collect();
    let stated_ids: HashSet<&str> = statement.iter().map(|p| p.payment_id.as_str()).collect();
    let mut paid: HashSet<&str> = paid_before.iter().map(String::as_str).collect();
    let mut discrepancies = Vec::new();
    let mut matched = 0;
    for line in statement {
        let expected = orders.get(&line.order_number).copied();
        let found = |kind| Discrepancy {
            kind,
            payment_id: line.payment_id.clone(),
            order_number: line.order_number.clone(),
            expected_fen: expected,
            paid_fen: line.amount_fen,
        };
        let mut kinds = Vec::new();
        match expected {
            None => kinds.push(DiscrepancyKind::UnknownOrder),
            Some(total) if total != line.amount_fen => kinds.push(DiscrepancyKind::AmountMismatch),
            Some(_) => {}
        }
        if !paid.insert(&line.order_number) {
            kinds.push(DiscrepancyKind::Duplicate);
        }
        if !recorded_ids.contains(line.payment_id.as_str()) {
            kinds.push(DiscrepancyKind::MissingInHub);
        }
        if kinds.is_empty() {
            matched += 1;
        }
        discrepancies.extend(kinds.into_iter().map(found));
    }
    for line in recorded.iter().filter(|p| !stated_ids.contains(p.payment_id.as_str())) {
        discrepancies.push(Discrepancy {
            kind: DiscrepancyKind::MissingAtBank,
            payment_id: line.payment_id.clone(),
            order_number: line.order_number.clone(),
            expected_fen: orders.get(&line.order_number).copied(),
            paid_fen: line.amount_fen,
        });
    }
    Reconciliation {
        day: day.into(),
        statement_lines: statement.len(),
        recorded_payments: recorded.len(),
        matched,
        discrepancies,
        refunds: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, order: &str, fen: i64) -> PaymentLine {
        PaymentLine { payment_id: id.into(), order_number: order.into(), amount_fen: fen }
    }

    #[test]
    fn every_kind_of_discrepancy_is_found_and_the_rest_matches() {
        let orders: HashMap<String, i64> =
            [("A-FEE", 8_000), ("B-FEE", 8_000), ("C-FEE", 8_000), ("D-FEE", 8_000), ("E-FEE", 8_000)]
                .map(|(o, f)| (o.to_string(), f))
                .into();
        let recorded = [line("T1", "A-FEE", 8_000), line("T2", "B-FEE", 8_000), line("T5", "E-FEE", 8_000)];
        let statement = [
            line("T1", "A-FEE", 8_000), // matched
            line("T2", "B-FEE", 8_000), // matched
            line("T3", "B-FEE", 8_000), // paid twice, and never confirmed to the hub
            line("T4", "C-FEE", 7_000), // short, and never confirmed
            line("T6", "X-FEE", 1_000), // no such order
            line("T7", "D-FEE", 8_000), // paid on an earlier day already
        ];
        let report = reconcile("2026-11-23", &orders, &recorded, &statement, &["D-FEE".to_string()].into());
        assert_eq!(report.matched, 2);
        let found: Vec<(DiscrepancyKind, &str)> =
            report.discrepancies.iter().map(|d| (d.kind, d.payment_id.as_str())).collect();
        use DiscrepancyKind::*;
        assert_eq!(
            found,
            [
                (Duplicate, "T3"),
                (MissingInHub, "T3"),
                (AmountMismatch, "T4"),
                (MissingInHub, "T4"),
                (UnknownOrder, "T6"),
                (MissingInHub, "T6"),
                (Duplicate, "T7"),
                (MissingInHub, "T7"),
                (MissingAtBank, "T5"),
            ]
        );
        let short = &report.discrepancies[2];
        assert_eq!((short.expected_fen, short.paid_fen), (Some(8_000), 7_000));
    }

    #[test]
    fn a_clean_day_has_nothing_to_report() {
        let orders: HashMap<String, i64> = [("A-FEE".to_string(), 8_000)].into();
        let payments = [line("T1", "A-FEE", 8_000)];
        let report = reconcile("2026-11-23", &orders, &payments, &payments, &HashSet::new());
        assert_eq!((report.matched, report.discrepancies.len()), (1, 0));
    }
}
