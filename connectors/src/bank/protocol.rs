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
    /// A waiver or reduction, printed on the fiscal e-receipt; never the whole amount (a fee
    /// waived in full is not ordered at all).
    #[serde(default)]
    pub relief: Option<OrderRelief>,
    /// The sum of the items less the relief.
    pub total_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRelief {
    pub name: String,
    pub basis: String,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    pub name: String,
    pub amount_fen: i64,
    /// 收费依据, printed on the fiscal e-receipt.
    pub basis: String,
}

/// Answer to a placed order: 201 when new, 200 with `duplicate` when the number was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_number: String,
    /// 缴款码: what the applicant pays with at any outlet or online.
    pub payment_code: String,
    pub duplicate: bool,
}

/// `POST /api/v1/refunds`, with `Idempotency-Key: <refund_number>`: pay back what an order took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRefund {
    pub refund_number: String,
    pub order_number: String,
    pub case_number: String,
    pub amount_fen: i64,
    pub reason: String,
}

/// Answer to a refund: 201 when new, 200 with `duplicate` when the number was seen before. The
/// money goes back later; the bank pushes the refund once paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPlaced {
    pub refund_number: String,
    pub duplicate: bool,
}

/// The bank pushes payments and paid refunds (`POST <hub>/connectors/bank/payments`), signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentPush {
    #[serde(default)]
    pub payments: Vec<Payment>,
    #[serde(default)]
    pub refunds: Vec<RefundPaid>,
}

/// One refund paid back, as pushed and as a line of the daily refund statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundPaid {
    /// The bank's transaction number of the refund.
    pub refund_id: String,
    pub refund_number: String,
    pub order_number: String,
    pub amount_fen: i64,
    /// Epoch milliseconds.
    pub refunded_at: i64,
    /// 财政电子票据号 of the red-letter receipt (冲红) that cancels the payment's.
    pub receipt_number: String,
}

/// Most payments and refunds in one push.
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
    /// 财政电子票据号: the fiscal e-receipt the bank network issued for the payment.
    pub receipt_number: String,
}

/// The hub's acknowledgement of a push.
pub use crate::framework::PushAck;

/// Header line of the daily statement, `GET /api/v1/statements/{YYYY-MM-DD}` (text/csv): every
/// payment made that day (China Standard Time), one per line, in the columns of [`Payment`].
pub const STATEMENT_HEADER: &str = "payment_id,order_number,amount_fen,paid_at,outlet_code,receipt_number";

/// Header line of the daily refund statement, `GET /api/v1/statements/{YYYY-MM-DD}/refunds`
/// (text/csv): every refund paid that day, in the columns of [`RefundPaid`].
pub const REFUND_STATEMENT_HEADER: &str = "refund_id,refund_number,order_number,amount_fen,refunded_at,receipt_number";
