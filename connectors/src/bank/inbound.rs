//! Inbound half: payment and refund confirmations pushed by the bank, recorded (outbox) before
//! they are acknowledged and deduplicated on the bank's transaction numbers; and the daily
//! statements of payments and refunds, read for reconciliation.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bus::{Effect, Outbox};
use contracts::{Event, PaymentConfirmed, RefundConfirmed};
use reqwest::Method as CallMethod;

use super::protocol::{Payment, PaymentPush, RefundPaid, MAX_PAYMENTS_PER_PUSH};
use super::{BankConfig, BANK, CONSUMER, PUSH_CONSUMER, PUSH_PATH, STATEMENT_CONSUMER};
use crate::framework::{check_signature, now_ms, record_push, with_retry, CallError, CounterpartClient, Exchange};
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
        .doc("counterparts", "the bank pushes payment and refund confirmations")
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
    let effects = parse_json::<PaymentPush>(&body).and_then(|batch| effects_of(&batch));
    record_push(push.outbox.as_ref(), PUSH_CONSUMER, effects).await
}

/// What a push stands for; a bad payment or refund refuses the whole push, naming it by its
/// index.
fn effects_of(push: &PaymentPush) -> Result<Vec<Effect>, BadRequest> {
    let count = push.payments.len() + push.refunds.len();
    if count == 0 || count > MAX_PAYMENTS_PER_PUSH {
        return Err(BadRequest::field(
            "payments",
            format!("a push carries 1 to {MAX_PAYMENTS_PER_PUSH} payments and refunds, not {count}"),
        ));
    }
    let payments = push.payments.iter().enumerate().map(|(index, payment)| {
        let event = confirmation(payment).map_err(|bad| bad.within(&format!("payments[{index}]")))?;
        Ok(Effect { source_event_id: event.event_id().to_string(), events: vec![event] })
    });
    let refunds = push.refunds.iter().enumerate().map(|(index, refund)| {
        let event = refund_confirmation(refund).map_err(|bad| bad.within(&format!("refunds[{index}]")))?;
        Ok(Effect { source_event_id: event.event_id().to_string(), events: vec![event] })
    });
    payments.chain(refunds).collect()
}

/// The case a fee order or refund number belongs to: what comes before its suffix.
fn case_of<'a>(number: &'a str, suffix: &str, field: &str) -> Result<&'a str, BadRequest> {
    number
        .strip_suffix(suffix)
        .filter(|case| !case.is_empty())
        .ok_or_else(|| BadRequest::field(field, format!("{number} is not one of our numbers")))
}

fn refund_confirmation(refund: &RefundPaid) -> Result<Event, BadRequest> {
    if refund.refund_id.trim().is_empty() {
        return Err(BadRequest::field("refund_id", "refund_id must not be empty"));
    }
    if refund.amount_fen <= 0 {
        return Err(BadRequest::field("amount_fen", "amount_fen is a positive number of fen"));
    }
    let case_number = case_of(&refund.refund_number, contracts::REFUND_SUFFIX, "refund_number")?;
    Ok(RefundConfirmed {
        event_id: hub_core::ids::refund_confirmed(&refund.refund_id),
        case_number: case_number.into(),
        occurred_at: refund.refunded_at,
        refund_number: refund.refund_number.clone(),
        refund_id: refund.refund_id.clone(),
        amount_fen: refund.amount_fen,
        receipt_number: Some(refund.receipt_number.clone()).filter(|r| !r.is_empty()),
    }
    .into())
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
    let case_number = case_of(&payment.order_number, contracts::FEE_ORDER_SUFFIX, "order_number")?;
    Ok(PaymentConfirmed {
        event_id: hub_core::ids::payment_confirmed(&payment.payment_id),
        case_number: case_number.into(),
        occurred_at: payment.paid_at,
        order_number: payment.order_number.clone(),
        payment_id: payment.payment_id.clone(),
        amount_fen: payment.amount_fen,
        outlet_code: payment.outlet_code.clone(),
        receipt_number: Some(payment.receipt_number.clone()).filter(|r| !r.is_empty()),
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
    pub async fn payments(&self, day: &str) -> Result<Vec<Payment>, CallError> {
        parse_statement(&self.fetch(&format!("/api/v1/statements/{day}"), day).await?)
    }

    /// Every refund the bank paid back on `day`.
    pub async fn refunds(&self, day: &str) -> Result<Vec<RefundPaid>, CallError> {
        parse_statement(&self.fetch(&format!("/api/v1/statements/{day}/refunds"), day).await?)
    }

    /// The statement at `path`, its read recorded as an exchange.
    async fn fetch(&self, path: &str, day: &str) -> Result<String, CallError> {
        let text =
            with_retry(&self.config.retry, "bank statement", || self.client.call_text(CallMethod::GET, path)).await;
        let exchange = Exchange {
            name: "fee.statement",
            requester_system: "hub".into(),
            requester_department: String::new(),
            requester_officer: None,
            provider: BANK.into(),
            data_subject: String::new(),
            data_items: &["payment_id", "order_number", "amount_fen", "paid_at", "outlet_code", "receipt_number"],
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
        text
    }
}

/// The statement's lines; a malformed line refuses the statement, naming its line number.
pub fn parse_statement<Line: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<Line>, CallError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .deserialize::<Line>()
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
            receipt_number: "61012600000001".into(),
        }
    }

    #[test]
    fn a_payment_names_its_case_and_a_bad_one_is_refused_by_index() {
        let Event::PaymentConfirmed(confirmed) = confirmation(&payment("61042920261120000001-FEE")).unwrap() else {
            unreachable!()
        };
        assert_eq!((confirmed.case_number.as_str(), confirmed.amount_fen), ("61042920261120000001", 8_000));
        let error = effects_of(&PaymentPush {
            payments: vec![payment("61042920261120000001-FEE"), payment("nonsense")],
            refunds: vec![],
        })
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("payments[1].order_number"));
        let mut free = payment("61042920261120000001-FEE");
        free.amount_fen = 0;
        assert_eq!(confirmation(&free).unwrap_err().field.as_deref(), Some("amount_fen"));
    }

    #[test]
    fn statements_are_read_and_a_bad_line_is_named() {
        let text = "payment_id,order_number,amount_fen,paid_at,outlet_code,receipt_number\nT1,C1-FEE,8000,1763604000000,B1,R1\nT2,C2-FEE,4000,1763604000001,B1,R2\n";
        let lines: Vec<Payment> = parse_statement(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].amount_fen, 4_000);
        let error = parse_statement::<Payment>(
            "payment_id,order_number,amount_fen,paid_at,outlet_code,receipt_number\nT1,C1-FEE,eighty,1,B1,R1\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
