//! The audit log: one JSON line per API request, with CloudTrail's field names: when, which request, who
//! (the principal, its account and access key, or the key a refused request claimed), what (the action and
//! the session), the decision and the outcome. To stderr or appended to a file (`serve --audit`,
//! `LocalServer(audit=...)`); no line is lost to a full queue (a request waits for room).
//!
//! A line never holds what a request stores (payloads, metadata values, tag values): only names and ids.

use std::net::SocketAddr;

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

/// What the server knew of a request when it answered it: who signed it (or which key it claimed), from where,
/// what was decided, and the session CreateSession made.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub signer: Option<Signer>,
    /// The access key a request claimed whose signature was not verified.
    pub claimed_key: Option<String>,
    pub verdict: Option<Verdict>,
    pub peer: Option<SocketAddr>,
    pub user_agent: Option<String>,
    /// The ARN of a session CreateSession made.
    pub created_arn: Option<String>,
}

/// How a request was answered.
#[derive(Debug)]
pub struct Answer<'a> {
    /// When the request's first byte arrived (RFC 3339).
    pub time: String,
    pub request_id: &'a str,
    /// 0: no answer (the connection was dropped).
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

impl<'a> AuditLine<'a> {
    /// The line of a request. `checked`: the server checks identities; `target`: the method and path of a
    /// request that names no operation.
    pub fn new(
        facts: &'a Facts,
        checked: bool,
        region: &'a str,
        operation: Option<Operation>,
        target: Option<(&str, &str)>,
        answer: Answer<'a>,
    ) -> Self {
        let principal = facts.signer.as_ref().map(|s| &*s.principal);
        let verdict = facts.verdict.as_ref();
        let resource = verdict
            .map(|v| v.resource.as_str())
            .filter(|r| *r != "*")
            .or(facts.created_arn.as_deref());
        AuditLine {
            event_version: "1.09",
            event_time: answer.time,
            event_source: "bedrock.amazonaws.com",
            event_name: match (operation, target) {
                (Some(op), _) => op.name().to_string(),
                (None, Some((m, p))) => format!("{m} {p}"),
                (None, None) => String::new(),
            },
            aws_region: region,
            source_ip_address: facts.peer.map(|p| p.ip().to_string()),
            user_agent: facts.user_agent.as_deref(),
            user_identity: UserIdentity {
                kind: if principal.is_some() {
                    "IAMUser"
                } else {
                    "Unknown"
                },
                arn: principal.map(|p| p.arn.as_str()),
                account_id: principal.map(|p| p.account.as_str()),
                user_name: principal.map(|p| p.name.as_str()),
                access_key_id: facts
                    .signer
                    .as_ref()
                    .map(|s| s.access_key.as_str())
                    .or(facts.claimed_key.as_deref()),
            },
            request_id: answer.request_id,
            event_id: uuid::Uuid::new_v4().to_string(),
            read_only: operation.map(read_only),
            action: verdict.map(|v| v.action.as_str()),
            resources: resource
                .map(|arn| Resource {
                    arn,
                    account_id: arn.split(':').nth(4),
                    kind: "AWS::Bedrock::Session",
                })
                .into_iter()
                .collect(),
            recipient_account_id: principal.map(|p| p.account.as_str()),
            decision: decision_name(facts, checked),
            outcome: if answer.error_code.is_none() && answer.status != 0 {
                "Success"
            } else {
                "Failure"
            },
            http_status: answer.status,
            error_code: answer.error_code,
            error_message: answer.error_message,
        }
    }
}

fn decision_name(facts: &Facts, checked: bool) -> &'static str {
    if !checked {
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
fn read_only(op: Operation) -> bool {
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
