//! Outbound half: delivery requests from Kafka become orders at the carrier.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Effect, Outbox, Rejected};
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

    /// Hands one delivery request to the carrier: the event it makes, or why the carrier refused.
    async fn deliver(&self, request: &DeliveryRequested) -> Result<Event, String> {
        let order = self.order_for(request);
        match with_retry(&self.config.retry, "postal create order", || self.create_order(&order)).await {
            Ok(accepted) => Ok(DeliveryOrderCreated {
                event_id: format!("{}/created", accepted.logistics_order_no),
                case_number: request.case_number.clone(),
                occurred_at: now_ms(),
                order_number: accepted.logistics_order_no,
                waybill_number: accepted.waybill_no,
            }
            .into()),
            Err(error) => Err(format!("carrier refused order {}: {error}", order.logistics_order_no)),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl BatchHandler for PostalOutbound {
    /// Orders the batch's new requests at the carrier, several at once, then records all
    /// outcomes in one transaction. A crash in between only repeats create calls, which the
    /// order number makes idempotent at the carrier.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let mut skip = self.outbox.applied_among(CONSUMER, &ids).await?;
        let mut rejected = Vec::new();
        let mut calls = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            if !skip.insert(delivery.event.event_id().to_string()) {
                continue;
            }
            match &delivery.event {
                Event::DeliveryRequested(request) => calls.push(async move { (index, request, self.deliver(request).await) }),
                other => rejected.push(Rejected { index, reason: format!("{} is not a delivery request", other.kind()) }),
            }
        }
        let results: Vec<_> = stream::iter(calls).buffer_unordered(self.config.concurrency.max(1)).collect().await;
        let mut effects = Vec::with_capacity(results.len());
        for (index, request, result) in results {
            let events = match result {
                Ok(created) => vec![created],
                Err(reason) => {
                    rejected.push(Rejected { index, reason });
                    Vec::new()
                }
            };
            effects.push(Effect { source_event_id: request.event_id.clone(), events });
        }
        self.outbox.apply_all(CONSUMER, &effects).await?;
        Ok(rejected)
    }
}
