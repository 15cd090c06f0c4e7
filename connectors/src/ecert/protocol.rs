//! Wire types of the e-certificate repository's HTTP API, shared by the connector and the
//! simulator. Every request is signed (see `crate::framework::signature`).
use serde::{Deserialize, Serialize};

/// Query of a lookup: who asks and why. A lookup without a purpose (用证事由) is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// Only for a lookup by holder.
    pub holder_code: Option<String>,
    pub type_code: Option<String>,
    pub purpose: Option<String>,
    /// The requesting department's unified social credit code.
    pub requester: Option<String>,
    /// The case the lookup serves, when there is one.
    pub case_number: Option<String>,
}

/// `POST /api/v1/certificates`, with `Idempotency-Key: <case number>/<number>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueCertificate {
    pub type_code: String,
    pub certificate_name: String,
    /// 证照编号: the licence number of the decision.
    pub number: String,
    pub holder_name: String,
    pub holder_code: String,
    /// `111` resident ID, `001` unified social credit code.
    pub holder_code_kind: String,
    pub issuer: String,
    pub issuer_code: String,
    /// `YYYY-MM-DD`.
    pub issue_date: String,
    /// `YYYY-MM-DD`; absent: valid without limit.
    pub valid_until: Option<String>,
    pub area_code: String,
    pub case_number: String,
}

/// Answer to an issue: 201 when issued, 200 with `duplicate` when the key was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub certificate_id: String,
    pub status: String,
    pub duplicate: bool,
}

/// `POST /api/v1/certificates/{certificate_id}/revocation`, with `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub certificate_id: String,
    pub status: String,
}

/// A certificate's metadata, as a lookup returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub certificate_id: String,
    pub type_code: String,
    pub certificate_name: String,
    pub number: String,
    pub holder_name: String,
    pub holder_code: String,
    pub holder_code_kind: String,
    pub issuer: String,
    pub issuer_code: String,
    pub issue_date: String,
    pub valid_until: Option<String>,
    pub area_code: String,
    /// `valid`, `revoked` or `expired`.
    pub status: String,
}

/// `GET /api/v1/certificates?holder_code=…&type_code=…&purpose=…&requester=…`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    pub certificates: Vec<Certificate>,
}
