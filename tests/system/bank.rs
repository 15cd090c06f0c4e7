//! The bank connector against its simulator, and through the whole hub: bank outlets as service
//! points, one fee order per case whatever the faults, payments confirmed once however often
//! pushed, no approval before the fee is paid, and the daily reconciliation finding every
//! missing, duplicate and mismatched payment.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Delivery, OutboxStore};
use common::desk::{demo_options, Desk};
use common::{admin, set_faults, signed_push};
use connectors::bank::outbound::BankOutbound;
use connectors::bank::simulator::{self, OrderRecord, PaymentRecord, SimulatorConfig, Stats};
use connectors::bank::{self, BankConfig, PUSH_PATH};
use connectors::framework::control::ConnectorControl;
use connectors::simulation::Faults;
use contracts::{Catalogue, Event, FeeItem, FeeOrderRequested};
use hub::config::Config;
use hub::store::Store;
use hub_cli::demo::DemoRun;
use serde_json::{json, Value};

const FIRST_REGISTRATION: &str = "11610429MB291234CH4000105001000";
const BANK_OUTLET: &str = "BANK-PSBC-610429100";

fn fee_order(serial: usize) -> Delivery {
    let case_number = format!("6104292026112000{serial:04}");
    let event: Event = FeeOrderRequested {
        event_id: format!("{case_number}/2/fee"),
        order_number: format!("{case_number}-FEE"),
        case_number,
        occurred_at: 1_763_604_000_000,
        payer_name: "张三".into(),
        data_subject: "subject".into(),
        department_code: "11610429MB291234CH".into(),
        items: vec![FeeItem {
            name: "不动产登记费".into(),
            amount_fen: 8_000,
            basis: "发改价格规〔2016〕2559号".into(),
        }],
        total_fen: if serial == 21 { 7_000 } else { 8_000 },
        relief: None,
    }
    .into();
    Delivery { topic: "hub.bank.fee-orders".into(), partition: 0, offset: serial as i64, event }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_orders_are_placed_once_through_errors_lost_answers_and_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::connect(&format!("sqlite://{}", dir.path().join("hub.db").display()), Arc::new(Catalogue::builtin()))
            .await
            .unwrap();
    let faults = Faults { error_rate: 0.3, delay_ms: 5, duplicate_rate: 0.3, outage: false };
    let sim_config = SimulatorConfig {
        app_id: "XY610429-HUB".into(),
        app_secret: "development-secret".into(),
        push_url: None,
        faults,
    };
    let sim = simulator::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), sim_config).unwrap();
    let config = BankConfig { base_url: sim.base_url.clone(), retry: common::PATIENT, ..BankConfig::default() };
    let connector = |config: BankConfig| {
        BankOutbound::new(config, Arc::new(store.clone()), ConnectorControl::new(bank::CONSUMER)).unwrap()
    };

    // Twenty good orders and one whose total is not the sum of its items; delivered twice.
    let batch: Vec<Delivery> = (1..=21).map(fee_order).collect();
    let outbound = connector(config.clone());
    let rejected = outbound.handle(&batch).await.unwrap();
    assert_eq!((rejected.len(), rejected.first().map(|r| r.index)), (1, Some(20)), "{rejected:?}");
    assert!(rejected[0].reason.contains("total_fen"), "the bank's reason is kept: {}", rejected[0].reason);
    assert!(outbound.handle(&batch).await.unwrap().is_empty(), "a redelivered batch changes nothing");

    // Down for a while, then slow: nothing is lost.
    set_faults(&sim.base_url, json!({"outage": true})).await;
    let late = [fee_order(22)];
    let handling = tokio::spawn({
        let outbound = connector(config.clone());
        async move { outbound.handle(&late).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handling.is_finished(), "nothing is ordered while the bank is down");
    set_faults(&sim.base_url, json!({"delay_ms": 50})).await;
    assert!(handling.await.unwrap().is_empty());

    let stats: Stats = admin(&sim.base_url, "stats").await;
    assert_eq!(stats.orders, 21, "one order per request: {stats:?}");
    assert!(stats.calls.failed_calls > 0 && stats.calls.lost_answers > 0, "the faults struck: {stats:?}");
    assert_eq!(
        stats.replays, stats.calls.lost_answers,
        "each lost answer was retried and found the order placed: {stats:?}"
    );
    let ids = store.unpublished_ids(0, 10_000).await.unwrap();
    let events: Vec<Event> =
        store.messages(&ids).await.unwrap().iter().map(|m| contracts::decode(&m.payload).unwrap()).collect();
    let created: Vec<&str> = events
        .iter()
        .filter_map(|e| if let Event::FeeOrderCreated(c) = e { Some(c.payment_code.as_str()) } else { None })
        .collect();
    assert_eq!(created.len(), 21, "each order recorded once with its payment code");
    let orders: Vec<OrderRecord> = admin(&sim.base_url, "orders").await;
    assert!(orders.iter().all(|o| created.contains(&o.payment_code.as_str())));
    let shared = events.iter().filter(|e| matches!(e, Event::DataShared(s) if s.exchange == "fee.order")).count();
    assert_eq!(shared, 22, "every exchange, the refused one too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_are_ordered_paid_before_approval_and_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url;
        config.api.listen = "127.0.0.1:0".into();
        config.province.catalogue_sync_seconds = 0;
        let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
        let desk = Desk::new(&demo);
        let bank_url = demo.bank_url().to_string();
        let client = reqwest::Client::new();
        let pay = |order: String, extra: Value| {
            let mut body = json!({ "order_number": order });
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let request = client.post(format!("{bank_url}/admin/payments")).json(&body).send();
            async move { assert_eq!(request.await.unwrap().status(), 202) }
        };

        // A bank outlet takes the application through the bank's channel, and only through it.
        let (status, answer) = desk
            .call("/api/v1/applications", json!({
                "request_id": format!("{backend}-counter-at-bank"), "matter_code": FIRST_REGISTRATION, "service_point": BANK_OUTLET, "channel": "counter",
                "applicant": {"name": "张三", "id_type": "111", "id_number": common::desk::APPLICANT_ID, "phone": "13912345678"},
                "materials": [], "delivery": {"method": "window"},
            }))
            .await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("channel")), "{backend}: {answer}");
        let mut cases = Vec::new();
        for n in 1..=4 {
            cases.push(
                desk.submit(&format!("{backend}-fee-{n}"), FIRST_REGISTRATION, BANK_OUTLET, json!({"channel": "bank"}))
                    .await,
            );
        }
        let mut orders = Vec::new();
        for case in &cases {
            let record = desk.wait_until(case, "a placed fee order", |c| c["fee"]["payment_code"].is_string()).await;
            assert_eq!(
                (record["case"]["fee"]["total_fen"].as_i64(), record["case"]["state"].as_str()),
                (Some(8_000), Some("routed")),
                "{backend}"
            );
            assert_eq!(record["case"]["application"]["channel"], "bank");
            orders.push(record["case"]["fee"]["order_number"].as_str().unwrap().to_string());
        }

        // No approval before the fee is paid; the bank pushes every payment twice.
        let (status, answer) = desk.decide(&cases[0], "approved", None).await;
        assert_eq!(status, 409, "{backend}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("fee is not paid"), "{backend}: {answer}");
        set_faults(&bank_url, json!({"duplicate_rate": 1.0})).await;
        pay(orders[0].clone(), json!({})).await;
        let record = desk
            .wait_until(&cases[0], "a paid fee", |c| c["fee"]["payments"].as_array().is_some_and(|p| !p.is_empty()))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let payments = desk.case(&cases[0]).await["case"]["fee"]["payments"].clone();
        assert_eq!(
            payments.as_array().unwrap().len(),
            1,
            "{backend}: one payment, however often pushed: {}",
            record["case"]["fee"]
        );
        assert_eq!(desk.decide(&cases[0], "approved", None).await.0, 200, "{backend}");
        let department = desk.case(&cases[1]).await["case"]["department_code"].as_str().unwrap().to_string();
        let queue = desk.get(format!("/api/v1/approvals?department={department}")).await.1;
        let item = queue.as_array().unwrap().iter().find(|i| i["case_number"] == cases[1].as_str()).unwrap().clone();
        assert_eq!(
            (item["fee"]["paid"].as_bool(), item["fee"]["total_fen"].as_i64()),
            (Some(false), Some(8_000)),
            "{backend}: the queue shows the fee"
        );

        // A day with trouble: a payment the hub never hears of, one short, one order paid
        // twice, and a payment for an order the county never issued.
        set_faults(&bank_url, json!({})).await;
        pay(orders[1].clone(), json!({"push": false})).await;
        pay(orders[2].clone(), json!({"amount_fen": 7_000})).await;
        pay(orders[3].clone(), json!({})).await;
        pay(orders[3].clone(), json!({"outlet_code": "BANK-RCC-610429001"})).await;
        let stranger = "61042920261123999999-FEE".to_string();
        pay(stranger.clone(), json!({"amount_fen": 500, "push": false})).await;
        desk.wait_until(&cases[3], "both payments", |c| c["fee"]["payments"].as_array().is_some_and(|p| p.len() == 2))
            .await;
        let short = desk
            .wait_until(&cases[2], "the short payment", |c| {
                c["fee"]["payments"].as_array().is_some_and(|p| p.len() == 1)
            })
            .await;
        let (status, answer) = desk.decide(&cases[2], "approved", None).await;
        assert_eq!(status, 409, "{backend}: 7000 of 8000 fen is not paid: {answer} {}", short["case"]["fee"]);

        let today = connectors::framework::date_text(contracts::day_of(connectors::framework::now_ms()));
        let (status, report) = desk.call("/api/v1/bank/reconciliations", json!({ "date": today })).await;
        assert_eq!(status, 200, "{backend}: {report}");
        let payments: Vec<PaymentRecord> = admin(&bank_url, "payments").await;
        assert_eq!(report["statement_lines"].as_u64(), Some(payments.len() as u64), "{backend}: {report}");
        let found: Vec<(String, String)> = report["discrepancies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["kind"].as_str().unwrap().to_string(), d["order_number"].as_str().unwrap().to_string()))
            .collect();
        let expected = [
            ("missing_in_hub", &orders[1]),
            ("amount_mismatch", &orders[2]),
            ("duplicate", &orders[3]),
            ("unknown_order", &stranger),
            ("missing_in_hub", &stranger),
        ];
        assert_eq!(found, expected.map(|(kind, order)| (kind.to_string(), order.clone())), "{backend}: {report}");
        assert_eq!(report["matched"], 2, "{backend}: the first payments of orders 1 and 4, and nothing else: {report}");
        assert_eq!(
            desk.get(format!("/api/v1/bank/reconciliations/{today}")).await.1,
            report,
            "{backend}: the report is kept"
        );
        let (status, answer) = desk.call("/api/v1/bank/reconciliations", json!({ "date": "23.11.2026" })).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("date")), "{backend}");

        // 一窗收费 on paper: the mailed result's 送达回证 shows each item with its basis, what was
        // paid and the fiscal e-receipt the bank returned.
        desk.wait_for(&cases[0], "archived").await;
        let payments: Vec<PaymentRecord> = admin(&bank_url, "payments").await;
        let receipt_number =
            &payments.iter().find(|p| p.payment.order_number == orders[0]).unwrap().payment.receipt_number;
        let file = desk.case(&cases[0]).await;
        assert_eq!(file["case"]["fee"]["receipts"], json!([receipt_number]), "{backend}: kept in the case file");
        let titles = desk.titles(&cases[0]).await;
        let receipt = desk.document(&cases[0], titles.iter().position(|t| t == "送达回证").unwrap() + 1).await;
        for shown in
            [receipt_number.as_str(), "不动产登记费（住宅类） 80.00 元", "发改价格规〔2016〕2559号", "实收金额"]
        {
            assert!(receipt.contains(shown), "{backend}: {shown} on the 送达回证: {receipt}");
        }

        // Waivers and reductions by county rule, claimed at the counter with their proof.
        let relief =
            |rule: &str| json!({"channel": "bank", "fee_relief": {"rule": rule, "proof_number": "证 610429-0001"}});
        let (status, answer) = desk
            .call("/api/v1/applications", json!({
                "request_id": format!("{backend}-no-such-relief"), "matter_code": FIRST_REGISTRATION, "service_point": BANK_OUTLET, "channel": "bank",
                "applicant": {"name": "张三", "id_type": "111", "id_number": common::desk::APPLICANT_ID, "phone": "13912345678"},
                "materials": [], "delivery": {"method": "window"}, "fee_relief": {"rule": "friends", "proof_number": "x"},
            }))
            .await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("fee_relief.rule")), "{backend}: {answer}");
        let waived = desk.submit(&format!("{backend}-dibao"), FIRST_REGISTRATION, BANK_OUTLET, relief("dibao")).await;
        let record = desk.wait_for(&waived, "routed").await;
        let fee = &record["case"]["fee"];
        assert_eq!(
            (fee["total_fen"].as_i64(), fee["relief"]["relieved_fen"].as_i64()),
            (Some(0), Some(8_000)),
            "{backend}: {fee}"
        );
        assert_eq!(
            desk.decide(&waived, "approved", None).await.0,
            200,
            "{backend}: nothing to pay, nothing to wait for"
        );
        let reduced =
            desk.submit(&format!("{backend}-disability"), FIRST_REGISTRATION, BANK_OUTLET, relief("disability")).await;
        let record = desk.wait_until(&reduced, "a placed fee order", |c| c["fee"]["payment_code"].is_string()).await;
        let reduced_order = record["case"]["fee"]["order_number"].as_str().unwrap().to_string();
        let placed: Vec<OrderRecord> = admin(&bank_url, "orders").await;
        let waived_order = format!("{waived}-FEE");
        assert!(!placed.iter().any(|o| o.order.order_number == waived_order), "{backend}: a waived fee is not ordered");
        let order = &placed.iter().find(|o| o.order.order_number == reduced_order).unwrap().order;
        assert_eq!((order.total_fen, order.relief.as_ref().map(|r| r.amount_fen)), (4_000, Some(4_000)), "{backend}");

        // The order paid twice, withdrawn before the decision: both payments go back.
        let (status, answer) = desk.command(&cases[3], "withdrawal", json!({"reason": "申请人已另行办理"})).await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let record = desk.wait_for(&cases[3], "archived").await;
        assert_eq!(record["case"]["fee"]["refund"]["amount_fen"].as_i64(), Some(16_000), "{backend}");
        let titles = desk.titles(&cases[3]).await;
        assert!(titles.contains(&"准予撤回申请通知书".to_string()), "{backend}: {titles:?}");
        assert_eq!(desk.command(&cases[3], "withdrawal", json!({"reason": "again"})).await.0, 409, "{backend}");

        // A denied case gets back what it paid, through the bank; its file closes once paid back.
        pay(reduced_order.clone(), json!({})).await;
        desk.wait_until(&reduced, "the payment", |c| c["fee"]["payments"].as_array().is_some_and(|p| !p.is_empty()))
            .await;
        assert_eq!(desk.decide(&reduced, "denied", Some("权属来源证明与登记簿记载不一致")).await.0, 200, "{backend}");
        let record = desk.wait_for(&reduced, "archived").await;
        let refund = &record["case"]["fee"]["refund"];
        assert_eq!(
            (refund["amount_fen"].as_i64(), refund["refund_id"].is_string()),
            (Some(4_000), true),
            "{backend}: {refund}"
        );
        let refunds: Vec<Value> = admin(&bank_url, "refunds").await;
        let refunded: Vec<&str> = refunds.iter().map(|r| r["refund"]["order_number"].as_str().unwrap()).collect();
        assert_eq!(refunded, [orders[3].as_str(), reduced_order.as_str()], "{backend}: each refunded once");
        let (status, report) = desk.call("/api/v1/bank/reconciliations", json!({ "date": today })).await;
        assert_eq!(status, 200, "{backend}: {report}");
        let refunds_report = &report["refunds"];
        assert_eq!(
            (refunds_report["matched"].as_u64(), refunds_report["discrepancies"].as_array().map(Vec::len)),
            (Some(2), Some(0)),
            "{backend}: the refunds reconciled: {report}"
        );

        // Pushes the bank did not sign, or that make no sense, are refused and change nothing.
        let payment = json!({"payments": [{"payment_id": "T9", "order_number": orders[1], "amount_fen": 8000, "paid_at": 1_763_604_000_000i64, "outlet_code": BANK_OUTLET, "receipt_number": "R9"}]});
        assert_eq!(signed_push(demo.api_url(), PUSH_PATH, &payment, "guess").await.0, 401, "{backend}");
        let mut nonsense = payment.clone();
        nonsense["payments"][0]["order_number"] = json!("nonsense");
        let (status, answer) = signed_push(demo.api_url(), PUSH_PATH, &nonsense, "development-secret").await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("payments[0].order_number")), "{backend}: {answer}");
        let refund = json!({"refunds": [{"refund_id": "RF9", "refund_number": "nonsense", "order_number": orders[1], "amount_fen": 8000, "refunded_at": 1_763_604_000_000i64, "receipt_number": "R9"}]});
        let (status, answer) = signed_push(demo.api_url(), PUSH_PATH, &refund, "development-secret").await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("refunds[0].refund_number")), "{backend}: {answer}");
        demo.stop().await;
    }
}
