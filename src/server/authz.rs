//! Who may do what: a signed request's principal, its account and its identity policies decide each API
//! request before it reaches the store, as IAM decides requests to the service.
//!
//! - **Accounts.** Every account of the identities file has its own handle on the store
//!   ([`SessionStore::for_account`]): the sessions a principal creates belong to its account (their ARNs name
//!   it), `ListSessions` lists that account's sessions only, and a session id of another account names no
//!   session (`ResourceNotFoundException`, as an id is looked up in the caller's account). A session *ARN* of
//!   another account is a cross-account request, which the service answers `AccessDeniedException`: its
//!   sessions have no resource-based policies that could allow it.
//! - **Policies** ([`super::policy`]): the action is `bedrock:<Operation>`; the resource is the session's ARN,
//!   or `*` for `CreateSession` and `ListSessions`. The request context holds `aws:username`,
//!   `aws:PrincipalTag/<key>`, `aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:PrincipalType`,
//!   `aws:RequestedRegion`, `aws:CurrentTime`, `aws:EpochTime`, `aws:SecureTransport`; `aws:RequestTag/<key>`
//!   and `aws:TagKeys` where the request carries tags (`CreateSession`, `TagResource`) or tag keys
//!   (`UntagResource`); and `aws:ResourceTag/<key>`, the session's tags as they are when the request arrives,
//!   for every operation on a session (read only when a policy of the principal mentions them).
//! - A request that names a malformed session is answered with the operation's `ValidationException`
//!   before any policy is read: it names nothing that exists.

use std::collections::HashMap;
use std::sync::Arc;

use super::auth::{Identities, Principal};
use super::policy::{self, Context, Decision};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ResourceArn, SessionRef};
use crate::ops::Operation;
use crate::store::SessionStore;
use crate::validate::SessionArn;
use crate::value::Value;

/// The partition of the sessions' ARNs.
const PARTITION: &str = "aws";

/// The store's handles, one per account of the identities file.
#[derive(Debug)]
pub struct Tenants {
    stores: HashMap<String, Arc<dyn SessionStore>>,
    region: String,
}

impl Tenants {
    /// One handle per account; an error if the store cannot keep accounts apart (the Bedrock backend).
    pub fn new(store: &dyn SessionStore, ids: &Identities) -> std::io::Result<Self> {
        let mut stores = HashMap::new();
        for account in ids.accounts() {
            let handle = store.for_account(account).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a server that checks identities keeps every account's sessions apart, which needs an \
                     embedded store (a file or memory): this store cannot",
                )
            })?;
            stores.insert(account.clone(), handle);
        }
        Ok(Tenants {
            stores,
            region: ids.region().to_string(),
        })
    }

    fn store(&self, account: &str) -> Arc<dyn SessionStore> {
        // Every principal's account is an account of the file, which has a handle.
        self.stores[account].clone()
    }
}

/// What was decided for a request (for the answer and the audit log).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub action: String,
    /// The session's ARN, or `*`.
    pub resource: String,
    pub decision: Decision,
}

/// A request the principal may make: the handle of its account to run it on.
pub struct Allowed {
    pub store: Arc<dyn SessionStore>,
    pub verdict: Verdict,
}

/// A refused request: the AWS error and what was decided.
pub struct Denied {
    pub error: Error,
    pub verdict: Option<Verdict>,
}

/// Decides `op` with `input` (the request's members) for `principal`.
pub async fn authorize(
    tenants: &Tenants,
    principal: &Principal,
    op: Operation,
    input: &Value,
) -> std::result::Result<Allowed, Denied> {
    let store = tenants.store(&principal.account);
    let action = format!("bedrock:{}", op.name());
    let target = target(op, input).map_err(|error| Denied {
        error,
        verdict: None,
    })?;
    let resource = match &target {
        None => "*".to_string(),
        Some(Target::Id(id)) => {
            SessionArn::format(PARTITION, &tenants.region, &principal.account, id)
        }
        Some(Target::Arn(arn)) => arn.clone(),
    };
    let foreign = match &target {
        Some(Target::Arn(arn)) => account_of(arn) != Some(principal.account.as_str()),
        _ => false,
    };
    let mut ctx = principal_context(principal, &tenants.region);
    request_tags(op, input, &mut ctx);
    if target.is_some() && !foreign && principal.reads_resource_tags {
        resource_tags(&*store, &resource, &mut ctx).await;
    }
    let decision = policy::evaluate(&principal.policies, &action, &resource, &ctx);
    let verdict = Verdict {
        action: action.clone(),
        resource: resource.clone(),
        decision,
    };
    let message = match decision {
        Decision::Allow if !foreign => {
            return Ok(Allowed { store, verdict });
        }
        Decision::Allow | Decision::ImplicitDeny if foreign => format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} because no \
             resource-based policy allows the {action} action",
            principal.arn
        ),
        d => policy::denial_message(d, &principal.arn, &action, &resource),
    };
    Err(Denied {
        error: Error::new(ErrorCode::AccessDenied, message),
        verdict: Some(Verdict {
            decision: if decision == Decision::Allow {
                Decision::ImplicitDeny
            } else {
                decision
            },
            ..verdict
        }),
    })
}

/// Whether `principal` may make one of the server's own requests (`bedrock-sessions:GetStats`, `ResetStats`,
/// `GetMetrics`): the operator's figures, which `bedrock:*` does not name. Else AWS's denial message.
pub fn authorize_operator(principal: &Principal, action: &str) -> std::result::Result<(), String> {
    match policy::evaluate(&principal.policies, action, "*", &Context::new()) {
        Decision::Allow => Ok(()),
        d => Err(policy::denial_message(d, &principal.arn, action, "*")),
    }
}

/// The session a request names.
enum Target {
    Id(String),
    Arn(String),
}

fn target(op: Operation, input: &Value) -> Result<Option<Target>> {
    let (field, tagging) = match op {
        Operation::CreateSession | Operation::ListSessions => return Ok(None),
        Operation::TagResource | Operation::UntagResource | Operation::ListTagsForResource => {
            ("resourceArn", true)
        }
        _ => ("sessionIdentifier", false),
    };
    let Some(Value::Str(raw)) = input.get(field) else {
        // A missing or mistyped identifier: the operation's own validation answers it.
        return Err(Error::validation(format!(
            "Invalid {field}: a string is required"
        )));
    };
    if tagging {
        let arn = ResourceArn::parse(raw)?;
        return Ok(Some(Target::Arn(arn.raw)));
    }
    let r = SessionRef::parse(field, raw)?;
    Ok(Some(match r.arn {
        Some(_) => Target::Arn(r.raw),
        None => Target::Id(r.id),
    }))
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

fn principal_context(principal: &Principal, region: &str) -> Context {
    let mut ctx = Context::new();
    ctx.set("aws:username", principal.name.clone());
    ctx.set("aws:PrincipalAccount", principal.account.clone());
    ctx.set("aws:PrincipalArn", principal.arn.clone());
    ctx.set("aws:PrincipalType", "User");
    ctx.set("aws:RequestedRegion", region);
    ctx.set("aws:SecureTransport", "false");
    let now = time::OffsetDateTime::now_utc();
    ctx.set(
        "aws:CurrentTime",
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    ctx.set("aws:EpochTime", now.unix_timestamp().to_string());
    for (k, v) in &principal.tags {
        ctx.set(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    ctx
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` of the tags a request carries (or the keys it removes).
fn request_tags(op: Operation, input: &Value, ctx: &mut Context) {
    match (op, input.get("tags"), input.get("tagKeys")) {
        (Operation::CreateSession | Operation::TagResource, Some(Value::Map(tags)), _) => {
            for (k, v) in tags {
                if let Value::Str(v) = v {
                    ctx.set(&format!("aws:RequestTag/{k}"), v.clone());
                }
            }
            ctx.set_many("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
        }
        (Operation::UntagResource, _, Some(Value::List(keys))) => {
            let keys = keys
                .iter()
                .filter_map(|k| match k {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            ctx.set_many("aws:TagKeys", keys);
        }
        _ => {}
    }
}

/// `aws:ResourceTag/<key>` of the session, when it exists in the caller's account (else there are none, and
/// conditions on them decide as for a key that is absent).
async fn resource_tags(store: &dyn SessionStore, arn: &str, ctx: &mut Context) {
    let Ok(arn) = ResourceArn::parse(arn) else {
        return;
    };
    if let Ok(tags) = store.list_tags_for_resource(arn).await {
        for (k, v) in tags {
            ctx.set(&format!("aws:ResourceTag/{k}"), v);
        }
    }
}
