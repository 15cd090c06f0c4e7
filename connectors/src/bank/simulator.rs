//! A stand-in for the bank network: takes fee orders (idempotent by order number) and gives
//! each a payment code; applicants pay at outlets (`POST /admin/payments`), and each payment is
//! pushed to the hub until answered; serves the daily statement as CSV. A payment may be made
//! without a push, for another amount, or twice, so that reconciliation has something to find.
//! Every request is signed both ways. Faults through `PUT /admin/faults`.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{OrderPlaced, Payment, PaymentPush, PlaceOrder, PushAck, MAX_PAYMENTS_PER_PUSH};
use crate::framework::{date_text, now_ms};
pub use crate::simulation::RunningSimulator;
use crate::simulation::{error, serve, Faults, GateCounts, SignedGate, SignedPusher};
use hub_web::{parse_json, BadRequest};

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The merchant allowed in, and its secret; pushes are signed with them too.
    pub app_id: String,
    pub app_secret: String,
    /// The hub's payment push endpoint; none: payments are taken but never pushed.
    pub push_url: Option<String>,
    pub faults: Faults,
}

/// What the bank knows of one fee order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: PlaceOrder,
    pub payment_code: String,
    /// Place calls that found the order already there (idempotent replays).
    pub replays: u32,
}

/// One payment and whether the hub acknowledged its push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub payment: Payment,
    pub pushed: bool,
    pub acknowledged: bool,
}

/// An applicant pays at an outlet: the amount defaults to the order's total; `push: false`
/// leaves the hub unaware (a lost confirmation), for reconciliation to find.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub order_number: String,
    pub amount_fen: Option<i64>,
    pub outlet_code: Option<String>,
    #[serde(default = "yes")]
    pub push: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub orders: usize,
    pub payments: usize,
    pub place_calls: u64,
    pub replays: u64,
    pub statements: u64,
    pub pushes_sent: u64,
    pub pushes_answered: u64,
    #[serde(flatten)]
    pub calls: GateCounts,
}

#[derive(Default)]
struct Ledger {
    orders: BTreeMap<String, OrderRecord>,
    payments: Vec<PaymentRecord>,
    serial: u64,
}

struct Simulator {
    gate: SignedGate,
    ledger: Mutex<Ledger>,
    counters: Mutex<Stats>,
    to_push: mpsc::UnboundedSender<Payment>,
    pusher: Option<Arc<SignedPusher>>,
}

/// Serves the simulator on `listener` until the returned handle is dropped.
pub fn spawn(listener: TcpListener, config: SimulatorConfig) -> anyhow::Result<RunningSimulator> {
    let shutdown = CancellationToken::new();
    let (to_push, pending) = mpsc::unbounded_channel();
    let gate = SignedGate::new(&config.app_id, &config.app_secret, config.faults.clone());
    let pusher = SignedPusher::to(
        config.push_url.as_deref(),
        &config.app_id,
        &config.app_secret,
        gate.faults.clone(),
        shutdown.clone(),
    )?;
    let simulator = Arc::new(Simulator {
        gate,
        ledger: Default::default(),
        counters: Default::default(),
        to_push,
        pusher: pusher.clone(),
    });
    if let Some(pusher) = pusher {
        let sim = simulator.clone();
        tokio::spawn(async move {
            let body = |batch: &[Payment]| PaymentPush { payments: batch.to_vec() };
            pusher
                .run(pending, MAX_PAYMENTS_PER_PUSH, body, |batch, status, answer| {
                    note_acknowledged(&sim, batch, status, answer)
                })
                .await;
        });
    }
    let app = Router::new()
        .route("/api/v1/fee-orders", post(place_order))
        .route("/api/v1/statements/{day}", get(statement))
        .route("/admin/orders", get(list_orders))
        .route("/admin/payments", get(list_payments).post(pay))
        .route("/admin/stats", get(stats))
        .with_state(simulator.clone())
        .merge(simulator.gate.faults.routes());
    serve(listener, app, shutdown, "bank")
}

fn check_order(order: &PlaceOrder, key: Option<&str>) -> Result<(), BadRequest> {
    if key != Some(order.order_number.as_str()) {
        return Err(BadRequest::field("Idempotency-Key", "header Idempotency-Key must equal order_number"));
    }
    for (field, value) in [
        ("order_number", &order.order_number),
        ("payer_name", &order.payer_name),
        ("payee_department", &order.payee_department),
    ] {
        if value.trim().is_empty() {
            return Err(BadRequest::field(field, format!("{field} must not be empty")));
        }
    }
    if order.items.is_empty() || order.items.iter().any(|item| item.amount_fen <= 0) {
        return Err(BadRequest::field("items", "an order has items, each a positive number of fen"));
    }
    if order.items.iter().map(|item| item.amount_fen).sum::<i64>() != order.total_fen {
        return Err(BadRequest::field("total_fen", "total_fen is the sum of the items"));
    }
    Ok(())
}

async fn place_order(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok());
    let check = |order: &PlaceOrder| check_order(order, key);
    let (faults, order) = match sim.gate.admit_json(&method, &uri, &headers, &body, check).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let placed = {
        let mut ledger = sim.ledger.lock().expect("ledger lock");
        let mut counters = sim.counters.lock().expect("stats lock");
        counters.place_calls += 1;
        if let Some(record) = ledger.orders.get_mut(&order.order_number) {
            record.replays += 1;
            counters.replays += 1;
            OrderPlaced { order_number: order.order_number, payment_code: record.payment_code.clone(), duplicate: true }
        } else {
            ledger.serial += 1;
            let payment_code = format!("6104{:012}", ledger.serial);
            let placed = OrderPlaced {
                order_number: order.order_number.clone(),
                payment_code: payment_code.clone(),
                duplicate: false,
            };
            ledger.orders.insert(order.order_number.clone(), OrderRecord { order, payment_code, replays: 0 });
            placed
        }
    };
    let status = if placed.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    sim.gate.answer(&faults, status, placed)
}

/// Every payment of a day (China Standard Time), as CSV.
async fn statement(
    State(sim): State<Arc<Simulator>>,
    Path(day): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, b"").await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    if time::Date::parse(&day, time::macros::format_description!("[year]-[month]-[day]")).is_err() {
        return sim.gate.reject(BadRequest::field("day", format!("a statement day is YYYY-MM-DD, not {day:?}")));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    {
        let ledger = sim.ledger.lock().expect("ledger lock");
        for record in ledger.payments.iter().filter(|r| date_text(contracts::day_of(r.payment.paid_at)) == day) {
            writer.serialize(&record.payment).expect("writing to memory");
        }
    }
    let mut text = writer.into_inner().expect("writing to memory");
    if text.is_empty() {
        text = format!("{}\n", super::protocol::STATEMENT_HEADER).into_bytes();
    }
    sim.counters.lock().expect("stats lock").statements += 1;
    if let Some(lost) = sim.gate.lose(&faults) {
        return lost;
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response()
}

/// An applicant pays an order at an outlet.
async fn pay(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let request = match parse_json::<PayRequest>(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let (payment, pushed) = {
        let mut ledger = sim.ledger.lock().expect("ledger lock");
        // An order this bank never took is paid only for a stated amount (a payer quoting a
        // number from elsewhere), which reconciliation then has to place.
        let Some(total) = ledger.orders.get(&request.order_number).map(|o| o.order.total_fen).or(request.amount_fen)
        else {
            return error(
                StatusCode::NOT_FOUND,
                "B404",
                &format!("no fee order {}; give amount_fen to pay it anyway", request.order_number),
            );
        };
        ledger.serial += 1;
        let payment = Payment {
            payment_id: format!("T{}{:08}", date_text(contracts::day_of(now_ms())).replace('-', ""), ledger.serial),
            order_number: request.order_number,
            amount_fen: request.amount_fen.unwrap_or(total),
            paid_at: now_ms(),
            outlet_code: request.outlet_code.unwrap_or_else(|| "BANK-RCC-610429001".into()),
        };
        let pushed = request.push && sim.pusher.is_some();
        ledger.payments.push(PaymentRecord { payment: payment.clone(), pushed, acknowledged: false });
        (payment, pushed)
    };
    if pushed {
        let _ = sim.to_push.send(payment.clone());
    }
    (StatusCode::ACCEPTED, Json(payment)).into_response()
}

fn note_acknowledged(sim: &Simulator, batch: &[Payment], status: StatusCode, answer: &[u8]) {
    let acknowledged = status.is_success() && serde_json::from_slice::<PushAck>(answer).is_ok_and(|ack| ack.success);
    let mut ledger = sim.ledger.lock().expect("ledger lock");
    for record in ledger.payments.iter_mut().filter(|r| batch.iter().any(|p| p.payment_id == r.payment.payment_id)) {
        record.acknowledged |= acknowledged;
    }
}

async fn list_orders(State(sim): State<Arc<Simulator>>) -> Json<Vec<OrderRecord>> {
    Json(sim.ledger.lock().expect("ledger lock").orders.values().cloned().collect())
}

async fn list_payments(State(sim): State<Arc<Simulator>>) -> Json<Vec<PaymentRecord>> {
    Json(sim.ledger.lock().expect("ledger lock").payments.clone())
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let mut stats = sim.counters.lock().expect("stats lock").clone();
    stats.calls = sim.gate.counts();
    (stats.pushes_sent, stats.pushes_answered) = sim.pusher.as_ref().map_or((0, 0), |pusher| pusher.counts());
    let ledger = sim.ledger.lock().expect("ledger lock");
    (stats.orders, stats.payments) = (ledger.orders.len(), ledger.payments.len());
    Json(stats)
}
