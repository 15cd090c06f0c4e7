//! Wire types of the bank's collection API, shared by the connector and the simulator. Every
//! request is signed both ways (see `crate::framework::signature`). Amounts are integer fen.
use serde::{Deserialize, Serialize};

/// `POST /api/v1/fee-orders`, with `Idempotency-Key: <order_number>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub order_number: String,
    pub case_number: String,
    pub payer_name: String,
    /// The collecting department (unified social credit code).
    pub payee_department: String,
    pub items: Vec<OrderItem>,
    pub total_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub name: String,
    pub amount_fen: i64,
}

/// Answer to a placed order: 201 when new, 200 with `duplicate` when the number was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_number: String,
    /// 缴款码: what the applicant pays with at any outlet or online.
    pub payment_code: String,
    pub duplicate: bool,
}

/// The bank pushes payments (`POST <hub>/connectors/bank/payments`), signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentPush {
    pub payments: Vec<Payment>,
}

/// Most payments in one push.
pub const MAX_PAYMENTS_PER_PUSH: usize = 100;

/// One payment, as pushed and as a line of the daily statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// The bank's transaction number; unique per payment.
    pub payment_id: String,
    pub order_number: String,
    pub amount_fen: i64,
    /// Epoch milliseconds.
    pub paid_at: i64,
    pub outlet_code: String,
}

/// The hub's acknowledgement of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    pub success: bool,
    pub accepted: usize,
    pub duplicates: usize,
}

/// Header line of the daily statement, `GET /api/v1/statements/{YYYY-MM-DD}` (text/csv): every
/// payment made that day (China Standard Time), one per line, in the columns of [`Payment`].
pub const STATEMENT_HEADER: &str = "payment_id,order_number,amount_fen,paid_at,outlet_code";
