use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::error::ErrorCode;
use crate::model::*;
use crate::ops::{Operation, dispatch};
use crate::value::Value;

fn cfg_with(clock: Arc<ManualClock>) -> StoreConfig {
    StoreConfig {
        clock,
        ..StoreConfig::default()
    }
}

fn text(s: &str) -> Payload {
    Payload {
        blocks: vec![ContentBlock::Text(s.into())],
    }
}

fn sref(id: &str) -> SessionRef {
    SessionRef::parse("sessionIdentifier", id).unwrap()
}

fn create_req() -> CreateSession {
    CreateSession {
        encryption_key_arn: None,
        metadata: Default::default(),
        tags: Default::default(),
    }
}

async fn session_with_invocation(store: &SqliteStore) -> (Session, String) {
    let s = store.create_session(create_req()).await.unwrap();
    let inv = store
        .create_invocation(CreateInvocation {
            session: sref(&s.id),
            invocation_id: None,
            description: None,
        })
        .await
        .unwrap();
    (s, inv.invocation_id)
}

fn put(s: &Session, inv: &str, step_id: Option<&str>, time: i64, body: &str) -> PutStep {
    PutStep {
        session: sref(&s.id),
        invocation_id: inv.into(),
        step_id: step_id.map(String::from),
        time,
        payload: text(body),
    }
}

#[tokio::test]
async fn create_get_and_arn_forms() {
    let store = SqliteStore::memory(StoreConfig::default()).unwrap();
    let s = store.create_session(create_req()).await.unwrap();
    assert!(crate::validate::is_uuid(&s.id));
    assert_eq!(
        s.arn,
        format!("arn:aws:bedrock:us-east-1:000000000000:session/{}", s.id)
    );
    let by_arn = store.get_session(sref(&s.arn)).await.unwrap();
    assert_eq!(by_arn.id, s.id);
    // The same id under another account names no session here.
    let other = s.arn.replace("000000000000", "111111111111");
    let err = store.get_session(sref(&other)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn lifecycle_end_delete_expire() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = SqliteStore::memory(cfg_with(clock.clone())).unwrap();
    let (s, inv) = session_with_invocation(&store).await;

    // Deleting an ACTIVE session is refused.
    assert_eq!(
        store.delete_session(sref(&s.id)).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let ended = store.end_session(sref(&s.id)).await.unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(
        store.end_session(sref(&s.id)).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let e = store
        .put_invocation_step(put(&s, &inv, None, 1, "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    store.delete_session(sref(&s.id)).await.unwrap();
    assert_eq!(
        store.get_session(sref(&s.id)).await.unwrap_err().code,
        ErrorCode::ResourceNotFound
    );

    // Idle expiry follows the injected clock.
    let (s2, inv2) = session_with_invocation(&store).await;
    clock.advance(3_599_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Active
    );
    store
        .put_invocation_step(put(&s2, &inv2, None, 1, "keeps it alive"))
        .await
        .unwrap();
    clock.advance(3_599_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Active
    );
    clock.advance(1_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Expired
    );
    let e = store
        .put_invocation_step(put(&s2, &inv2, None, 1, "late"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    assert_eq!(
        store.end_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Ended
    );
}

#[tokio::test]
async fn steps_quota_idempotency_and_conflicts() {
    let cfg = StoreConfig {
        max_steps_per_session: 3,
        ..StoreConfig::default()
    };
    let store = SqliteStore::memory(cfg).unwrap();
    let (s, inv) = session_with_invocation(&store).await;
    let id = "0a1b2c3d-0000-4000-8000-00000000abcd";
    assert_eq!(
        store
            .put_invocation_step(put(&s, &inv, Some(id), 5, "a"))
            .await
            .unwrap(),
        id
    );
    // Same step again: a retry, not a new step.
    assert_eq!(
        store
            .put_invocation_step(put(&s, &inv, Some(id), 5, "a"))
            .await
            .unwrap(),
        id
    );
    let e = store
        .put_invocation_step(put(&s, &inv, Some(id), 5, "b"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    store
        .put_invocation_step(put(&s, &inv, None, 6, "c"))
        .await
        .unwrap();
    store
        .put_invocation_step(put(&s, &inv, None, 7, "d"))
        .await
        .unwrap();
    let e = store
        .put_invocation_step(put(&s, &inv, None, 8, "e"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ServiceQuotaExceeded);
    // A full session still answers a retry of a step it holds, and still refuses other content under
    // that id as a conflict (not as the quota).
    assert_eq!(
        store
            .put_invocation_step(put(&s, &inv, Some(id), 5, "a"))
            .await
            .unwrap(),
        id
    );
    let e = store
        .put_invocation_step(put(&s, &inv, Some(id), 5, "b"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    let e = store
        .put_invocation_step(put(
            &s,
            &inv,
            Some("0a1b2c3d-0000-4000-8000-00000000ffff"),
            9,
            "f",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ServiceQuotaExceeded);
    // Retries and refusals counted nothing: three steps, as written.
    let page = store
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: None,
            page: PageRequest::default(),
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    let unknown_inv = "0a1b2c3d-0000-4000-8000-000000000000";
    let e = store
        .put_invocation_step(put(&s, unknown_inv, None, 8, "e"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    let got = store
        .get_invocation_step(GetStep {
            session: sref(&s.id),
            invocation_id: inv.clone(),
            step_id: id.into(),
        })
        .await
        .unwrap();
    assert_eq!(got.payload, text("a"));
    assert_eq!(got.summary.time, 5);
}

#[tokio::test]
async fn max_step_bytes_is_enforced_before_writing() {
    let cfg = StoreConfig {
        max_step_bytes: 10,
        ..StoreConfig::default()
    };
    let store = SqliteStore::memory(cfg).unwrap();
    let (s, inv) = session_with_invocation(&store).await;
    store
        .put_invocation_step(put(&s, &inv, None, 1, "0123456789"))
        .await
        .unwrap();
    let e = store
        .put_invocation_step(put(&s, &inv, None, 1, "0123456789a"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation);
}

#[tokio::test]
async fn newest_first_pagination_with_ties() {
    let store = SqliteStore::memory(StoreConfig::default()).unwrap();
    let (s, inv) = session_with_invocation(&store).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        // Times repeat in pairs: ties must come out later-insert first.
        ids.push(
            store
                .put_invocation_step(put(&s, &inv, None, (i / 2) as i64, "x"))
                .await
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list_invocation_steps(ListSteps {
                session: sref(&s.id),
                invocation_id: None,
                page: PageRequest {
                    max_results: Some(7),
                    next_token: token.clone(),
                },
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items.into_iter().map(|x| x.step_id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    // Default page size is 10.
    let first = store
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: Some(inv),
            page: PageRequest::default(),
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 10);
    // A token of one listing is refused by another.
    let e = store
        .list_invocations(
            sref(&s.id),
            PageRequest {
                max_results: None,
                next_token: first.next_token,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation);
}

#[tokio::test]
async fn tags_limit_rolls_back() {
    let store = SqliteStore::memory(StoreConfig::default()).unwrap();
    let s = store.create_session(create_req()).await.unwrap();
    let arn = ResourceArn::parse(&s.arn).unwrap();
    let many: BTreeMap<String, String> = (0..150).map(|i| (format!("k{i}"), "v".into())).collect();
    store.tag_resource(arn.clone(), many).await.unwrap();
    let more: BTreeMap<String, String> =
        (150..251).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(
        store
            .tag_resource(arn.clone(), more)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Validation
    );
    assert_eq!(
        store
            .list_tags_for_resource(arn.clone())
            .await
            .unwrap()
            .len(),
        150
    );
    store
        .untag_resource(arn.clone(), vec!["k1".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(store.list_tags_for_resource(arn).await.unwrap().len(), 149);
}

#[tokio::test]
async fn file_store_persists_and_shares_between_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = SqliteStore::open(&path, StoreConfig::default()).unwrap();
    let (s, inv) = session_with_invocation(&a).await;
    let b = SqliteStore::open(&path, StoreConfig::default()).unwrap();
    // Two handles write at once from several tasks: every step lands.
    let mut tasks = Vec::new();
    for h in [a.clone(), b.clone()] {
        for t in 0..4 {
            let (h, s, inv) = (h.clone(), s.clone(), inv.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    h.put_invocation_step(put(&s, &inv, None, i, &format!("{t}-{i}")))
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(a);
    drop(b);
    let c = SqliteStore::open(&path, StoreConfig::default()).unwrap();
    let page = c
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: None,
            page: PageRequest {
                max_results: Some(1000),
                next_token: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 160);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path, StoreConfig::default()).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, StoreConfig::default()).unwrap_err();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn payload_encoding_round_trips_and_detects_corruption() {
    let p = Payload {
        blocks: vec![
            ContentBlock::Text("héllo".into()),
            ContentBlock::Image {
                format: ImageFormat::Webp,
                source: ImageSource::Bytes(vec![0, 1, 2, 255]),
            },
            ContentBlock::Image {
                format: ImageFormat::Gif,
                source: ImageSource::S3 {
                    uri: "s3://bucket/k".into(),
                },
            },
        ],
    };
    let blob = encode_payload(&p);
    assert_eq!(decode_payload(&blob).unwrap(), p);
    assert!(decode_payload(&blob[..blob.len() - 1]).is_err());
    assert!(decode_payload(&[2]).is_err());
}

#[tokio::test]
async fn dispatch_validates_and_shapes_responses() {
    let store = SqliteStore::memory(StoreConfig {
        busy_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    })
    .unwrap();
    let out = dispatch(&store, Operation::CreateSession, Value::Map(vec![]))
        .await
        .unwrap();
    let Value::Map(items) = out else {
        panic!("not a map")
    };
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["createdAt", "sessionArn", "sessionId", "sessionStatus"]
    );
    let bad = Value::Map(vec![(
        "sessionIdentifier".into(),
        Value::Str("nope".into()),
    )]);
    let e = dispatch(&store, Operation::GetSession, bad)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation);
    assert!(e.message.contains("sessionIdentifier"), "{}", e.message);
    let unknown = Value::Map(vec![("bogus".into(), Value::Int(1))]);
    let e = dispatch(&store, Operation::ListSessions, unknown)
        .await
        .unwrap_err();
    assert!(e.message.contains("bogus"));
    let too_many = Value::Map(vec![("maxResults".into(), Value::Int(1001))]);
    assert_eq!(
        dispatch(&store, Operation::ListSessions, too_many)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Validation
    );
}
