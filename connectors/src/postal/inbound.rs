//! Inbound half: the carrier pushes batches of tracking events; each batch is recorded durably
//! (outbox) in one transaction before it is acknowledged, and a trace seen before is
//! acknowledged again without a second record.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use bus::{Effect, Outbox};
use contracts::{DeliveryCompleted, Event, TrackingEvent};

use super::protocol::{final_outcome, TrackingBatch, TrackingPush, MAX_TRACES_PER_PUSH};
use super::{PUSH_CONSUMER, PUSH_PATH};
use crate::framework::record_push;
use hub_core::access::Rule;
use hub_web::{parse_json, BadRequest, Route};

/// The inbound half's route: the carrier's tracking pushes. The postal protocol signs nothing;
/// the gate lets them in as a counterpart's, and only well-formed traces are taken.
pub fn routes(outbox: Arc<dyn Outbox>) -> Vec<Route> {
    vec![Route::post(PUSH_PATH, Rule::Signed, receive_push)
        .doc("counterparts", "the carrier pushes tracking events")
        .any_body()
        .with_state(outbox)]
}

async fn receive_push(State(outbox): State<Arc<dyn Outbox>>, body: Bytes) -> Response {
    record_push(outbox.as_ref(), PUSH_CONSUMER, parse_json::<TrackingBatch>(&body).and_then(|batch| effects_of(&batch)))
        .await
}

/// What a batch stands for; a bad trace refuses the whole batch, naming it by its index.
fn effects_of(batch: &TrackingBatch) -> Result<Vec<Effect>, BadRequest> {
    if batch.traces.is_empty() || batch.traces.len() > MAX_TRACES_PER_PUSH {
        return Err(BadRequest::field(
            "traces",
            format!("a push carries 1 to {MAX_TRACES_PER_PUSH} traces, not {}", batch.traces.len()),
        ));
    }
    batch
        .traces
        .iter()
        .enumerate()
        .map(|(index, trace)| {
            let events = events_of(trace).map_err(|bad| bad.within(&format!("traces[{index}]")))?;
            Ok(Effect { source_event_id: trace.push_id.clone(), events })
        })
        .collect()
}

/// The events a push stands for: a tracking event, and the delivery outcome when final.
pub fn events_of(push: &TrackingPush) -> Result<Vec<Event>, BadRequest> {
    for (field, value) in [
        ("push_id", &push.push_id),
        ("waybill_no", &push.waybill_no),
        ("logistics_order_no", &push.logistics_order_no),
        ("op_code", &push.op_code),
    ] {
        if value.trim().is_empty() {
            return Err(BadRequest::field(field, format!("{field} must not be empty")));
        }
    }
    if push.op_time <= 0 {
        return Err(BadRequest::field("op_time", "op_time must be a positive epoch time in milliseconds"));
    }
    let case_number = match push.logistics_order_no.rsplit_once('-') {
        Some((case, _)) if !case.is_empty() => case.to_string(),
        _ => {
            return Err(BadRequest::field(
                "logistics_order_no",
                format!("{} is not one of our order numbers", push.logistics_order_no),
            ))
        }
    };
    let mut events: Vec<Event> = vec![TrackingEvent {
        event_id: hub_core::ids::tracking_event(&push.waybill_no, &push.op_code, push.op_time),
        case_number: case_number.clone(),
        occurred_at: push.op_time,
        order_number: push.logistics_order_no.clone(),
        waybill_number: push.waybill_no.clone(),
        op_code: push.op_code.clone(),
        op_name: push.op_name.clone(),
        office: push.op_org_name.clone(),
        operator: push.operator_name.clone(),
    }
    .into()];
    if let Some(outcome) = final_outcome(&push.op_code) {
        events.push(
            DeliveryCompleted {
                event_id: hub_core::ids::delivery_completed(&push.waybill_no),
                case_number,
                occurred_at: push.op_time,
                order_number: push.logistics_order_no.clone(),
                waybill_number: push.waybill_no.clone(),
                outcome: outcome.into(),
                signed_by: push.signer_name.clone(),
            }
            .into(),
        );
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(op: (&str, &str)) -> TrackingPush {
        TrackingPush {
            push_id: "p1".into(),
            waybill_no: "1100000000017".into(),
            logistics_order_no: "61042920261120000001-P1".into(),
            op_code: op.0.into(),
            op_name: op.1.into(),
            op_time: 1_763_604_000_000,
            op_org_name: "旬邑县邮政分公司".into(),
            operator_name: "赵投递".into(),
            signer_name: Some("张三".into()),
        }
    }

    #[test]
    fn a_signed_push_is_a_tracking_event_and_the_delivery_outcome() {
        let events = events_of(&push(super::super::protocol::OP_SIGNED)).unwrap();
        assert_eq!(events.iter().map(Event::kind).collect::<Vec<_>>(), ["TrackingEvent", "DeliveryCompleted"]);
        assert!(events.iter().all(|e| e.case_number() == "61042920261120000001"));
        let Event::DeliveryCompleted(done) = &events[1] else { unreachable!() };
        assert_eq!(done.outcome, "signed");
        assert_eq!(done.signed_by.as_deref(), Some("张三"));
    }

    #[test]
    fn a_push_with_bad_fields_names_them() {
        let mut bad = push(super::super::protocol::OP_POSTED);
        bad.logistics_order_no = "nonsense".into();
        assert_eq!(events_of(&bad).unwrap_err().field.as_deref(), Some("logistics_order_no"));
        let mut bad = push(super::super::protocol::OP_POSTED);
        bad.op_time = 0;
        assert_eq!(events_of(&bad).unwrap_err().field.as_deref(), Some("op_time"));
        assert_eq!(events_of(&push(super::super::protocol::OP_POSTED)).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_trace_refuses_its_batch_and_is_named_by_index() {
        let mut bad = push(super::super::protocol::OP_IN_TRANSIT);
        bad.op_time = -5;
        let batch = TrackingBatch { traces: vec![push(super::super::protocol::OP_POSTED), bad] };
        let error = effects_of(&batch).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("traces[1].op_time"));
        assert!(error.message.starts_with("traces[1]: "), "{}", error.message);
        assert_eq!(effects_of(&TrackingBatch { traces: vec![] }).unwrap_err().field.as_deref(), Some("traces"));
        let good = TrackingBatch {
            traces: vec![push(super::super::protocol::OP_POSTED), push(super::super::protocol::OP_SIGNED)],
        };
        let effects = effects_of(&good).unwrap();
        assert_eq!(effects.iter().map(|e| e.events.len()).collect::<Vec<_>>(), [1, 2]);
    }
}
