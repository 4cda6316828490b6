//! The audit log: one JSON line per API request, with CloudTrail's field names: when, which request, who
//! (the principal, its account and access key, or the key a refused request claimed), what (the action and
//! the session), the decision and the outcome. To stderr or appended to a file (`serve --audit`,
//! `LocalServer(audit=...)`); no line is lost to a full queue (a request waits for room).
//!
//! A line never holds what a request stores (payloads, metadata values, tag values): only names and ids.

use serde::Serialize;

use super::auth::Signer;
use super::authz::Verdict;
use super::policy::Decision;
use crate::ops::Operation;

/// Who made a request, as far as the server knows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    /// `IAMUser` for a verified signer; `Unknown` for a request whose signature was not verified.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Resource<'a> {
    #[serde(rename = "ARN")]
    pub arn: &'a str,
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One audited request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine<'a> {
    pub event_version: &'static str,
    /// When the request's first byte arrived (RFC 3339, UTC, microseconds).
    pub event_time: String,
    pub event_source: &'static str,
    /// The operation (`GetSession`), or the method and path of a request that names none.
    pub event_name: String,
    pub aws_region: &'a str,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    pub user_identity: UserIdentity<'a>,
    #[serde(rename = "requestID")]
    pub request_id: &'a str,
    #[serde(rename = "eventID")]
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The IAM action (`bedrock:GetSession`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'a str>,
    pub resources: Vec<Resource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<&'a str>,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`; `Unauthenticated` (no valid signature); `NotEvaluated` (refused
    /// before any policy was read: a malformed request, an injected fault); `Open` (a server without
    /// identities).
    pub decision: &'static str,
    /// `Success` or `Failure` (an error answered, or the connection dropped).
    pub outcome: &'static str,
    /// 0: no answer (the connection was dropped by an injected fault).
    pub http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
}

/// What the server knew of a request's identity and authorization when it answered it.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub signer: Option<Signer>,
    /// The access key a request claimed whose signature was not verified.
    pub claimed_key: Option<String>,
    pub verdict: Option<Verdict>,
    /// The server checks identities (else decisions are `Open`).
    pub checked: bool,
}

pub fn decision_name(facts: &Facts) -> &'static str {
    if !facts.checked {
        return "Open";
    }
    match (&facts.signer, &facts.verdict) {
        (None, _) => "Unauthenticated",
        (Some(_), None) => "NotEvaluated",
        (Some(_), Some(v)) => match v.decision {
            Decision::Allow => "Allow",
            Decision::ExplicitDeny => "ExplicitDeny",
            Decision::ImplicitDeny => "ImplicitDeny",
        },
    }
}

/// Whether an operation only reads.
pub fn read_only(op: Operation) -> bool {
    matches!(
        op,
        Operation::GetSession
            | Operation::ListSessions
            | Operation::ListInvocations
            | Operation::GetInvocationStep
            | Operation::ListInvocationSteps
            | Operation::ListTagsForResource
    )
}
