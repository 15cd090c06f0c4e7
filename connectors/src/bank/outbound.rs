//! Outbound half: fee orders placed with the bank, one per case; the order number is the
//! idempotency key, so a retried or repeated placement makes no second order.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{Event, FeeOrderCreated, FeeOrderRequested};
use reqwest::Method;

use super::protocol::{OrderItem, OrderPlaced, PlaceOrder};
use super::{BankConfig, BANK, CONSUMER};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, Exchange, Outcome, SignedClient};

/// Why the payer's name goes to the bank: the fee is collected at one place (一窗收费).
const COLLECTION_BASIS: &str = "《行政事业性收费管理条例》：收费由银行代收，实行收缴分离";

pub struct BankOutbound {
    config: BankConfig,
    client: SignedClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl BankOutbound {
    pub fn new(
        config: BankConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<BankOutbound> {
        let client = SignedClient::new(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(BankOutbound { config, client, outbox, control })
    }

    async fn place(&self, order: &FeeOrderRequested) -> Outcome {
        let body = PlaceOrder {
            order_number: order.order_number.clone(),
            case_number: order.case_number.clone(),
            payer_name: order.payer_name.clone(),
            payee_department: order.department_code.clone(),
            items: order
                .items
                .iter()
                .map(|item| OrderItem { name: item.name.clone(), amount_fen: item.amount_fen })
                .collect(),
            total_fen: order.total_fen,
        };
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
        let headers = [("Idempotency-Key", order.order_number.as_str())];
        let called = with_retry(&self.config.retry, "fee order", || {
            self.client.call::<OrderPlaced>(Method::POST, "/api/v1/fee-orders", &headers, Some(&body))
        })
        .await;
        match called {
            Ok(placed) => Outcome::done(vec![
                FeeOrderCreated {
                    event_id: hub_core::ids::fee_order_created(&order.event_id),
                    case_number: order.case_number.clone(),
                    occurred_at: now_ms(),
                    order_number: placed.order_number,
                    payment_code: placed.payment_code,
                }
                .into(),
                exchange.shared(&order.event_id, &order.case_number, "ok"),
            ]),
            Err(error) => Outcome::failed(
                format!("bank did not take fee order {}", order.order_number),
                &error,
                &exchange,
                &order.event_id,
                &order.case_number,
            ),
        }
    }
}

#[async_trait]
impl BatchHandler for BankOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                Event::FeeOrderRequested(order) => self.place(order).await,
                other => Outcome::refused(format!("{} is not a fee order", other.kind()), Vec::new()),
            }
        })
        .await
    }
}
