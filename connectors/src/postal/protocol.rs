//! Wire types of the carrier's HTTP API, shared by the connector and the simulator.
use serde::{Deserialize, Serialize};

use contracts::PostalAddress;

/// Sender or receiver of a mail item, as the carrier names the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub name: String,
    pub mobile: String,
    pub prov: String,
    pub city: String,
    pub county: String,
    pub address: String,
    pub post_code: String,
}

impl From<&PostalAddress> for Party {
    fn from(a: &PostalAddress) -> Party {
        Party {
            name: a.name.clone(),
            mobile: a.phone.clone(),
            prov: a.province.clone(),
            city: a.city.clone(),
            county: a.county.clone(),
            address: a.address.clone(),
            post_code: a.post_code.clone(),
        }
    }
}

/// `POST /api/v1/orders`, with header `Idempotency-Key: <logistics_order_no>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// Our order number; the carrier creates one order per number, whatever the retries.
    pub logistics_order_no: String,
    pub customer_code: String,
    pub product_code: String,
    pub contents: String,
    pub return_receipt: bool,
    pub sender: Party,
    pub receiver: Party,
}

/// Answer to a create: 201 when created, 200 when the order number was already known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAccepted {
    pub logistics_order_no: String,
    pub waybill_no: String,
    pub duplicate: bool,
}

/// A tracking event pushed by the carrier to our push URL. Retried until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingPush {
    /// Unique per event; a retried or duplicated push carries the same id.
    pub push_id: String,
    pub waybill_no: String,
    pub logistics_order_no: String,
    pub op_code: String,
    pub op_name: String,
    /// Milliseconds since the epoch.
    pub op_time: i64,
    pub op_org_name: String,
    pub operator_name: String,
    #[serde(default)]
    pub signer_name: Option<String>,
}

/// One push call: the carrier sends the tracking events that came due, oldest first, and
/// sends the whole batch again until it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingBatch {
    pub traces: Vec<TrackingPush>,
}

/// Largest batch the push endpoint takes.
pub const MAX_TRACES_PER_PUSH: usize = 500;

/// Our answer to a push: 200 with `success` once every trace is durably recorded.
pub use crate::framework::PushAck;

/// Operation codes the carrier reports, in the order a normal delivery passes them.
pub const OP_POSTED: (&str, &str) = ("10", "收寄");
pub const OP_IN_TRANSIT: (&str, &str) = ("20", "经转");
pub const OP_OUT_FOR_DELIVERY: (&str, &str) = ("40", "投递");
pub const OP_SIGNED: (&str, &str) = ("50", "妥投");
pub const OP_REFUSED: (&str, &str) = ("51", "拒收");
pub const OP_RETURNED: (&str, &str) = ("60", "退回");

/// The final delivery outcome an operation code stands for, if it is final.
pub fn final_outcome(op_code: &str) -> Option<&'static str> {
    match op_code {
        c if c == OP_SIGNED.0 => Some("signed"),
        c if c == OP_REFUSED.0 => Some("refused"),
        c if c == OP_RETURNED.0 => Some("returned"),
        _ => None,
    }
}
