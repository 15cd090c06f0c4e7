//! A stand-in for the SMS gateway: holds the county's registered templates (the hub's own
//! `sms_templates.toml`, every version), takes messages (idempotent by message id), refuses a
//! number that is not a mobile one or a template, version or value it does not hold, and keeps
//! each message as the applicant's phone shows it. An applicant replies through
//! `POST /admin/replies`; replies are pushed to the hub until answered. Every request is signed
//! both ways. Faults through `PUT /admin/faults`.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{is_mobile, MessageTaken, PushAck, Reply, ReplyPush, SendMessage, MAX_REPLIES_PER_PUSH};
use crate::framework::now_ms;
pub use crate::simulation::RunningSimulator;
use crate::simulation::{error, serve, Faults, GateCounts, SignedGate, SignedPusher};
use hub_core::sms::SmsTemplates;
use hub_web::{parse_json, BadRequest};

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The account allowed in, and its secret; pushes are signed with them too.
    pub app_id: String,
    pub app_secret: String,
    /// The hub's reply push endpoint; none: replies are kept but never pushed.
    pub push_url: Option<String>,
    pub faults: Faults,
}

/// One message as the gateway delivered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    pub message: SendMessage,
    pub gateway_id: String,
    /// The text the applicant's phone shows.
    pub text: String,
    /// Calls that found the message already sent (idempotent replays).
    pub replays: u32,
}

/// An applicant answers a message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    pub message_id: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub messages: usize,
    pub send_calls: u64,
    pub replays: u64,
    pub replies: usize,
    pub replies_acknowledged: usize,
    pub pushes_sent: u64,
    pub pushes_answered: u64,
    #[serde(flatten)]
    pub calls: GateCounts,
}

#[derive(Default)]
struct Register {
    /// Each message by its id.
    messages: BTreeMap<String, MessageRecord>,
    /// Each reply, and whether the hub acknowledged its push.
    replies: Vec<(Reply, bool)>,
    send_calls: u64,
    replays: u64,
    serial: u64,
}

struct Simulator {
    gate: SignedGate,
    templates: SmsTemplates,
    register: Mutex<Register>,
    to_push: mpsc::UnboundedSender<Reply>,
    pusher: Option<Arc<SignedPusher>>,
}

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
        templates: SmsTemplates::builtin(),
        register: Default::default(),
        to_push,
        pusher: pusher.clone(),
    });
    if let Some(pusher) = pusher {
        let sim = simulator.clone();
        tokio::spawn(async move {
            let body = |batch: &[Reply]| ReplyPush { replies: batch.to_vec() };
            pusher
                .run(pending, MAX_REPLIES_PER_PUSH, body, |batch, status, answer| {
                    note_acknowledged(&sim, batch, status, answer)
                })
                .await;
        });
    }
    let app = Router::new()
        .route("/api/v1/messages", post(send))
        .route("/admin/messages", get(list_messages))
        .route("/admin/messages/{message_id}", get(one_message))
        .route("/admin/replies", get(list_replies).post(reply))
        .route("/admin/stats", get(stats))
        .with_state(simulator.clone())
        .merge(simulator.gate.faults.routes());
    serve(listener, app, shutdown, "SMS gateway")
}

/// The message checked against what the gateway holds: its text as sent, or what is wrong.
fn check_message(templates: &SmsTemplates, message: &SendMessage, key: Option<&str>) -> Result<String, BadRequest> {
    if key != Some(message.message_id.as_str()) {
        return Err(BadRequest::field("Idempotency-Key", "header Idempotency-Key must equal message_id"));
    }
    if !is_mobile(&message.phone) {
        return Err(BadRequest::field("phone", format!("{} is not a mobile number (11 digits)", message.phone)));
    }
    templates.render(&message.template, message.version, &message.params).map_err(|e| BadRequest::field("template", e))
}

async fn send(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(String::from);
    let check = |message: &SendMessage| check_message(&sim.templates, message, key.as_deref()).map(|_| ());
    let (faults, message) = match sim.gate.admit_json(&method, &uri, &headers, &body, check).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let text = check_message(&sim.templates, &message, key.as_deref()).expect("checked on admission");
    let taken = {
        let mut register = sim.register.lock().expect("register lock");
        register.send_calls += 1;
        if let Some(record) = register.messages.get_mut(&message.message_id) {
            record.replays += 1;
            let gateway_id = record.gateway_id.clone();
            register.replays += 1;
            MessageTaken { message_id: message.message_id, gateway_id, duplicate: true }
        } else {
            register.serial += 1;
            let gateway_id = format!("SMS{:010}", register.serial);
            let taken = MessageTaken {
                message_id: message.message_id.clone(),
                gateway_id: gateway_id.clone(),
                duplicate: false,
            };
            register
                .messages
                .insert(message.message_id.clone(), MessageRecord { message, gateway_id, text, replays: 0 });
            taken
        }
    };
    let status = if taken.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    sim.gate.answer(&faults, status, taken)
}

/// An applicant replies to a message they received.
async fn reply(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let request = match parse_json::<ReplyRequest>(&body) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let reply = {
        let mut register = sim.register.lock().expect("register lock");
        let Some(record) = register.messages.get(&request.message_id) else {
            return error(StatusCode::NOT_FOUND, "S404", &format!("no message {}", request.message_id));
        };
        let (reference, phone) = (record.message.reference.clone(), record.message.phone.clone());
        register.serial += 1;
        let reply = Reply {
            reply_id: format!("MO{:010}", register.serial),
            message_id: request.message_id,
            reference,
            phone,
            text: request.text,
            received_at: now_ms(),
        };
        register.replies.push((reply.clone(), false));
        reply
    };
    if sim.pusher.is_some() {
        let _ = sim.to_push.send(reply.clone());
    }
    (StatusCode::ACCEPTED, Json(reply)).into_response()
}

fn note_acknowledged(sim: &Simulator, batch: &[Reply], status: StatusCode, answer: &[u8]) {
    let acknowledged = status.is_success() && serde_json::from_slice::<PushAck>(answer).is_ok_and(|ack| ack.success);
    let mut register = sim.register.lock().expect("register lock");
    for (reply, done) in register.replies.iter_mut() {
        if batch.iter().any(|pushed| pushed.reply_id == reply.reply_id) {
            *done |= acknowledged;
        }
    }
}

async fn list_messages(State(sim): State<Arc<Simulator>>) -> Json<Vec<MessageRecord>> {
    Json(sim.register.lock().expect("register lock").messages.values().cloned().collect())
}

/// What one phone received: a lookup that stays cheap however many messages were sent.
async fn one_message(State(sim): State<Arc<Simulator>>, Path(message_id): Path<String>) -> Response {
    match sim.register.lock().expect("register lock").messages.get(&message_id) {
        Some(record) => Json(record.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "S404", &format!("no message {message_id}")),
    }
}

async fn list_replies(State(sim): State<Arc<Simulator>>) -> Json<Vec<Reply>> {
    Json(sim.register.lock().expect("register lock").replies.iter().map(|(r, _)| r.clone()).collect())
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Json<Stats> {
    let register = sim.register.lock().expect("register lock");
    let (pushes_sent, pushes_answered) = sim.pusher.as_ref().map_or((0, 0), |pusher| pusher.counts());
    Json(Stats {
        messages: register.messages.len(),
        send_calls: register.send_calls,
        replays: register.replays,
        replies: register.replies.len(),
        replies_acknowledged: register.replies.iter().filter(|(_, done)| *done).count(),
        pushes_sent,
        pushes_answered,
        calls: sim.gate.counts(),
    })
}
