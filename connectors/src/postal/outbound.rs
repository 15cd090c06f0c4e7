//! Outbound half: delivery requests from Kafka become orders at the carrier.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Outbox, Rejected};
use contracts::{DeliveryOrderCreated, DeliveryRequested, Event};
use reqwest::Method;

use super::protocol::{CreateOrder, OrderAccepted, Party};
use super::{PostalConfig, CARRIER, CONSUMER};
use crate::framework::control::ConnectorControl;
use crate::framework::{apply_outbound, now_ms, with_retry, CallError, CounterpartClient, Exchange, Outcome};

/// Why the receiver's address goes to the carrier.
const DELIVERY_BASIS: &str = "《中华人民共和国行政许可法》第四十四条：依法送达许可证件";

pub struct PostalOutbound {
    config: PostalConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
    control: Arc<ConnectorControl>,
}

impl PostalOutbound {
    pub fn new(
        config: PostalConfig,
        outbox: Arc<dyn Outbox>,
        control: Arc<ConnectorControl>,
    ) -> anyhow::Result<PostalOutbound> {
        let client = CounterpartClient::unsigned(&config.base_url, config.timeout_ms)?;
        Ok(PostalOutbound { config, client, outbox, control })
    }

    /// Hands one delivery request to the carrier. The order number is the idempotency key, so a
    /// retry never makes a second order.
    async fn deliver(&self, request: &DeliveryRequested) -> Outcome {
        let order = order_for(&self.config, request);
        let headers = [("Idempotency-Key", order.logistics_order_no.as_str())];
        let answer = with_retry(&self.config.retry, "postal create order", || {
            self.client.call::<OrderAccepted>(Method::POST, "/api/v1/orders", &headers, Some(&order))
        })
        .await;
        order_outcome(&self.config, request, answer, now_ms())
    }
}

/// The carrier's order for a delivery request.
pub fn order_for(config: &PostalConfig, request: &DeliveryRequested) -> CreateOrder {
    CreateOrder {
        logistics_order_no: request.order_number.clone(),
        customer_code: config.customer_code.clone(),
        product_code: request.product.clone(),
        contents: request.contents.clone(),
        return_receipt: request.return_receipt,
        sender: Party::from(&request.sender),
        receiver: Party::from(&request.receiver),
    }
}

/// What the carrier's answer to a delivery request comes to, as of `now`: the order it made,
/// or why it refused; either way the receiver's data went out, which the data-sharing event
/// records.
pub fn order_outcome(
    config: &PostalConfig,
    request: &DeliveryRequested,
    answer: Result<OrderAccepted, CallError>,
    now: i64,
) -> Outcome {
    let exchange = Exchange {
        name: "postal.order",
        requester_system: CARRIER.into(),
        requester_department: config.customer_code.clone(),
        requester_officer: None,
        provider: request.sender.name.clone(),
        data_subject: request.data_subject.clone(),
        data_items: &["receiver.name", "receiver.mobile", "receiver.address", "receiver.post_code"],
        legal_basis: DELIVERY_BASIS.into(),
        purpose: "邮寄送达审批结果".into(),
        channel: CONSUMER,
        document_sha256: None,
    };
    match answer {
        Ok(accepted) => Outcome::done(vec![
            DeliveryOrderCreated {
                event_id: hub_core::ids::delivery_order_created(&accepted.logistics_order_no),
                case_number: request.case_number.clone(),
                occurred_at: now,
                order_number: accepted.logistics_order_no,
                waybill_number: accepted.waybill_no,
            }
            .into(),
            exchange.shared(&request.event_id, &request.case_number, "ok", now),
        ]),
        Err(error) => Outcome::failed(
            format!("carrier did not take order {}", request.order_number),
            &error,
            &exchange,
            &request.event_id,
            &request.case_number,
            now,
        ),
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

#[cfg(test)]
mod tests {
    use contracts::PostalAddress;

    use super::*;

    const NOW: i64 = 1_795_140_000_000;

    fn address(name: &str) -> PostalAddress {
        PostalAddress {
            name: name.into(),
            phone: "13912345678".into(),
            province: "陕西省".into(),
            city: "咸阳市".into(),
            county: "旬邑县".into(),
            address: "城关街道".into(),
            post_code: "711300".into(),
        }
    }

    fn request() -> DeliveryRequested {
        DeliveryRequested {
            event_id: "61042920261120000001/5".into(),
            case_number: "61042920261120000001".into(),
            occurred_at: NOW - 1_000,
            order_number: "61042920261120000001-P1".into(),
            product: "standard-express-documents".into(),
            contents: "documents".into(),
            sender: address("旬邑县行政审批服务局"),
            receiver: address("张三"),
            return_receipt: true,
            data_subject: "subject".into(),
        }
    }

    #[test]
    fn a_delivery_request_becomes_the_carriers_order_keyed_by_its_number() {
        let order = order_for(&PostalConfig::default(), &request());
        assert_eq!(order.logistics_order_no, "61042920261120000001-P1");
        assert_eq!(order.customer_code, PostalConfig::default().customer_code);
        assert!(order.return_receipt);
        assert_eq!(order.receiver, Party::from(&address("张三")));
    }

    #[test]
    fn the_carriers_answers_become_events_as_of_now() {
        let accepted = OrderAccepted {
            logistics_order_no: "61042920261120000001-P1".into(),
            waybill_no: "1180000000001".into(),
            duplicate: false,
        };
        let done = order_outcome(&PostalConfig::default(), &request(), Ok(accepted), NOW);
        let [Event::DeliveryOrderCreated(created), Event::DataShared(shared)] = done.events.as_slice() else {
            panic!("{done:?}")
        };
        assert_eq!((created.event_id.as_str(), created.occurred_at), ("61042920261120000001-P1/created", NOW));
        assert_eq!(
            (shared.event_id.as_str(), shared.outcome.as_str(), shared.occurred_at),
            ("61042920261120000001/5/shared/postal.order", "ok", NOW)
        );
        let refused =
            order_outcome(&PostalConfig::default(), &request(), Err(CallError::Permanent("HTTP 400".into())), NOW);
        assert!(refused.refused.is_some() && refused.unreachable.is_none());
        assert!(
            matches!(refused.events.as_slice(), [Event::DataShared(shared)] if shared.outcome == "refused"),
            "the data went out"
        );
        let down =
            order_outcome(&PostalConfig::default(), &request(), Err(CallError::Transient("HTTP 503".into())), NOW);
        assert!(down.unreachable.is_some() && down.events.is_empty(), "nothing recorded: the batch waits");
    }
}
