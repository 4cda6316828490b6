//! A thread index in a DynamoDB table (the AWS SDK for Rust): any number of threads, no idle expiry, and
//! "bind unless bound" and compare-and-swap as conditional writes, atomic across processes.
//!
//! One item per thread, keyed by the thread id (string partition key `thread_id`):
//! `session_id` (the thread's current session), `generation` (how many times the thread moved on),
//! `created_at` and `updated_at` (microseconds since the epoch). Costs per operation: a lookup is one
//! strongly consistent GetItem; binding a new thread one conditional PutItem; moving a thread on one
//! conditional UpdateItem; a lost race one more GetItem. Deleting a thread deletes its item.
//!
//! The table is created on first use when missing (on-demand capacity), so the principal needs
//! `dynamodb:DescribeTable`, `CreateTable` (only for that first use), `GetItem`, `PutItem`, `UpdateItem` and
//! `DeleteItem` on it. Every call goes through our retry policy (the SDK's own retries are off).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb as ddb;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

use super::ThreadIndex;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::aws::{Attempt, RetryPolicy, classify, with_retries};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// DynamoDB's limit on a partition key's size.
const MAX_KEY_BYTES: usize = 2048;
/// How long a new table may take to become ACTIVE.
const TABLE_WAIT: Duration = Duration::from_secs(120);

/// Where the index lives: a table name (in the client's region) or a table ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
    /// From an ARN: the table's region, which wins over the client's.
    pub region: Option<String>,
}

impl TableSpec {
    /// Parses `dynamodb:<table>` or `arn:<partition>:dynamodb:<region>:<account>:table/<table>`; `None` when
    /// `spec` names no table (it is then a session-kept index's session id).
    pub fn parse(spec: &str) -> Option<std::result::Result<TableSpec, String>> {
        let (name, region) = if let Some(name) = spec.strip_prefix("dynamodb:") {
            (name.to_string(), None)
        } else if spec.starts_with("arn:") && spec.split(':').nth(2) == Some("dynamodb") {
            let parts: Vec<&str> = spec.splitn(6, ':').collect();
            match (
                parts.get(3),
                parts.get(5).and_then(|r| r.strip_prefix("table/")),
            ) {
                (Some(region), Some(name)) if !region.is_empty() => {
                    (name.to_string(), Some(region.to_string()))
                }
                _ => {
                    return Some(Err(format!(
                        "thread_index {spec:?} is not a DynamoDB table ARN \
                         (arn:aws:dynamodb:<region>:<account>:table/<name>)"
                    )));
                }
            }
        } else {
            return None;
        };
        // DynamoDB's rule for table names.
        let ok = (3..=255).contains(&name.len())
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
        Some(if ok {
            Ok(TableSpec { name, region })
        } else {
            Err(format!(
                "thread_index {spec:?}: a DynamoDB table name has 3 to 255 characters among \
                 a-z, A-Z, 0-9, '_', '-' and '.'"
            ))
        })
    }
}

#[derive(Debug, Clone)]
pub struct DynamoIndex {
    client: ddb::Client,
    table: String,
    retry: RetryPolicy,
}

/// The outcome of a conditional write.
enum Conditional {
    Written,
    ConditionFailed,
}

/// A conditional write's result: written, its condition failed, or an error (classified for retries).
fn conditional<T, E>(
    r: std::result::Result<T, SdkError<E, HttpResponse>>,
) -> std::result::Result<Conditional, Attempt>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => Ok(Conditional::Written),
        // After a lost response our own write may be what is there: the caller reads it.
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Ok(Conditional::ConditionFailed)
        }
        Err(e) => Err(classify(e)),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoIndex {
    /// Connects with the Bedrock backend's credentials and settings (`endpoint_url` is DynamoDB's own, for
    /// an emulator), and creates the table when it does not exist.
    pub async fn connect(
        shared: &aws_config::SdkConfig,
        retry: RetryPolicy,
        table: &TableSpec,
        endpoint_url: Option<&str>,
    ) -> std::result::Result<Self, String> {
        let mut conf = ddb::config::Builder::from(shared);
        if let Some(url) = endpoint_url {
            conf = conf.endpoint_url(url);
        }
        if let Some(r) = &table.region {
            conf = conf.region(aws_config::Region::new(r.clone()));
        }
        let index = DynamoIndex {
            client: ddb::Client::from_conf(conf.build()),
            table: table.name.clone(),
            retry,
        };
        index.ensure_table().await.map_err(|e| e.message)?;
        Ok(index)
    }

    fn err(&self, e: Error) -> Error {
        e.context(format_args!("thread index table {}", self.table))
    }

    fn key(&self, thread_id: &str) -> Result<HashMap<String, AttributeValue>> {
        if thread_id.is_empty() || thread_id.len() > MAX_KEY_BYTES {
            return Err(Error::validation(format!(
                "thread id {:?}: a thread kept in DynamoDB table {} needs an id of 1 to {MAX_KEY_BYTES} bytes \
                 (this one has {})",
                thread_id.chars().take(80).collect::<String>(),
                self.table,
                thread_id.len()
            )));
        }
        Ok(HashMap::from([("thread_id".to_string(), s(thread_id))]))
    }

    /// Creates the table unless it exists, and waits until it is ACTIVE (another process may be creating
    /// it at the same time: both wait for the one table).
    async fn ensure_table(&self) -> Result<()> {
        let status = self.table_status().await?;
        if status.is_none() {
            let created = with_retries(self.retry, |_| {
                let f = self
                    .client
                    .create_table()
                    .table_name(&self.table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("thread_id")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .expect("complete"),
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("thread_id")
                            .key_type(KeyType::Hash)
                            .build()
                            .expect("complete"),
                    )
                    .send();
                async move {
                    match f.await {
                        Ok(_) => Ok(()),
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|se| se.is_resource_in_use_exception()) =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(classify(e)),
                    }
                }
            })
            .await;
            created.map_err(|e| self.err(e))?;
        }
        let start = Instant::now();
        loop {
            match self.table_status().await? {
                Some(TableStatus::Active) => return Ok(()),
                Some(TableStatus::Creating) | Some(TableStatus::Updating) | None
                    if start.elapsed() < TABLE_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => {
                    return Err(self.err(Error::validation(format!(
                        "the table is not usable (status {other:?})"
                    ))));
                }
            }
        }
    }

    async fn table_status(&self) -> Result<Option<TableStatus>> {
        with_retries(self.retry, |_| {
            let f = self.client.describe_table().table_name(&self.table).send();
            async move {
                match f.await {
                    Ok(o) => Ok(Some(
                        o.table()
                            .and_then(|t| t.table_status().cloned())
                            .unwrap_or(TableStatus::Active),
                    )),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_resource_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(classify(e)),
                }
            }
        })
        .await
        .map_err(|e| self.err(e))
    }

    async fn get(&self, thread_id: &str) -> Result<Option<String>> {
        let key = self.key(thread_id)?;
        with_retries(self.retry, |_| {
            let f = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .projection_expression("session_id")
                .send();
            async move {
                let o = f.await.map_err(classify)?;
                Ok(o.item()
                    .and_then(|i| i.get("session_id"))
                    .and_then(|v| v.as_s().ok())
                    .cloned())
            }
        })
        .await
        .map_err(|e| self.err(e))
    }

    /// Puts the thread's item, only where `condition` holds when given.
    async fn put(
        &self,
        thread_id: &str,
        session_id: &str,
        condition: Option<&str>,
    ) -> Result<Conditional> {
        let mut item = self.key(thread_id)?;
        let now = SystemClock.now_us();
        item.insert("session_id".into(), s(session_id));
        item.insert("generation".into(), n(0));
        item.insert("created_at".into(), n(now));
        item.insert("updated_at".into(), n(now));
        let condition = condition.map(String::from);
        with_retries(self.retry, |_| {
            let f = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .set_condition_expression(condition.clone())
                .send();
            async move { conditional(f.await) }
        })
        .await
        .map_err(|e| self.err(e))
    }

    fn bound_after_race(&self, thread_id: &str, read: Option<String>) -> Result<String> {
        read.ok_or_else(|| {
            self.err(Error::internal(format!(
                "thread {thread_id:?}: a conditional write failed but the item is gone \
                 (deleted by another process at the same moment); try again"
            )))
        })
    }
}

#[async_trait]
impl ThreadIndex for DynamoIndex {
    async fn lookup(&self, thread_id: &str) -> Result<Option<String>> {
        self.get(thread_id).await
    }

    async fn bind(&self, thread_id: &str, session_id: &str, replace: bool) -> Result<String> {
        let condition = (!replace).then_some("attribute_not_exists(thread_id)");
        match self.put(thread_id, session_id, condition).await? {
            Conditional::Written => Ok(session_id.to_string()),
            Conditional::ConditionFailed => {
                let read = self.get(thread_id).await?;
                self.bound_after_race(thread_id, read)
            }
        }
    }

    async fn rebind(&self, thread_id: &str, from: &str, to: &str) -> Result<String> {
        let key = self.key(thread_id)?;
        let values = HashMap::from([
            (":from".to_string(), s(from)),
            (":to".to_string(), s(to)),
            (":now".to_string(), n(SystemClock.now_us())),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        let outcome = with_retries(self.retry, |_| {
            let f = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(
                    "SET session_id = :to, updated_at = :now, \
                     created_at = if_not_exists(created_at, :now), \
                     generation = if_not_exists(generation, :zero) + :one",
                )
                .condition_expression("attribute_not_exists(thread_id) OR session_id = :from")
                .set_expression_attribute_values(Some(values.clone()))
                .send();
            async move { conditional(f.await) }
        })
        .await
        .map_err(|e| self.err(e))?;
        match outcome {
            Conditional::Written => Ok(to.to_string()),
            Conditional::ConditionFailed => {
                let read = self.get(thread_id).await?;
                self.bound_after_race(thread_id, read)
            }
        }
    }

    async fn forget(&self, thread_id: &str, session_id: &str) -> Result<()> {
        let key = self.key(thread_id)?;
        with_retries(self.retry, |_| {
            let f = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .condition_expression("session_id = :sid")
                .expression_attribute_values(":sid", s(session_id))
                .send();
            // Condition failed: bound elsewhere since (another process continued the thread), or gone.
            async move { conditional(f.await).map(|_| ()) }
        })
        .await
        .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_specs() {
        assert_eq!(
            TableSpec::parse("0a1b2c3d-0000-4000-8000-00000000000a"),
            None
        );
        assert_eq!(
            TableSpec::parse("dynamodb:threads").unwrap().unwrap(),
            TableSpec {
                name: "threads".into(),
                region: None
            }
        );
        assert_eq!(
            TableSpec::parse("arn:aws:dynamodb:eu-west-1:123456789012:table/my.threads")
                .unwrap()
                .unwrap(),
            TableSpec {
                name: "my.threads".into(),
                region: Some("eu-west-1".into())
            }
        );
        for bad in [
            "dynamodb:",
            "dynamodb:ab",
            "dynamodb:has space",
            "arn:aws:dynamodb:eu-west-1:123456789012:stream/x",
        ] {
            assert!(TableSpec::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
