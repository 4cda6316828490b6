//! The 14 operations by name: parse the request, call the store, shape the response as the service
//! does. The Python client and the local server both go through [`dispatch`].

use crate::error::{Error, Result};
use crate::model::{self, Invocation, Page, Session, StepSummary};
use crate::store::SessionStore;
use crate::value::{MapBuilder, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateSession,
    GetSession,
    ListSessions,
    UpdateSession,
    EndSession,
    DeleteSession,
    CreateInvocation,
    ListInvocations,
    PutInvocationStep,
    GetInvocationStep,
    ListInvocationSteps,
    TagResource,
    UntagResource,
    ListTagsForResource,
}

impl Operation {
    pub const ALL: [Operation; 14] = [
        Operation::CreateSession,
        Operation::GetSession,
        Operation::ListSessions,
        Operation::UpdateSession,
        Operation::EndSession,
        Operation::DeleteSession,
        Operation::CreateInvocation,
        Operation::ListInvocations,
        Operation::PutInvocationStep,
        Operation::GetInvocationStep,
        Operation::ListInvocationSteps,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::ListTagsForResource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateSession => "CreateSession",
            Operation::GetSession => "GetSession",
            Operation::ListSessions => "ListSessions",
            Operation::UpdateSession => "UpdateSession",
            Operation::EndSession => "EndSession",
            Operation::DeleteSession => "DeleteSession",
            Operation::CreateInvocation => "CreateInvocation",
            Operation::ListInvocations => "ListInvocations",
            Operation::PutInvocationStep => "PutInvocationStep",
            Operation::GetInvocationStep => "GetInvocationStep",
            Operation::ListInvocationSteps => "ListInvocationSteps",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::ListTagsForResource => "ListTagsForResource",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The HTTP status of a success.
    pub fn success_status(self) -> u16 {
        match self {
            Operation::CreateSession
            | Operation::CreateInvocation
            | Operation::PutInvocationStep => 201,
            _ => 200,
        }
    }
}

fn session_summary(s: &Session) -> MapBuilder {
    MapBuilder::new()
        .ts("createdAt", s.created_at)
        .ts("lastUpdatedAt", s.last_updated_at)
        .str("sessionArn", &s.arn)
        .str("sessionId", &s.id)
        .str("sessionStatus", s.status.as_str())
}

fn invocation_summary(i: &Invocation) -> Value {
    MapBuilder::new()
        .ts("createdAt", i.created_at)
        .str("invocationId", &i.invocation_id)
        .str("sessionId", &i.session_id)
        .build()
}

fn step_summary(s: &StepSummary) -> MapBuilder {
    MapBuilder::new()
        .str("invocationId", &s.invocation_id)
        .str("invocationStepId", &s.step_id)
        .ts("invocationStepTime", s.time)
        .str("sessionId", &s.session_id)
}

fn page<T>(key: &str, p: Page<T>, f: impl Fn(&T) -> Value) -> Value {
    let mut m = MapBuilder::new().put(key, Value::List(p.items.iter().map(f).collect()));
    if let Some(t) = p.next_token {
        m = m.str("nextToken", t);
    }
    m.build()
}

/// Runs one operation on a store. `input` is the request's members as a map (boto3's keyword arguments).
pub async fn dispatch(store: &dyn SessionStore, op: Operation, input: Value) -> Result<Value> {
    Ok(match op {
        Operation::CreateSession => {
            let s = store
                .create_session(model::parse_create_session(input)?)
                .await?;
            MapBuilder::new()
                .ts("createdAt", s.created_at)
                .str("sessionArn", &s.arn)
                .str("sessionId", &s.id)
                .str("sessionStatus", s.status.as_str())
                .build()
        }
        Operation::GetSession => {
            let s = store.get_session(model::parse_session_only(input)?).await?;
            MapBuilder::new()
                .ts("createdAt", s.created_at)
                .opt_str("encryptionKeyArn", s.encryption_key_arn.clone())
                .ts("lastUpdatedAt", s.last_updated_at)
                .str("sessionArn", &s.arn)
                .str("sessionId", &s.id)
                .string_map("sessionMetadata", &s.metadata)
                .str("sessionStatus", s.status.as_str())
                .build()
        }
        Operation::ListSessions => {
            let p = store
                .list_sessions(model::parse_list_sessions(input)?)
                .await?;
            page("sessionSummaries", p, |s| session_summary(s).build())
        }
        Operation::UpdateSession => {
            let s = store
                .update_session(model::parse_update_session(input)?)
                .await?;
            session_summary(&s).build()
        }
        Operation::EndSession => {
            let s = store.end_session(model::parse_session_only(input)?).await?;
            MapBuilder::new()
                .str("sessionArn", &s.arn)
                .str("sessionId", &s.id)
                .str("sessionStatus", s.status.as_str())
                .build()
        }
        Operation::DeleteSession => {
            store
                .delete_session(model::parse_session_only(input)?)
                .await?;
            MapBuilder::new().build()
        }
        Operation::CreateInvocation => {
            let i = store
                .create_invocation(model::parse_create_invocation(input)?)
                .await?;
            invocation_summary(&i)
        }
        Operation::ListInvocations => {
            let (s, p) = model::parse_list_invocations(input)?;
            page(
                "invocationSummaries",
                store.list_invocations(s, p).await?,
                invocation_summary,
            )
        }
        Operation::PutInvocationStep => {
            let id = store
                .put_invocation_step(model::parse_put_step(input)?)
                .await?;
            MapBuilder::new().str("invocationStepId", id).build()
        }
        Operation::GetInvocationStep => {
            let step = store
                .get_invocation_step(model::parse_get_step(input)?)
                .await?;
            let inner = step_summary(&step.summary)
                .put("payload", step.payload.to_value())
                .build();
            MapBuilder::new().put("invocationStep", inner).build()
        }
        Operation::ListInvocationSteps => {
            let p = store
                .list_invocation_steps(model::parse_list_steps(input)?)
                .await?;
            page("invocationStepSummaries", p, |s| step_summary(s).build())
        }
        Operation::TagResource => {
            let (arn, tags) = model::parse_tag_resource(input)?;
            store.tag_resource(arn, tags).await?;
            MapBuilder::new().build()
        }
        Operation::UntagResource => {
            let (arn, keys) = model::parse_untag_resource(input)?;
            store.untag_resource(arn, keys).await?;
            MapBuilder::new().build()
        }
        Operation::ListTagsForResource => {
            let tags = store
                .list_tags_for_resource(model::parse_resource_only(input)?)
                .await?;
            MapBuilder::new().string_map("tags", &tags).build()
        }
    })
}

/// Looks an operation up by its AWS name (`"CreateSession"`).
pub fn operation(name: &str) -> Result<Operation> {
    Operation::from_name(name)
        .ok_or_else(|| Error::validation(format!("Unknown operation {name:?}")))
}
