//! Every event id the hub and its connectors make, one function per kind. Ids are derived from
//! what caused the event, so a step retried after a crash makes the same id; they are the
//! deduplication keys kept in `processed_events`, so none of them may ever change.

/// The `n`-th event of a case (1-based).
pub fn case_event(case_number: &str, n: u32) -> String {
    format!("{case_number}/{n}")
}

/// The fee order requested with an acceptance.
pub fn fee_order_requested(accepted_event_id: &str) -> String {
    format!("{accepted_event_id}/fee")
}

/// The applicant's commitment (容缺受理承诺书) signed with a tolerant acceptance.
pub fn commitment_signed(accepted_event_id: &str) -> String {
    format!("{accepted_event_id}/commitment")
}

/// The bank's confirmation that it placed a fee order.
pub fn fee_order_created(requested_event_id: &str) -> String {
    format!("{requested_event_id}/placed")
}

/// A payment the bank confirmed, by its transaction number.
pub fn payment_confirmed(payment_id: &str) -> String {
    format!("bank/{payment_id}")
}

/// The text message telling the applicant what `cause_event_id` did: the gateway's message id.
pub fn sms_requested(cause_event_id: &str) -> String {
    format!("{cause_event_id}/sms")
}

/// The gateway's acceptance of a message.
pub fn sms_sent(message_id: &str) -> String {
    format!("{message_id}/sent")
}

/// An applicant's reply to a message, by the gateway's reply id.
pub fn sms_reply(reply_id: &str) -> String {
    format!("sms-reply/{reply_id}")
}

/// A refund the bank confirmed, by its transaction number.
pub fn refund_confirmed(refund_id: &str) -> String {
    format!("bank-refund/{refund_id}")
}

/// The carrier's order for a delivery order number.
pub fn delivery_order_created(order_number: &str) -> String {
    format!("{order_number}/created")
}

/// One trace of a waybill.
pub fn tracking_event(waybill_number: &str, op_code: &str, op_time: i64) -> String {
    format!("{waybill_number}/{op_code}/{op_time}")
}

/// The final outcome of a waybill.
pub fn delivery_completed(waybill_number: &str) -> String {
    format!("{waybill_number}/final")
}

/// The repository's issue of a requested certificate.
pub fn certificate_issued(requested_event_id: &str) -> String {
    format!("{requested_event_id}/issued")
}

/// The seal service's signature of a document whose seal was requested.
pub fn document_sealed(requested_event_id: &str) -> String {
    format!("{requested_event_id}/sealed")
}

/// The repository's revocation of a certificate.
pub fn certificate_revoked(requested_event_id: &str) -> String {
    format!("{requested_event_id}/revoked")
}

/// An application the provincial platform pushed, by its project number.
pub fn online_application(project_no: &str) -> String {
    format!("province/{project_no}")
}

/// The data-sharing record of an exchange made on behalf of `source_event_id`.
pub fn data_shared(source_event_id: &str, exchange: &str) -> String {
    format!("{source_event_id}/shared/{exchange}")
}

/// The checkpoint signed over the ledger's first `size` entries.
pub fn ledger_checkpoint(size: i64) -> String {
    format!("ledger-checkpoint/{size}")
}

/// An anomaly rule's alert, raised at the ledger entry `seq`.
pub fn anomaly_alert(rule: &str, seq: i64) -> String {
    format!("anomaly/{rule}/{seq}")
}
