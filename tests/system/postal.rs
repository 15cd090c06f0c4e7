//! The postal connector against its simulator: one order per delivery request whatever the
//! redeliveries, and a request the carrier refuses (4xx) handed back for the dead-letter topic
//! with the carrier's reason.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Delivery, Outbox, OutboxStore};
use connectors::framework::control::ConnectorControl;
use connectors::postal::outbound::PostalOutbound;
use connectors::postal::simulator::{self, SimulatorConfig, Stats};
use connectors::postal::PostalConfig;
use contracts::{Catalogue, DeliveryRequested, Event};
use hub::store::Store;

fn request(case_number: &str, receiver: contracts::PostalAddress) -> Delivery {
    let event: Event = DeliveryRequested {
        event_id: format!("{case_number}/5"),
        case_number: case_number.into(),
        occurred_at: 1_763_604_000_000,
        order_number: format!("{case_number}-P1"),
        product: "standard-express-documents".into(),
        contents: "documents".into(),
        sender: common::postal_address("旬邑县行政审批服务局", "711300"),
        receiver,
        return_receipt: true,
        data_subject: "subject".into(),
    }
    .into();
    Delivery { topic: "hub.postal.delivery-requests".into(), partition: 0, offset: 0, event }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_created_once_and_refusals_carry_the_carriers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), Arc::new(Catalogue::builtin()))
            .await
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = simulator::spawn(
        listener,
        SimulatorConfig { push_url: None, step_delay: Duration::ZERO, faults: Default::default() },
    )
    .unwrap();
    let config = PostalConfig { base_url: sim.base_url.clone(), ..PostalConfig::default() };
    let outbox: Arc<dyn Outbox> = Arc::new(store.clone());
    let connector = PostalOutbound::new(config, outbox, ConnectorControl::new(connectors::postal::CONSUMER)).unwrap();

    let batch = [
        request("61042920261120000001", common::postal_address("张三", "711300")),
        request("61042920261120000002", common::postal_address("李四", "71130")),
        request("61042920261120000001", common::postal_address("张三", "711300")),
    ];
    let rejected = connector.handle(&batch).await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 1);
    assert!(
        rejected[0].reason.contains("permanent") && rejected[0].reason.contains("receiver.post_code"),
        "{}",
        rejected[0].reason
    );

    // Redelivered: nothing is ordered again, nothing is recorded twice.
    assert!(connector.handle(&batch).await.unwrap().is_empty(), "already applied, including the refusal");
    let stats: Stats = reqwest::get(format!("{}/admin/stats", sim.base_url)).await.unwrap().json().await.unwrap();
    assert_eq!((stats.orders, stats.create_calls, stats.rejected_calls), (1, 1, 1), "{stats:?}");
    let ids = store.unpublished_ids(0, 100).await.unwrap();
    let recorded: Vec<Event> =
        store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect();
    let created: Vec<&Event> = recorded.iter().filter(|e| matches!(e, Event::DeliveryOrderCreated(_))).collect();
    assert_eq!(created.len(), 1);
    let Event::DeliveryOrderCreated(order) = created[0] else { panic!("{created:?}") };
    // Both requests sent the receiver's data to the carrier, the refused one too: both are on record.
    let mut shared: Vec<(&str, &str)> = recorded
        .iter()
        .filter_map(
            |e| if let Event::DataShared(s) = e { Some((s.exchange.as_str(), s.outcome.as_str())) } else { None },
        )
        .collect();
    shared.sort();
    assert_eq!(shared, [("postal.order", "ok"), ("postal.order", "refused")]);
    assert_eq!(
        (order.case_number.as_str(), order.order_number.as_str()),
        ("61042920261120000001", "61042920261120000001-P1")
    );
    assert_eq!(order.waybill_number.len(), 13);
}
