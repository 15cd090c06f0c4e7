//! A stand-in for the carrier: takes orders (idempotent by order number), then pushes tracking
//! events to the push URL, in batches of whatever came due, until each batch is acknowledged. Faults can be set at start or at run
//! time through `PUT /admin/faults`: error rate, delay, duplicate pushes and an outage switch.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::protocol::{
    CreateOrder, OrderAccepted, Party, TrackingBatch, TrackingPush, MAX_TRACES_PER_PUSH, OP_IN_TRANSIT,
    OP_OUT_FOR_DELIVERY, OP_POSTED, OP_RETURNED, OP_SIGNED,
};
use crate::framework::now_ms;
pub use crate::simulation::RunningSimulator;
use crate::simulation::{self, check_rates, error, push_until_answered, serve, strikes, FaultSettings, FaultSwitch};
use hub_web::{parse_json, BadRequest};

/// Faults the simulator injects into its own API and its pushes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of order calls answered with HTTP 500, 0.0..=1.0.
    pub error_rate: f64,
    /// Added latency of every order call.
    pub delay_ms: u64,
    /// Share of pushes sent twice.
    pub duplicate_rate: f64,
    /// Answer every order call with 503 and push nothing.
    pub outage: bool,
    /// Share of items that cannot be delivered and go back to the sender (退回).
    pub failed_delivery_rate: f64,
}

impl Faults {
    /// The faults of the order API itself, as every simulator injects them.
    fn calls(&self) -> simulation::Faults {
        simulation::Faults {
            error_rate: self.error_rate,
            delay_ms: self.delay_ms,
            duplicate_rate: 0.0,
            outage: self.outage,
        }
    }
}

impl FaultSettings for Faults {
    fn check(&self) -> Result<(), BadRequest> {
        check_rates(&[
            ("error_rate", self.error_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("failed_delivery_rate", self.failed_delivery_rate),
        ])
    }
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Where tracking events are pushed; none: orders are taken but never tracked.
    pub push_url: Option<String>,
    /// Time between two tracking events of one item.
    pub step_delay: Duration,
    pub faults: Faults,
}

/// What the simulator knows of one order, for tests and operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRecord {
    pub logistics_order_no: String,
    pub waybill_no: String,
    pub receiver: Party,
    /// Create calls that made this order: exactly one, whatever the retries.
    pub created: u32,
    /// Create calls that found the order already there (idempotent replays).
    pub replays: u32,
    pub pushes_sent: u32,
    pub pushes_acknowledged: u32,
    pub delivered: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub orders: usize,
    pub create_calls: u64,
    pub replays: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    pub pushes_sent: u64,
    pub pushes_acknowledged: u64,
    pub delivered: usize,
}

struct Simulator {
    config: SimulatorConfig,
    faults: Arc<FaultSwitch<Faults>>,
    orders: Mutex<BTreeMap<String, OrderRecord>>,
    counters: Mutex<Stats>,
    waybill_serial: AtomicU64,
    client: reqwest::Client,
    /// Traces due for pushing, taken in batches by the pushers.
    due: mpsc::UnboundedSender<DueTrace>,
    shutdown: CancellationToken,
}

/// A trace waiting to be pushed, and whom to tell once the hub acknowledged it.
struct DueTrace {
    trace: TrackingPush,
    acknowledged: oneshot::Sender<()>,
}

/// Push calls in flight at once.
const PUSHERS: usize = 2;

/// Serves the simulator on `listener` until the returned handle is dropped.
pub fn spawn(listener: TcpListener, config: SimulatorConfig) -> anyhow::Result<RunningSimulator> {
    let shutdown = CancellationToken::new();
    let (due, due_traces) = mpsc::unbounded_channel();
    let push_url = config.push_url.clone();
    let simulator = Arc::new(Simulator {
        faults: FaultSwitch::new(config.faults.clone()),
        config,
        orders: Mutex::new(BTreeMap::new()),
        counters: Mutex::new(Stats::default()),
        waybill_serial: AtomicU64::new(0),
        client: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
        due,
        shutdown: shutdown.clone(),
    });
    if let Some(push_url) = push_url {
        let due_traces = Arc::new(tokio::sync::Mutex::new(due_traces));
        for _ in 0..PUSHERS {
            tokio::spawn(push_batches(simulator.clone(), push_url.clone(), due_traces.clone()));
        }
    }
    let app = Router::new()
        .route("/api/v1/orders", axum::routing::post(create_order))
        .route("/api/v1/orders/{order_no}", get(get_order))
        .route("/admin/orders", get(list_orders))
        .route("/admin/stats", get(stats))
        .with_state(simulator.clone())
        .merge(simulator.faults.routes());
    serve(listener, app, shutdown, "postal")
}

fn check_party(prefix: &str, party: &Party) -> Result<(), BadRequest> {
    let fields = [
        ("name", &party.name),
        ("prov", &party.prov),
        ("city", &party.city),
        ("county", &party.county),
        ("address", &party.address),
    ];
    for (name, value) in fields {
        if value.trim().is_empty() {
            return Err(BadRequest::field(format!("{prefix}.{name}"), format!("{prefix}.{name} must not be empty")));
        }
    }
    if party.post_code.len() != 6 || !party.post_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadRequest::field(format!("{prefix}.post_code"), "post code must be 6 digits"));
    }
    if party.mobile.trim().is_empty() {
        return Err(BadRequest::field(format!("{prefix}.mobile"), "a phone number is required"));
    }
    Ok(())
}

async fn create_order(State(sim): State<Arc<Simulator>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(failure) = sim.faults.current().calls().before_call().await {
        sim.counters.lock().expect("stats lock").failed_calls += 1;
        return failure;
    }
    let order: CreateOrder = match parse_json(&body) {
        Ok(order) => order,
        Err(bad) => {
            sim.counters.lock().expect("stats lock").rejected_calls += 1;
            return bad.into_response();
        }
    };
    let checked =
        check_party("sender", &order.sender).and_then(|_| check_party("receiver", &order.receiver)).and_then(|_| {
            match headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()) {
                Some(key) if key == order.logistics_order_no => Ok(()),
                _ => Err(BadRequest::field("Idempotency-Key", "header Idempotency-Key must equal logistics_order_no")),
            }
        });
    if let Err(bad) = checked {
        sim.counters.lock().expect("stats lock").rejected_calls += 1;
        return bad.into_response();
    }
    let (accepted, created) = {
        let mut orders = sim.orders.lock().expect("orders lock");
        sim.counters.lock().expect("stats lock").create_calls += 1;
        match orders.get_mut(&order.logistics_order_no) {
            Some(existing) => {
                existing.replays += 1;
                sim.counters.lock().expect("stats lock").replays += 1;
                (
                    OrderAccepted {
                        logistics_order_no: existing.logistics_order_no.clone(),
                        waybill_no: existing.waybill_no.clone(),
                        duplicate: true,
                    },
                    false,
                )
            }
            None => {
                let serial = sim.waybill_serial.fetch_add(1, Ordering::SeqCst) + 1;
                let waybill_no = format!("11{serial:011}");
                orders.insert(
                    order.logistics_order_no.clone(),
                    OrderRecord {
                        logistics_order_no: order.logistics_order_no.clone(),
                        waybill_no: waybill_no.clone(),
                        receiver: order.receiver.clone(),
                        created: 1,
                        replays: 0,
                        pushes_sent: 0,
                        pushes_acknowledged: 0,
                        delivered: false,
                    },
                );
                (
                    OrderAccepted {
                        logistics_order_no: order.logistics_order_no.clone(),
                        waybill_no,
                        duplicate: false,
                    },
                    true,
                )
            }
        }
    };
    if created {
        tokio::spawn(track(sim.clone(), accepted.clone(), order.receiver.name.clone()));
        (StatusCode::CREATED, Json(accepted)).into_response()
    } else {
        (StatusCode::OK, Json(accepted)).into_response()
    }
}

/// Makes the item's tracking events due one after the other, each once the one before was
/// acknowledged, so that the hub sees an item's events in order.
async fn track(sim: Arc<Simulator>, order: OrderAccepted, receiver: String) {
    if sim.config.push_url.is_none() {
        return;
    }
    let fails = { strikes(sim.faults.current().failed_delivery_rate) };
    let steps = [OP_POSTED, OP_IN_TRANSIT, OP_OUT_FOR_DELIVERY, if fails { OP_RETURNED } else { OP_SIGNED }];
    for (code, name) in steps {
        tokio::select! {
            _ = tokio::time::sleep(sim.config.step_delay) => {}
            _ = sim.shutdown.cancelled() => return,
        }
        let trace = TrackingPush {
            push_id: format!("{}-{code}", order.waybill_no),
            waybill_no: order.waybill_no.clone(),
            logistics_order_no: order.logistics_order_no.clone(),
            op_code: code.into(),
            op_name: name.into(),
            op_time: now_ms(),
            op_org_name: if code == OP_IN_TRANSIT.0 {
                "咸阳邮区中心局".into()
            } else {
                "旬邑县邮政分公司".into()
            },
            // Named as a carrier's scans name them: whoever took the item in, sorted or carried it.
            operator_name: match code {
                c if c == OP_POSTED.0 => "李揽投",
                c if c == OP_IN_TRANSIT.0 => "咸阳中心局分拣组",
                _ => "王投递",
            }
            .into(),
            signer_name: (code == OP_SIGNED.0).then(|| receiver.clone()),
        };
        let duplicate = { strikes(sim.faults.current().duplicate_rate) };
        for _ in 0..(1 + usize::from(duplicate)) {
            let (acknowledged, ack) = oneshot::channel();
            if sim.due.send(DueTrace { trace: trace.clone(), acknowledged }).is_err() || ack.await.is_err() {
                return; // shutting down
            }
        }
    }
    if let Some(record) = sim.orders.lock().expect("orders lock").get_mut(&order.logistics_order_no) {
        record.delivered = true;
    }
}

/// Takes whatever traces are due, up to a full batch, and pushes them until acknowledged.
async fn push_batches(
    sim: Arc<Simulator>,
    push_url: String,
    due: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<DueTrace>>>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut due = due.lock().await;
            let first = tokio::select! {
                first = due.recv() => first,
                _ = sim.shutdown.cancelled() => None,
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < MAX_TRACES_PER_PUSH {
                match due.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let body = TrackingBatch { traces: batch.iter().map(|d| d.trace.clone()).collect() };
        if !push_until_acknowledged(&sim, &push_url, &body).await {
            return;
        }
        for due in batch {
            let _ = due.acknowledged.send(());
        }
    }
}

/// Returns false only when the simulator is shutting down.
async fn push_until_acknowledged(sim: &Simulator, push_url: &str, batch: &TrackingBatch) -> bool {
    let tried = |acknowledged: bool| {
        let mut orders = sim.orders.lock().expect("orders lock");
        let mut counters = sim.counters.lock().expect("stats lock");
        let traces = batch.traces.len() as u64;
        counters.pushes_sent += traces;
        counters.pushes_acknowledged += if acknowledged { traces } else { 0 };
        for trace in &batch.traces {
            if let Some(record) = orders.get_mut(&trace.logistics_order_no) {
                record.pushes_sent += 1;
                record.pushes_acknowledged += u32::from(acknowledged);
            }
        }
    };
    let request = || sim.client.post(push_url).json(batch);
    push_until_answered(request, || sim.faults.current().outage, &sim.shutdown, tried).await.is_some()
}

async fn get_order(State(sim): State<Arc<Simulator>>, Path(order_no): Path<String>) -> Response {
    match sim.orders.lock().expect("orders lock").get(&order_no) {
        Some(record) => Json(record.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "B404", &format!("no order {order_no}")),
    }
}

async fn list_orders(State(sim): State<Arc<Simulator>>) -> Json<Vec<OrderRecord>> {
    Json(sim.orders.lock().expect("orders lock").values().cloned().collect())
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let orders = sim.orders.lock().expect("orders lock");
    let mut stats = sim.counters.lock().expect("stats lock").clone();
    stats.orders = orders.len();
    stats.delivered = orders.values().filter(|o| o.delivered).count();
    Json(stats)
}
