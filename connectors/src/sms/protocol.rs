//! Wire types of the SMS gateway's API, shared by the connector and the simulator. Every
//! request is signed both ways (see `crate::framework::signature`).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v1/messages`, with `Idempotency-Key: <message_id>`: one message per id, whatever
/// the retries. The gateway fills the registered template in and prefixes the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub message_id: String,
    /// Mainland mobile number, 11 digits.
    pub phone: String,
    /// The registered template and its version.
    pub template: String,
    pub version: i32,
    pub params: BTreeMap<String, String>,
    /// Our reference (the case number), echoed in replies.
    pub reference: String,
}

/// Answer to a message: 201 when new, 200 with `duplicate` when the id was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTaken {
    pub message_id: String,
    /// The gateway's id of the message.
    pub gateway_id: String,
    pub duplicate: bool,
}

/// The gateway pushes the applicants' replies (`POST <hub>/connectors/sms/replies`), signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyPush {
    pub replies: Vec<Reply>,
}

/// Most replies in one push.
pub const MAX_REPLIES_PER_PUSH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The gateway's id of the reply; unique.
    pub reply_id: String,
    /// Our message the reply answers, and its reference.
    pub message_id: String,
    pub reference: String,
    pub phone: String,
    pub text: String,
    /// Epoch milliseconds.
    pub received_at: i64,
}

/// The hub's acknowledgement of a push.
pub use crate::framework::PushAck;

/// Whether `phone` is a mainland mobile number: 11 digits, the first a 1.
pub fn is_mobile(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())
}
