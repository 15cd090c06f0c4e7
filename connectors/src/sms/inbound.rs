//! Inbound half: the applicants' replies pushed by the gateway (短信评), recorded (outbox)
//! before they are acknowledged and deduplicated on the gateway's reply id. Whether a reply
//! holds a grade, and whether it answers a review invitation, the case decides.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bus::{Effect, Outbox};
use contracts::{Event, SmsReplyReceived};

use super::protocol::{Reply, ReplyPush, MAX_REPLIES_PER_PUSH};
use super::{SmsConfig, PUSH_CONSUMER, PUSH_PATH};
use crate::framework::{check_signature, now_ms, record_push};
use hub_core::access::Rule;
use hub_web::{parse_json, BadRequest, Route};

struct Push {
    config: SmsConfig,
    outbox: Arc<dyn Outbox>,
}

/// The inbound half's route: the gateway's signed reply pushes.
pub fn routes(config: SmsConfig, outbox: Arc<dyn Outbox>) -> Vec<Route> {
    let push = Arc::new(Push { config, outbox });
    vec![Route::post(PUSH_PATH, Rule::Signed, receive_push)
        .doc("counterparts", "the SMS gateway pushes the applicants' replies")
        .any_body()
        .with_state(push)]
}

async fn receive_push(
    State(push): State<Arc<Push>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if let Err(bad) =
        check_signature(&headers, method.as_str(), path, &body, &push.config.app_id, &push.config.app_secret, now_ms())
    {
        return bad.into_response();
    }
    let effects = parse_json::<ReplyPush>(&body).and_then(|batch| effects_of(&batch));
    record_push(push.outbox.as_ref(), PUSH_CONSUMER, effects).await
}

/// What a push stands for; a bad reply refuses the whole push, naming it by its index.
fn effects_of(push: &ReplyPush) -> Result<Vec<Effect>, BadRequest> {
    if push.replies.is_empty() || push.replies.len() > MAX_REPLIES_PER_PUSH {
        return Err(BadRequest::field(
            "replies",
            format!("a push carries 1 to {MAX_REPLIES_PER_PUSH} replies, not {}", push.replies.len()),
        ));
    }
    push.replies
        .iter()
        .enumerate()
        .map(|(index, reply)| {
            let event = received(reply).map_err(|bad| bad.within(&format!("replies[{index}]")))?;
            Ok(Effect { source_event_id: event.event_id().to_string(), events: vec![event] })
        })
        .collect()
}

fn received(reply: &Reply) -> Result<Event, BadRequest> {
    for (field, value) in
        [("reply_id", &reply.reply_id), ("message_id", &reply.message_id), ("reference", &reply.reference)]
    {
        if value.trim().is_empty() {
            return Err(BadRequest::field(field, format!("{field} must not be empty")));
        }
    }
    if reply.received_at <= 0 {
        return Err(BadRequest::field("received_at", "received_at must be a positive epoch time in milliseconds"));
    }
    Ok(SmsReplyReceived {
        event_id: hub_core::ids::sms_reply(&reply.reply_id),
        case_number: reply.reference.clone(),
        occurred_at: reply.received_at,
        message_id: reply.message_id.clone(),
        reply_id: reply.reply_id.clone(),
        text: reply.text.clone(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str) -> Reply {
        Reply {
            reply_id: id.into(),
            message_id: "61042920261120000001/9/sms".into(),
            reference: "61042920261120000001".into(),
            phone: "13912345678".into(),
            text: "5".into(),
            received_at: 1_763_604_000_000,
        }
    }

    #[test]
    fn a_reply_names_its_case_and_a_bad_one_is_refused_by_index() {
        let effects = effects_of(&ReplyPush { replies: vec![reply("R1")] }).unwrap();
        let Event::SmsReplyReceived(received) = &effects[0].events[0] else { unreachable!() };
        assert_eq!(
            (received.case_number.as_str(), received.event_id.as_str()),
            ("61042920261120000001", "sms-reply/R1")
        );
        let error = effects_of(&ReplyPush { replies: vec![reply("R1"), reply(" ")] }).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("replies[1].reply_id"));
        assert_eq!(effects_of(&ReplyPush { replies: vec![] }).unwrap_err().field.as_deref(), Some("replies"));
    }
}
