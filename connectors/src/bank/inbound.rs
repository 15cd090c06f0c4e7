//! Inbound half: payment confirmations pushed by the bank, recorded (outbox) before they are
//! acknowledged and deduplicated on the bank's transaction number; and the daily statement,
//! read for reconciliation.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bus::{Effect, Outbox};
use contracts::{Event, PaymentConfirmed};
use reqwest::Method as CallMethod;

use super::protocol::{Payment, PaymentPush, PushAck, MAX_PAYMENTS_PER_PUSH};
use super::{BankConfig, BANK, CONSUMER, PUSH_CONSUMER, PUSH_PATH, STATEMENT_CONSUMER};
use crate::framework::{check_signature, now_ms, with_retry, CallError, CounterpartClient, Exchange};
use hub_core::access::Rule;
use hub_web::{parse_json, BadRequest, Route};

struct Push {
    config: BankConfig,
    outbox: Arc<dyn Outbox>,
}

/// The inbound half's route: the bank's signed payment confirmations.
pub fn routes(config: BankConfig, outbox: Arc<dyn Outbox>) -> Vec<Route> {
    let push = Arc::new(Push { config, outbox });
    vec![Route::post(PUSH_PATH, Rule::Signed, receive_push)
        .doc("counterparts", "the bank pushes payment confirmations")
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
    let effects = match parse_json::<PaymentPush>(&body).and_then(|batch| effects_of(&batch)) {
        Ok(effects) => effects,
        Err(bad) => return bad.into_response(),
    };
    match push.outbox.apply_all(PUSH_CONSUMER, &effects).await {
        Ok(fresh) => {
            let accepted = fresh.iter().filter(|new| **new).count();
            Json(PushAck { success: true, accepted, duplicates: fresh.len() - accepted }).into_response()
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "could not record a payment push");
            // Not acknowledged: the bank pushes again, and the transaction numbers make that harmless.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"success": false, "error": "temporarily unable to record the push"})),
            )
                .into_response()
        }
    }
}

/// What a push stands for; a bad payment refuses the whole push, naming it by its index.
fn effects_of(push: &PaymentPush) -> Result<Vec<Effect>, BadRequest> {
    if push.payments.is_empty() || push.payments.len() > MAX_PAYMENTS_PER_PUSH {
        return Err(BadRequest::field(
            "payments",
            format!("a push carries 1 to {MAX_PAYMENTS_PER_PUSH} payments, not {}", push.payments.len()),
        ));
    }
    push.payments
        .iter()
        .enumerate()
        .map(|(index, payment)| {
            let event = confirmation(payment).map_err(|bad| bad.within(&format!("payments[{index}]")))?;
            Ok(Effect { source_event_id: hub_core::ids::payment_confirmed(&payment.payment_id), events: vec![event] })
        })
        .collect()
}

fn confirmation(payment: &Payment) -> Result<Event, BadRequest> {
    for (field, value) in [("payment_id", &payment.payment_id), ("outlet_code", &payment.outlet_code)] {
        if value.trim().is_empty() {
            return Err(BadRequest::field(field, format!("{field} must not be empty")));
        }
    }
    if payment.amount_fen <= 0 {
        return Err(BadRequest::field("amount_fen", "amount_fen is a positive number of fen"));
    }
    if payment.paid_at <= 0 {
        return Err(BadRequest::field("paid_at", "paid_at must be a positive epoch time in milliseconds"));
    }
    let Some(case_number) =
        payment.order_number.strip_suffix(contracts::FEE_ORDER_SUFFIX).filter(|case| !case.is_empty())
    else {
        return Err(BadRequest::field(
            "order_number",
            format!("{} is not one of our fee orders", payment.order_number),
        ));
    };
    Ok(PaymentConfirmed {
        event_id: hub_core::ids::payment_confirmed(&payment.payment_id),
        case_number: case_number.into(),
        occurred_at: payment.paid_at,
        order_number: payment.order_number.clone(),
        payment_id: payment.payment_id.clone(),
        amount_fen: payment.amount_fen,
        outlet_code: payment.outlet_code.clone(),
    }
    .into())
}

/// The bank's daily statements, read for reconciliation; each read is recorded as an exchange.
pub struct StatementSource {
    config: BankConfig,
    client: CounterpartClient,
    outbox: Arc<dyn Outbox>,
}

impl StatementSource {
    pub fn new(config: BankConfig, outbox: Arc<dyn Outbox>) -> anyhow::Result<StatementSource> {
        let client =
            CounterpartClient::signed(&config.base_url, &config.app_id, &config.app_secret, config.timeout_ms)?;
        Ok(StatementSource { config, client, outbox })
    }

    /// Every payment the bank took on `day` (`YYYY-MM-DD`, China Standard Time).
    pub async fn fetch(&self, day: &str) -> Result<Vec<Payment>, CallError> {
        let path = format!("/api/v1/statements/{day}");
        let text =
            with_retry(&self.config.retry, "bank statement", || self.client.call_text(CallMethod::GET, &path)).await;
        let exchange = Exchange {
            name: "fee.statement",
            requester_system: "hub".into(),
            requester_department: String::new(),
            requester_officer: None,
            provider: BANK.into(),
            data_subject: String::new(),
            data_items: &["payment_id", "order_number", "amount_fen", "paid_at", "outlet_code"],
            legal_basis: "《行政事业性收费管理条例》：收缴对账".into(),
            purpose: format!("{day}收费对账"),
            channel: CONSUMER,
            document_sha256: text
                .as_ref()
                .ok()
                .map(|text| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))),
        };
        let read_id = format!("statement/{day}/{}", uuid::Uuid::now_v7());
        let outcome = text.as_ref().map_or_else(CallError::audit_outcome, |_| "ok");
        let recorded =
            Effect { events: vec![exchange.shared(&read_id, "", outcome, now_ms())], source_event_id: read_id };
        self.outbox
            .apply_all(STATEMENT_CONSUMER, &[recorded])
            .await
            .map_err(|error| CallError::Transient(format!("the read could not be recorded for the audit: {error}")))?;
        parse_statement(&text?)
    }
}

/// The statement's lines; a malformed line refuses the statement, naming its line number.
pub fn parse_statement(text: &str) -> Result<Vec<Payment>, CallError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .deserialize::<Payment>()
        .enumerate()
        .map(|(index, line)| {
            line.map_err(|error| CallError::Permanent(format!("statement line {}: {error}", index + 2)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(order: &str) -> Payment {
        Payment {
            payment_id: "T1".into(),
            order_number: order.into(),
            amount_fen: 8_000,
            paid_at: 1_763_604_000_000,
            outlet_code: "BANK-RCC-610429001".into(),
        }
    }

    #[test]
    fn a_payment_names_its_case_and_a_bad_one_is_refused_by_index() {
        let Event::PaymentConfirmed(confirmed) = confirmation(&payment("61042920261120000001-FEE")).unwrap() else {
            unreachable!()
        };
        assert_eq!((confirmed.case_number.as_str(), confirmed.amount_fen), ("61042920261120000001", 8_000));
        let error =
            effects_of(&PaymentPush { payments: vec![payment("61042920261120000001-FEE"), payment("nonsense")] })
                .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("payments[1].order_number"));
        let mut free = payment("61042920261120000001-FEE");
        free.amount_fen = 0;
        assert_eq!(confirmation(&free).unwrap_err().field.as_deref(), Some("amount_fen"));
    }

    #[test]
    fn statements_are_read_and_a_bad_line_is_named() {
        let text = "payment_id,order_number,amount_fen,paid_at,outlet_code\nT1,C1-FEE,8000,1763604000000,B1\nT2,C2-FEE,4000,1763604000001,B1\n";
        let lines = parse_statement(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].amount_fen, 4_000);
        let error = parse_statement("payment_id,order_number,amount_fen,paid_at,outlet_code\nT1,C1-FEE,eighty,1,B1\n")
            .unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
