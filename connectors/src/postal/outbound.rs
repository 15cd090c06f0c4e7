//! Outbound half: delivery requests from Kafka become orders at the carrier.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{DeliveryOrderCreated, DeliveryRequested, Event};
use futures::stream::{self, StreamExt as _};

use super::protocol::{CreateOrder, OrderAccepted, Party};
use super::{PostalConfig, CONSUMER};
use crate::framework::{with_retry, CallError};

pub struct PostalOutbound {
    config: PostalConfig,
    client: reqwest::Client,
    outbox: Arc<dyn Outbox>,
}

impl PostalOutbound {
    pub fn new(config: PostalConfig, outbox: Arc<dyn Outbox>) -> anyhow::Result<PostalOutbound> {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
        Ok(PostalOutbound { config, client, outbox })
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

    /// Hands one delivery request to the carrier. `Err` only for database trouble.
    async fn deliver(&self, request: &DeliveryRequested) -> anyhow::Result<Option<String>> {
        if self.outbox.is_applied(CONSUMER, &request.event_id).await? {
            return Ok(None);
        }
        let order = self.order_for(request);
        match with_retry(&self.config.retry, "postal create order", || self.create_order(&order)).await {
            Ok(accepted) => {
                let created: Event = DeliveryOrderCreated {
                    event_id: format!("{}/created", accepted.logistics_order_no),
                    case_number: request.case_number.clone(),
                    occurred_at: bus_now(),
                    order_number: accepted.logistics_order_no,
                    waybill_number: accepted.waybill_no,
                }
                .into();
                self.outbox.apply(CONSUMER, &request.event_id, &[created]).await?;
                Ok(None)
            }
            Err(error) => {
                self.outbox.apply(CONSUMER, &request.event_id, &[]).await?;
                Ok(Some(format!("carrier refused order {}: {error}", order.logistics_order_no)))
            }
        }
    }
}

impl PostalOutbound {
    async fn handle_one(&self, index: usize, delivery: &Delivery) -> (usize, anyhow::Result<Option<String>>) {
        match &delivery.event {
            Event::DeliveryRequested(request) => (index, self.deliver(request).await),
            other => (index, Ok(Some(format!("{} is not a delivery request", other.kind())))),
        }
    }
}

fn bus_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl BatchHandler for PostalOutbound {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let calls: Vec<_> = batch.iter().enumerate().map(|(index, delivery)| self.handle_one(index, delivery)).collect();
        let results: Vec<(usize, anyhow::Result<Option<String>>)> =
            stream::iter(calls).buffer_unordered(self.config.concurrency.max(1)).collect().await;
        let mut rejected = Vec::new();
        for (index, result) in results {
            if let Some(reason) = result? {
                rejected.push(Rejected { index, reason });
            }
        }
        Ok(rejected)
    }
}
