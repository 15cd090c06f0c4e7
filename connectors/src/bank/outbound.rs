//! Outbound half: fee orders placed with the bank, one per case, and refunds of denied cases;
//! the order and refund numbers are the idempotency keys, so a retried or repeated call makes
//! no second order or refund. A fee waived in full is not ordered.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{Event, FeeOrderCreated, FeeOrderRequested, RefundRequested};
use reqwest::Method;

use super::protocol::{OrderItem, OrderPlaced, OrderRelief, PlaceOrder, PlaceRefund, RefundPlaced};
use super::{BankConfig, BANK, CONSUMER};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

/// Why the payer's name goes to the bank: the fee is collected at one place (一窗收费).
const COLLECTION_BASIS: &str = "《行政事业性收费管理条例》：收费由银行代收，实行收缴分离";

pub struct BankOutbound {
    config: BankConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl BankOutbound {
    pub fn new(
        config: BankConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<BankOutbound> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(BankOutbound { config, client, outbox, control })
    }

    /// Places one fee order; the order number is the idempotency key.
    async fn place(&self, order: &FeeOrderRequested) -> Outcome {
        let body = order_for(order);
        let headers = [("Idempotency-Key", order.order_number.as_str())];
        let answer = with_retry(&self.config.retry, "fee order", || {
            self.client.call::<OrderPlaced>(Method::POST, "/api/v1/fee-orders", &headers, Some(&body))
        })
        .await;
        order_outcome(order, answer, now_ms())
    }

    /// Asks the bank to pay back a denied case's fee; the refund number is the idempotency key.
    async fn refund(&self, refund: &RefundRequested) -> Outcome {
        let body = PlaceRefund {
            refund_number: refund.refund_number.clone(),
            order_number: refund.order_number.clone(),
            case_number: refund.case_number.clone(),
            amount_fen: refund.amount_fen,
            reason: refund.reason.clone(),
        };
        let headers = [("Idempotency-Key", refund.refund_number.as_str())];
        let answer = with_retry(&self.config.retry, "refund", || {
            self.client.call::<RefundPlaced>(Method::POST, "/api/v1/refunds", &headers, Some(&body))
        })
        .await;
        refund_outcome(refund, answer, now_ms())
    }
}

/// What the bank's answer to a refund comes to: the exchange recorded; the refund itself is
/// confirmed when the bank pushes it, paid.
pub fn refund_outcome(refund: &RefundRequested, answer: Result<RefundPlaced, CallError>, now: i64) -> Outcome {
    let exchange = Exchange {
        name: "fee.refund",
        requester_system: BANK.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: refund.department_code.clone(),
        data_subject: String::new(),
        data_items: &["order_number", "amount_fen"],
        legal_basis: COLLECTION_BASIS.into(),
        purpose: "不予许可办件退费".into(),
        channel: CONSUMER,
        document_sha256: None,
    };
    match answer {
        Ok(_) => Outcome::done(vec![exchange.shared(&refund.event_id, &refund.case_number, "ok", now)]),
        Err(error) => Outcome::failed(
            format!("bank did not take refund {}", refund.refund_number),
            &error,
            &exchange,
            &refund.event_id,
            &refund.case_number,
            now,
        ),
    }
}

/// The bank's fee order for a requested one.
pub fn order_for(order: &FeeOrderRequested) -> PlaceOrder {
    PlaceOrder {
        order_number: order.order_number.clone(),
        case_number: order.case_number.clone(),
        payer_name: order.payer_name.clone(),
        payee_department: order.department_code.clone(),
        items: order
            .items
            .iter()
            .map(|item| OrderItem { name: item.name.clone(), amount_fen: item.amount_fen, basis: item.basis.clone() })
            .collect(),
        relief: order.relief.as_ref().map(|relief| OrderRelief {
            name: relief.name.clone(),
            basis: relief.basis.clone(),
            amount_fen: relief.relieved_fen,
        }),
        total_fen: order.total_fen,
    }
}

/// What the bank's answer to a fee order comes to, as of `now`: the order placed with its
/// payment code, or why the bank refused it.
pub fn order_outcome(order: &FeeOrderRequested, answer: Result<OrderPlaced, CallError>, now: i64) -> Outcome {
    let exchange = Exchange {
        name: "fee.order",
        requester_system: BANK.into(),
        requester_department: String::new(),
        requester_officer: None,
        provider: order.department_code.clone(),
        data_subject: order.data_subject.clone(),
        data_items: &["payer_name", "fee_items", "total_fen"],
        legal_basis: COLLECTION_BASIS.into(),
        purpose: "代收行政事业性收费".into(),
        channel: CONSUMER,
        document_sha256: None,
    };
    match answer {
        Ok(placed) => Outcome::done(vec![
            FeeOrderCreated {
                event_id: hub_core::ids::fee_order_created(&order.event_id),
                case_number: order.case_number.clone(),
                occurred_at: now,
                order_number: placed.order_number,
                payment_code: placed.payment_code,
            }
            .into(),
            exchange.shared(&order.event_id, &order.case_number, "ok", now),
        ]),
        Err(error) => Outcome::failed(
            format!("bank did not take fee order {}", order.order_number),
            &error,
            &exchange,
            &order.event_id,
            &order.case_number,
            now,
        ),
    }
}

#[async_trait]
impl BatchHandler for BankOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                // Waived in full: nothing to collect.
                Event::FeeOrderRequested(order) if order.total_fen == 0 => Outcome::done(Vec::new()),
                Event::FeeOrderRequested(order) => self.place(order).await,
                Event::RefundRequested(refund) => self.refund(refund).await,
                other => Outcome::refused(format!("{} is not a fee order or refund", other.kind()), Vec::new()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use contracts::FeeItem;

    use super::*;

    const NOW: i64 = 1_795_140_000_000;

    fn requested() -> FeeOrderRequested {
        FeeOrderRequested {
            event_id: "61042920261120000001/2/fee".into(),
            case_number: "61042920261120000001".into(),
            occurred_at: NOW - 1_000,
            order_number: "61042920261120000001-F1".into(),
            payer_name: "张三".into(),
            data_subject: "subject".into(),
            department_code: "11610429MB2912345A".into(),
            items: vec![FeeItem {
                name: "不动产登记费".into(),
                amount_fen: 8_000,
                basis: "发改价格规〔2016〕2559号".into(),
            }],
            total_fen: 8_000,
            relief: None,
        }
    }

    #[test]
    fn a_fee_order_goes_to_the_bank_with_its_items_and_comes_back_with_a_payment_code_as_of_now() {
        let order = order_for(&requested());
        assert_eq!(
            (order.order_number.as_str(), order.total_fen, order.items.len()),
            ("61042920261120000001-F1", 8_000, 1)
        );
        let placed =
            OrderPlaced { order_number: order.order_number.clone(), payment_code: "PAY1".into(), duplicate: false };
        let done = order_outcome(&requested(), Ok(placed), NOW);
        let [Event::FeeOrderCreated(created), Event::DataShared(shared)] = done.events.as_slice() else {
            panic!("{done:?}")
        };
        assert_eq!(
            (created.event_id.as_str(), created.payment_code.as_str(), created.occurred_at),
            ("61042920261120000001/2/fee/placed", "PAY1", NOW)
        );
        assert_eq!((shared.exchange.as_str(), shared.occurred_at), ("fee.order", NOW));
    }
}
