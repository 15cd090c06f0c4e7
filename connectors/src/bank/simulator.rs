//! A stand-in for the bank network: takes fee orders (idempotent by order number) and gives
//! each a payment code; applicants pay at outlets (`POST /admin/payments`), each payment gets a
//! fiscal e-receipt number and is pushed to the hub until answered; takes refunds (idempotent
//! by refund number), pays them back at once and pushes them too; serves the daily statements
//! of payments and refunds as CSV. A payment may be made
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

use super::protocol::{
    OrderPlaced, Payment, PaymentPush, PlaceOrder, PlaceRefund, PushAck, RefundPaid, RefundPlaced,
    MAX_PAYMENTS_PER_PUSH,
};
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

/// A refund paid back, and whether the hub acknowledged its push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRecord {
    pub refund: RefundPaid,
    pub reason: String,
    pub replays: u32,
    pub acknowledged: bool,
}

/// What the bank pushes to the hub.
#[derive(Debug, Clone)]
enum Pushed {
    Payment(Payment),
    Refund(RefundPaid),
}

impl Pushed {
    fn id(&self) -> &str {
        match self {
            Pushed::Payment(p) => &p.payment_id,
            Pushed::Refund(r) => &r.refund_id,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub orders: usize,
    pub payments: usize,
    pub refunds: usize,
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
    refunds: BTreeMap<String, RefundRecord>,
    serial: u64,
}

impl Ledger {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A fiscal e-receipt number (财政电子票据号): region, year, serial.
    fn receipt_number(&mut self) -> String {
        format!("61042926{:010}", self.next_serial())
    }
}

struct Simulator {
    gate: SignedGate,
    ledger: Mutex<Ledger>,
    counters: Mutex<Stats>,
    to_push: mpsc::UnboundedSender<Pushed>,
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
            let body = |batch: &[Pushed]| {
                let (mut payments, mut refunds) = (Vec::new(), Vec::new());
                for pushed in batch {
                    match pushed {
                        Pushed::Payment(p) => payments.push(p.clone()),
                        Pushed::Refund(r) => refunds.push(r.clone()),
                    }
                }
                PaymentPush { payments, refunds }
            };
            pusher
                .run(pending, MAX_PAYMENTS_PER_PUSH, body, |batch, status, answer| {
                    note_acknowledged(&sim, batch, status, answer)
                })
                .await;
        });
    }
    let app = Router::new()
        .route("/api/v1/fee-orders", post(place_order))
        .route("/api/v1/refunds", post(place_refund))
        .route("/api/v1/statements/{day}", get(statement))
        .route("/api/v1/statements/{day}/refunds", get(refund_statement))
        .route("/admin/refunds", get(list_refunds))
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
    if order.items.is_empty() || order.items.iter().any(|item| item.amount_fen <= 0 || item.basis.trim().is_empty()) {
        return Err(BadRequest::field("items", "an order has items, each a positive number of fen with its basis"));
    }
    let relieved = order.relief.as_ref().map_or(0, |relief| relief.amount_fen);
    if order.items.iter().map(|item| item.amount_fen).sum::<i64>() - relieved != order.total_fen {
        return Err(BadRequest::field("total_fen", "total_fen is the sum of the items less the relief"));
    }
    if order.total_fen <= 0 {
        return Err(BadRequest::field("total_fen", "a fee waived in full is not ordered"));
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
            let payment_code = format!("6104{:012}", ledger.next_serial());
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

/// A refund of what an order took: idempotent by refund number; the bank pays it back at once
/// and pushes it.
async fn place_refund(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(String::from);
    let check = |refund: &PlaceRefund| {
        if key.as_deref() != Some(refund.refund_number.as_str()) {
            return Err(BadRequest::field("Idempotency-Key", "header Idempotency-Key must equal refund_number"));
        }
        if refund.amount_fen <= 0 {
            return Err(BadRequest::field("amount_fen", "amount_fen is a positive number of fen"));
        }
        Ok(())
    };
    let (faults, request) = match sim.gate.admit_json(&method, &uri, &headers, &body, check).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let placed = {
        let mut ledger = sim.ledger.lock().expect("ledger lock");
        if let Some(record) = ledger.refunds.get_mut(&request.refund_number) {
            record.replays += 1;
            RefundPlaced { refund_number: request.refund_number, duplicate: true }
        } else {
            let paid: i64 = ledger
                .payments
                .iter()
                .filter(|r| r.payment.order_number == request.order_number)
                .map(|r| r.payment.amount_fen)
                .sum();
            if paid < request.amount_fen {
                return sim.gate.reject(BadRequest::field(
                    "amount_fen",
                    format!(
                        "order {} took {paid} fen; {} cannot be refunded",
                        request.order_number, request.amount_fen
                    ),
                ));
            }
            let refund = RefundPaid {
                refund_id: format!(
                    "R{}{:08}",
                    date_text(contracts::day_of(now_ms())).replace('-', ""),
                    ledger.next_serial()
                ),
                refund_number: request.refund_number.clone(),
                order_number: request.order_number,
                amount_fen: request.amount_fen,
                refunded_at: now_ms(),
                receipt_number: ledger.receipt_number(),
            };
            if sim.pusher.is_some() {
                let _ = sim.to_push.send(Pushed::Refund(refund.clone()));
            }
            let record = RefundRecord { refund, reason: request.reason, replays: 0, acknowledged: false };
            ledger.refunds.insert(request.refund_number.clone(), record);
            RefundPlaced { refund_number: request.refund_number, duplicate: false }
        }
    };
    let status = if placed.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    sim.gate.answer(&faults, status, placed)
}

/// Every payment of a day (China Standard Time), as CSV.
async fn statement(
    sim: State<Arc<Simulator>>,
    day: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let lines = |ledger: &Ledger, day: &str| -> Vec<Payment> {
        let paid_on = |r: &&PaymentRecord| date_text(contracts::day_of(r.payment.paid_at)) == day;
        ledger.payments.iter().filter(paid_on).map(|r| r.payment.clone()).collect()
    };
    statement_of(sim, day, method, uri, headers, super::protocol::STATEMENT_HEADER, lines).await
}

/// Every refund paid back on a day, as CSV.
async fn refund_statement(
    sim: State<Arc<Simulator>>,
    day: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let lines = |ledger: &Ledger, day: &str| -> Vec<RefundPaid> {
        let paid_on = |r: &&RefundRecord| date_text(contracts::day_of(r.refund.refunded_at)) == day;
        ledger.refunds.values().filter(paid_on).map(|r| r.refund.clone()).collect()
    };
    statement_of(sim, day, method, uri, headers, super::protocol::REFUND_STATEMENT_HEADER, lines).await
}

/// A day's statement: the `lines` of the ledger for the day, as CSV under `header`.
async fn statement_of<Line: Serialize>(
    State(sim): State<Arc<Simulator>>,
    Path(day): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    header_line: &str,
    lines: impl Fn(&Ledger, &str) -> Vec<Line>,
) -> Response {
    let faults = match sim.gate.admit(&method, &uri, &headers, b"").await {
        Ok(faults) => faults,
        Err(answer) => return answer,
    };
    if time::Date::parse(&day, time::macros::format_description!("[year]-[month]-[day]")).is_err() {
        return sim.gate.reject(BadRequest::field("day", format!("a statement day is YYYY-MM-DD, not {day:?}")));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for line in lines(&sim.ledger.lock().expect("ledger lock"), &day) {
        writer.serialize(&line).expect("writing to memory");
    }
    let mut text = writer.into_inner().expect("writing to memory");
    if text.is_empty() {
        text = format!("{header_line}\n").into_bytes();
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
        let payment = Payment {
            payment_id: format!(
                "T{}{:08}",
                date_text(contracts::day_of(now_ms())).replace('-', ""),
                ledger.next_serial()
            ),
            order_number: request.order_number,
            amount_fen: request.amount_fen.unwrap_or(total),
            paid_at: now_ms(),
            outlet_code: request.outlet_code.unwrap_or_else(|| "BANK-RCC-610429001".into()),
            receipt_number: ledger.receipt_number(),
        };
        let pushed = request.push && sim.pusher.is_some();
        ledger.payments.push(PaymentRecord { payment: payment.clone(), pushed, acknowledged: false });
        (payment, pushed)
    };
    if pushed {
        let _ = sim.to_push.send(Pushed::Payment(payment.clone()));
    }
    (StatusCode::ACCEPTED, Json(payment)).into_response()
}

fn note_acknowledged(sim: &Simulator, batch: &[Pushed], status: StatusCode, answer: &[u8]) {
    let acknowledged = status.is_success() && serde_json::from_slice::<PushAck>(answer).is_ok_and(|ack| ack.success);
    let in_batch = |id: &str| batch.iter().any(|pushed| pushed.id() == id);
    let mut ledger = sim.ledger.lock().expect("ledger lock");
    for record in ledger.payments.iter_mut().filter(|r| in_batch(&r.payment.payment_id)) {
        record.acknowledged |= acknowledged;
    }
    for record in ledger.refunds.values_mut().filter(|r| in_batch(&r.refund.refund_id)) {
        record.acknowledged |= acknowledged;
    }
}

async fn list_refunds(State(sim): State<Arc<Simulator>>) -> Json<Vec<RefundRecord>> {
    Json(sim.ledger.lock().expect("ledger lock").refunds.values().cloned().collect())
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
    (stats.orders, stats.payments, stats.refunds) = (ledger.orders.len(), ledger.payments.len(), ledger.refunds.len());
    Json(stats)
}
