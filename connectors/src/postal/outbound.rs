//! Outbound half: delivery requests from Kafka become orders at the carrier.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{DeliveryOrderCreated, DeliveryRequested, Event};

use super::protocol::{CreateOrder, OrderAccepted, Party};
use super::{PostalConfig, CARRIER, CONSUMER};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, Exchange, Outcome};

/// Why the receiver's address goes to the carrier.
const DELIVERY_BASIS: &str = "《中华人民共和国行政许可法》第四十四条：依法送达许可证件";

pub struct PostalOutbound {
    config: PostalConfig,
    client: reqwest::Client,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl PostalOutbound {
    pub fn new(
        config: PostalConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<PostalOutbound> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        Ok(PostalOutbound { config, client, outbox, control })
    }

    fn order_for(&self, request: &DeliveryRequested) -> CreateOrder {
        CreateOrder {
            logistics_order_no: request.order_number.clone(),
            customer_code: self.config.customer_code.clone(),
            product_code: request.product.clone(),
            contents: request.contents.clone(),
            return_receipt: request.return_receipt,
            sender: Party::from(&request.sender),
            receiver: Party::from(&request.receiver),
        }
    }

    /// One create call; the order number is the idempotency key, so a retry never makes a
    /// second order.
    async fn create_order(&self, order: &CreateOrder) -> Result<OrderAccepted, CallError> {
        let url = format!("{}/api/v1/orders", self.config.base_url.trim_end_matches('/'));
        let response = self
            .client
            .post(&url)
            .header("Idempotency-Key", &order.logistics_order_no)
            .json(order)
            .send()
            .await
            .map_err(|e| CallError::from_reqwest(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::from_status(status, &body));
        }
        response.json().await.map_err(|e| CallError::from_reqwest(&e))
    }

    /// Hands one delivery request to the carrier: the order it made, or why the carrier refused;
    /// either way the receiver's data went out, which the data-sharing event records.
    async fn deliver(&self, request: &DeliveryRequested) -> Outcome {
        let order = self.order_for(request);
        let exchange = Exchange {
            name: "postal.order",
            requester_system: CARRIER.into(),
            requester_department: self.config.customer_code.clone(),
            requester_officer: None,
            provider: request.sender.name.clone(),
            data_subject: request.data_subject.clone(),
            data_items: &["receiver.name", "receiver.mobile", "receiver.address", "receiver.post_code"],
            legal_basis: DELIVERY_BASIS.into(),
            purpose: "邮寄送达审批结果".into(),
            channel: CONSUMER,
            document_sha256: None,
        };
        match with_retry(&self.config.retry, "postal create order", || self.create_order(&order)).await {
            Ok(accepted) => Outcome::done(vec![
                DeliveryOrderCreated {
                    event_id: hub_core::ids::delivery_order_created(&accepted.logistics_order_no),
                    case_number: request.case_number.clone(),
                    occurred_at: now_ms(),
                    order_number: accepted.logistics_order_no,
                    waybill_number: accepted.waybill_no,
                }
                .into(),
                exchange.shared(&request.event_id, &request.case_number, "ok"),
            ]),
            Err(error) => Outcome::failed(
                format!("carrier did not take order {}", order.logistics_order_no),
                &error,
                &exchange,
                &request.event_id,
                &request.case_number,
            ),
        }
    }
}

#[async_trait]
impl BatchHandler for PostalOutbound {
    /// Orders the batch's new requests at the carrier; the order number makes a repeated create
    /// call harmless.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        apply_outbound(&self.control, self.outbox.as_ref(), batch, self.config.concurrency, |event| async move {
            match event {
                Event::DeliveryRequested(request) => self.deliver(request).await,
                other => Outcome::refused(format!("{} is not a delivery request", other.kind()), Vec::new()),
            }
        })
        .await
    }
}
