//! Behaviour every session store must show, run against each implementation (see the `conformance!` macro
//! in the SQLite and the in-memory stores' tests): the same errors, lifecycle, quotas, ordering, pagination,
//! tags and thread index.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::retention::Erasure;
use super::{SessionStore, StoreConfig};
use crate::clock::ManualClock;
use crate::crypto::{KeySource, Keyring};
use crate::error::ErrorCode;
use crate::model::*;
use crate::ops::{Operation, dispatch};
use crate::value::Value;

/// Makes a fresh store with the given settings.
pub type Make = fn(StoreConfig) -> Box<dyn SessionStore>;

/// Makes a fresh store with the given settings, and the same store as it erases sessions past retention.
pub type MakeErasing = fn(StoreConfig) -> (Box<dyn SessionStore>, Arc<dyn Erasure>);

/// Defines one `#[tokio::test]` per behaviour below, on the stores `$make` (and `$erasing`) build.
macro_rules! conformance {
    ($make:expr, $erasing:expr) => {
        conformance!(@tests $erasing;
            retention_hides_then_sweeps_sessions,
        );
        conformance!(@tests $make;
            encrypted_sessions_round_trip,
            unusable_keys_are_refused_at_create_session,
            create_get_and_arn_forms,
            lifecycle_end_delete_expire,
            steps_quota_idempotency_and_conflicts,
            max_step_bytes_is_enforced_before_writing,
            newest_first_pagination_with_ties,
            step_times_keep_microseconds,
            tags_limit_rolls_back,
            dispatch_validates_and_shapes_responses,
            invocations_and_steps_by_invocation,
            thread_index_binds_rebinds_and_forgets_deleted_sessions,
            sessions_list_newest_first_and_updates_keep_their_place,
            account_handles_keep_accounts_apart,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                crate::store::conformance::$name($make).await
            }
        )*
    };
}
pub(crate) use conformance;

fn cfg_with(clock: Arc<ManualClock>) -> StoreConfig {
    StoreConfig {
        clock,
        ..StoreConfig::default()
    }
}

pub(crate) fn text(s: &str) -> Payload {
    Payload {
        blocks: vec![ContentBlock::Text(s.into())],
    }
}

pub(crate) fn sref(id: &str) -> SessionRef {
    SessionRef::parse("sessionIdentifier", id).unwrap()
}

pub(crate) fn create_req() -> CreateSession {
    CreateSession {
        encryption_key_arn: None,
        metadata: Default::default(),
        tags: Default::default(),
    }
}

pub(crate) async fn session_with_invocation(store: &dyn SessionStore) -> (Session, String) {
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

pub(crate) fn put(s: &Session, inv: &str, step_id: Option<&str>, time: i64, body: &str) -> PutStep {
    PutStep {
        session: sref(&s.id),
        invocation_id: inv.into(),
        step_id: step_id.map(String::from),
        time,
        payload: text(body),
    }
}

/// The first page (default size) of a session's steps, newest first.
pub(crate) async fn first_page(store: &dyn SessionStore, s: &Session) -> Page<StepSummary> {
    store
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: None,
            page: PageRequest::default(),
        })
        .await
        .unwrap()
}

/// Every session id ListSessions gives, reading pages of `page_size`.
async fn session_ids_by_pages(store: &dyn SessionStore, page_size: u32) -> Vec<String> {
    let (mut seen, mut token) = (Vec::new(), None);
    loop {
        let page = store
            .list_sessions(PageRequest {
                max_results: Some(page_size),
                next_token: token,
            })
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|s| s.id));
        token = page.next_token;
        if token.is_none() {
            return seen;
        }
    }
}

/// Writes a step that must be stored: its id.
async fn step_ok(store: &dyn SessionStore, req: PutStep) -> String {
    store.put_invocation_step(req).await.unwrap()
}

/// Writes a step that must be refused: the error's code.
async fn step_err(store: &dyn SessionStore, req: PutStep) -> ErrorCode {
    store.put_invocation_step(req).await.unwrap_err().code
}

pub async fn create_get_and_arn_forms(make: Make) {
    let store = make(StoreConfig::default());
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

pub async fn lifecycle_end_delete_expire(make: Make) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let store = make(cfg_with(clock.clone()));
    let (s, inv) = session_with_invocation(&*store).await;

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
    assert_eq!(
        step_err(&*store, put(&s, &inv, None, 1, "x")).await,
        ErrorCode::Conflict
    );
    store.delete_session(sref(&s.id)).await.unwrap();
    assert_eq!(
        store.get_session(sref(&s.id)).await.unwrap_err().code,
        ErrorCode::ResourceNotFound
    );

    // Idle expiry follows the injected clock.
    let (s2, inv2) = session_with_invocation(&*store).await;
    clock.advance(3_599_000_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Active
    );
    step_ok(&*store, put(&s2, &inv2, None, 1, "keeps it alive")).await;
    clock.advance(3_599_000_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Active
    );
    clock.advance(1_000_000);
    assert_eq!(
        store.get_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Expired
    );
    assert_eq!(
        step_err(&*store, put(&s2, &inv2, None, 1, "late")).await,
        ErrorCode::Conflict
    );
    assert_eq!(
        store.end_session(sref(&s2.id)).await.unwrap().status,
        SessionStatus::Ended
    );
}

pub async fn steps_quota_idempotency_and_conflicts(make: Make) {
    let cfg = StoreConfig {
        max_steps_per_session: 3,
        ..StoreConfig::default()
    };
    let store = make(cfg);
    let (s, inv) = session_with_invocation(&*store).await;
    let id = "0a1b2c3d-0000-4000-8000-00000000abcd";
    assert_eq!(step_ok(&*store, put(&s, &inv, Some(id), 5, "a")).await, id);
    // Same step again: a retry, not a new step.
    assert_eq!(step_ok(&*store, put(&s, &inv, Some(id), 5, "a")).await, id);
    assert_eq!(
        step_err(&*store, put(&s, &inv, Some(id), 5, "b")).await,
        ErrorCode::Conflict
    );
    step_ok(&*store, put(&s, &inv, None, 6, "c")).await;
    step_ok(&*store, put(&s, &inv, None, 7, "d")).await;
    assert_eq!(
        step_err(&*store, put(&s, &inv, None, 8, "e")).await,
        ErrorCode::ServiceQuotaExceeded
    );
    // A full session still answers a retry of a step it holds, and still refuses other content under
    // that id as a conflict (not as the quota).
    assert_eq!(step_ok(&*store, put(&s, &inv, Some(id), 5, "a")).await, id);
    assert_eq!(
        step_err(&*store, put(&s, &inv, Some(id), 5, "b")).await,
        ErrorCode::Conflict
    );
    assert_eq!(
        step_err(
            &*store,
            put(
                &s,
                &inv,
                Some("0a1b2c3d-0000-4000-8000-00000000ffff"),
                9,
                "f",
            )
        )
        .await,
        ErrorCode::ServiceQuotaExceeded
    );
    // Retries and refusals counted nothing: three steps, as written.
    let page = first_page(&*store, &s).await;
    assert_eq!(page.items.len(), 3);
    let unknown_inv = "0a1b2c3d-0000-4000-8000-000000000000";
    assert_eq!(
        step_err(&*store, put(&s, unknown_inv, None, 8, "e")).await,
        ErrorCode::ResourceNotFound
    );
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

pub async fn max_step_bytes_is_enforced_before_writing(make: Make) {
    let cfg = StoreConfig {
        max_step_bytes: 10,
        ..StoreConfig::default()
    };
    let store = make(cfg);
    let (s, inv) = session_with_invocation(&*store).await;
    step_ok(&*store, put(&s, &inv, None, 1, "0123456789")).await;
    assert_eq!(
        step_err(&*store, put(&s, &inv, None, 1, "0123456789a")).await,
        ErrorCode::Validation
    );
}

pub async fn newest_first_pagination_with_ties(make: Make) {
    let store = make(StoreConfig::default());
    let (s, inv) = session_with_invocation(&*store).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        // Times repeat in pairs: ties must come out later-insert first.
        ids.push(step_ok(&*store, put(&s, &inv, None, (i / 2) as i64, "x")).await);
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

pub async fn step_times_keep_microseconds(make: Make) {
    let store = make(StoreConfig::default());
    let (s, inv) = session_with_invocation(&*store).await;
    // 2025-01-01T00:00:00.000100Z, .000200 and .000300: one millisecond, three instants. Written out of
    // order; listed newest first by time, and each read back as written.
    let t0 = 1_735_689_600_000_000;
    let mut ids = Vec::new();
    for dt in [200, 300, 100] {
        ids.push((
            t0 + dt,
            step_ok(&*store, put(&s, &inv, None, t0 + dt, "x")).await,
        ));
    }
    let page = first_page(&*store, &s).await;
    let listed: Vec<(i64, String)> = page
        .items
        .iter()
        .map(|x| (x.time, x.step_id.clone()))
        .collect();
    ids.sort_by_key(|x| std::cmp::Reverse(x.0));
    assert_eq!(listed, ids);
    for (time, id) in &ids {
        let step = store
            .get_invocation_step(GetStep {
                session: sref(&s.id),
                invocation_id: inv.clone(),
                step_id: id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(step.summary.time, *time);
    }
}

pub async fn tags_limit_rolls_back(make: Make) {
    let store = make(StoreConfig::default());
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

pub async fn dispatch_validates_and_shapes_responses(make: Make) {
    let store = make(StoreConfig {
        busy_timeout: Duration::from_secs(1),
        ..StoreConfig::default()
    });
    let out = dispatch(&*store, Operation::CreateSession, Value::Map(vec![]))
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
    let e = dispatch(&*store, Operation::GetSession, bad)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation);
    assert!(e.message.contains("sessionIdentifier"), "{}", e.message);
    let unknown = Value::Map(vec![("bogus".into(), Value::Int(1))]);
    let e = dispatch(&*store, Operation::ListSessions, unknown)
        .await
        .unwrap_err();
    assert!(e.message.contains("bogus"));
    let too_many = Value::Map(vec![("maxResults".into(), Value::Int(1001))]);
    assert_eq!(
        dispatch(&*store, Operation::ListSessions, too_many)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Validation
    );
}

pub async fn invocations_and_steps_by_invocation(make: Make) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let store = make(cfg_with(clock.clone()));
    let s = store.create_session(create_req()).await.unwrap();
    let mk = |id: &str, d: Option<&str>| CreateInvocation {
        session: sref(&s.id),
        invocation_id: Some(id.into()),
        description: d.map(String::from),
    };
    let a = "0a1b2c3d-0000-4000-8000-00000000000a";
    let b = "0a1b2c3d-0000-4000-8000-00000000000b";
    let inv_a = store.create_invocation(mk(a, Some("first"))).await.unwrap();
    assert_eq!(
        (inv_a.invocation_id.as_str(), inv_a.created_at),
        (a, 1_700_000_000_000_000)
    );
    assert_eq!(inv_a.session_id, s.id);
    clock.advance(5_000);
    store.create_invocation(mk(b, None)).await.unwrap();
    let e = store.create_invocation(mk(a, None)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("already exists"), "{}", e.message);
    // Newest first, with descriptions; creating an invocation counts as activity.
    let invs = store
        .list_invocations(sref(&s.id), PageRequest::default())
        .await
        .unwrap();
    let got: Vec<(&str, Option<&str>)> = invs
        .items
        .iter()
        .map(|i| (i.invocation_id.as_str(), i.description.as_deref()))
        .collect();
    assert_eq!(got, [(b, None), (a, Some("first"))]);
    assert_eq!(
        store
            .get_session(sref(&s.id))
            .await
            .unwrap()
            .last_updated_at,
        1_700_000_000_005_000
    );
    // Steps of each invocation; a step id is unique in the session, across invocations.
    let sa = step_ok(
        &*store,
        put(&s, a, Some("0a1b2c3d-0000-4000-8000-0000000000a1"), 1, "a1"),
    )
    .await;
    let sb = step_ok(&*store, put(&s, b, None, 2, "b1")).await;
    assert_eq!(
        step_err(&*store, put(&s, b, Some(&sa), 1, "a1")).await,
        ErrorCode::Conflict
    );
    let only_a = store
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: Some(a.into()),
            page: PageRequest::default(),
        })
        .await
        .unwrap();
    assert_eq!(
        only_a
            .items
            .iter()
            .map(|x| x.step_id.as_str())
            .collect::<Vec<_>>(),
        [sa.as_str()]
    );
    let all = first_page(&*store, &s).await;
    let got: Vec<(&str, &str)> = all
        .items
        .iter()
        .map(|x| (x.step_id.as_str(), x.invocation_id.as_str()))
        .collect();
    assert_eq!(got, [(sb.as_str(), b), (sa.as_str(), a)]);
    // A step asked for under another invocation of its session is not found there.
    let e = store
        .get_invocation_step(GetStep {
            session: sref(&s.id),
            invocation_id: b.into(),
            step_id: sa.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    let e = store
        .list_invocation_steps(ListSteps {
            session: sref(&s.id),
            invocation_id: Some("0a1b2c3d-0000-4000-8000-00000000000c".into()),
            page: PageRequest::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    assert!(e.message.starts_with("Invocation"), "{}", e.message);
}

pub async fn thread_index_binds_rebinds_and_forgets_deleted_sessions(make: Make) {
    let store = make(StoreConfig::default());
    let index = store.thread_index().expect("a native thread index");
    let s1 = store.create_session(create_req()).await.unwrap();
    let s2 = store.create_session(create_req()).await.unwrap();
    assert_eq!(index.lookup("t").await.unwrap(), None);
    assert_eq!(index.bind("t", &s1.id, false).await.unwrap(), s1.id);
    // Bound already: the first binding stands unless replaced.
    assert_eq!(index.bind("t", &s2.id, false).await.unwrap(), s1.id);
    assert_eq!(index.bind("t", &s2.id, true).await.unwrap(), s2.id);
    assert_eq!(index.lookup("t").await.unwrap(), Some(s2.id.clone()));
    let e = index
        .bind("u", "0a1b2c3d-0000-4000-8000-000000000000", false)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    assert_eq!(index.bind("u", &s1.id, false).await.unwrap(), s1.id);
    // A deleted session takes its bindings with it; the other binding stays.
    store.end_session(sref(&s2.id)).await.unwrap();
    store.delete_session(sref(&s2.id)).await.unwrap();
    assert_eq!(index.lookup("t").await.unwrap(), None);
    assert_eq!(index.lookup("u").await.unwrap(), Some(s1.id.clone()));
}

pub async fn sessions_list_newest_first_and_updates_keep_their_place(make: Make) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let store = make(cfg_with(clock.clone()));
    let mut ids = Vec::new();
    for i in 0..5 {
        if i == 3 {
            clock.advance(10_000);
        }
        ids.push(store.create_session(create_req()).await.unwrap().id);
    }
    // Updating a session changes its metadata and activity, not its place (sessions sort by creation).
    let mut md = BTreeMap::new();
    md.insert("k".to_string(), "v".to_string());
    clock.advance(10_000);
    let updated = store
        .update_session(UpdateSession {
            session: sref(&ids[0]),
            metadata: Some(md.clone()),
        })
        .await
        .unwrap();
    assert_eq!(
        (updated.metadata, updated.last_updated_at),
        (md, 1_700_000_000_020_000)
    );
    ids.reverse();
    assert_eq!(session_ids_by_pages(&*store, 2).await, ids);
    // Metadata left out of an update is kept.
    let kept = store
        .update_session(UpdateSession {
            session: sref(&ids[4]),
            metadata: None,
        })
        .await
        .unwrap();
    assert_eq!(kept.metadata.get("k").map(String::as_str), Some("v"));
}

/// Handles for two accounts on one store (the local server's tenants): each creates sessions that name its
/// account, lists only those, and finds no session of the other by id or by ARN, whatever the operation.
pub async fn account_handles_keep_accounts_apart(make: Make) {
    let store = make(StoreConfig::default());
    let (a, b) = (
        store.for_account("111111111111").unwrap(),
        store.for_account("222222222222").unwrap(),
    );
    assert!(a.thread_index().is_none());
    let unscoped = store.create_session(create_req()).await.unwrap();
    let mut mine = Vec::new();
    for _ in 0..3 {
        let s = a.create_session(create_req()).await.unwrap();
        assert!(s.arn.contains(":111111111111:session/"), "{}", s.arn);
        mine.push(s.id);
        b.create_session(create_req()).await.unwrap();
    }
    let (theirs, their_inv) = session_with_invocation(&*b).await;
    assert!(theirs.arn.contains(":222222222222:session/"));
    let step = b
        .put_invocation_step(put(&theirs, &their_inv, None, 1, "b's secret"))
        .await
        .unwrap();
    // ListSessions: a's sessions only, newest first, across pages.
    mine.reverse();
    assert_eq!(session_ids_by_pages(&*a, 2).await, mine);
    // The store itself still sees every session, its own account's included.
    let all = store
        .list_sessions(PageRequest {
            max_results: Some(100),
            next_token: None,
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 8);
    // b's session and the unscoped one, by id and by ARN, through every operation: not found for a.
    for target in [&theirs, &unscoped] {
        for raw in [target.id.as_str(), target.arn.as_str()] {
            let r = || sref(raw);
            let arn = ResourceArn::parse(&target.arn).unwrap();
            let codes = [
                a.get_session(r()).await.map(|_| ()),
                a.update_session(UpdateSession {
                    session: r(),
                    metadata: Some(BTreeMap::from([("k".into(), "v".into())])),
                })
                .await
                .map(|_| ()),
                a.end_session(r()).await.map(|_| ()),
                a.delete_session(r()).await,
                a.create_invocation(CreateInvocation {
                    session: r(),
                    invocation_id: None,
                    description: None,
                })
                .await
                .map(|_| ()),
                a.list_invocations(r(), PageRequest::default())
                    .await
                    .map(|_| ()),
                a.put_invocation_step(PutStep {
                    session: r(),
                    ..put(target, &their_inv, None, 2, "a's write")
                })
                .await
                .map(|_| ()),
                a.get_invocation_step(GetStep {
                    session: r(),
                    invocation_id: their_inv.clone(),
                    step_id: step.clone(),
                })
                .await
                .map(|_| ()),
                a.list_invocation_steps(ListSteps {
                    session: r(),
                    invocation_id: None,
                    page: PageRequest::default(),
                })
                .await
                .map(|_| ()),
                a.tag_resource(arn.clone(), BTreeMap::from([("k".into(), "v".into())]))
                    .await,
                a.untag_resource(arn.clone(), vec!["k".into()]).await,
                a.list_tags_for_resource(arn.clone()).await.map(|_| ()),
            ];
            for (i, c) in codes.into_iter().enumerate() {
                assert_eq!(
                    c.unwrap_err().code,
                    ErrorCode::ResourceNotFound,
                    "operation {i} on {raw}"
                );
            }
        }
    }
    // Nothing a did changed b's session.
    let after = b.get_session(sref(&theirs.id)).await.unwrap();
    assert_eq!(after.status, SessionStatus::Active);
    assert!(after.metadata.is_empty());
    assert!(
        b.list_tags_for_resource(ResourceArn::parse(&theirs.arn).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(first_page(&*b, &theirs).await.items.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Encryption at rest and retention (issue 16)

pub(crate) const KEY_A: &str =
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub(crate) const KEY_B: &str =
    "arn:aws:kms:us-east-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab";

/// A keyring with `KEY_A` (the default when `default`) and `KEY_B`.
pub(crate) fn keyring(default: bool) -> Arc<dyn KeySource> {
    let mut json = serde_json::json!({"keys": {
        KEY_A: Keyring::generate_key_material().unwrap(),
        KEY_B: Keyring::generate_key_material().unwrap(),
    }});
    if default {
        json["default"] = KEY_A.into();
    }
    Arc::new(Keyring::from_json(&json.to_string()).unwrap())
}

/// A keyring that holds `KEY_B` only.
pub(crate) fn keyring_without_a() -> Arc<dyn KeySource> {
    let json = serde_json::json!({"keys": {KEY_B: Keyring::generate_key_material().unwrap()}});
    Arc::new(Keyring::from_json(&json.to_string()).unwrap())
}

pub(crate) fn with_keys(source: Arc<dyn KeySource>) -> StoreConfig {
    StoreConfig {
        key_source: Some(source),
        ..StoreConfig::default()
    }
}

/// A payload of text and image bytes.
pub(crate) fn rich(text: &str, image: &[u8]) -> Payload {
    Payload {
        blocks: vec![
            ContentBlock::Text(text.into()),
            ContentBlock::Image {
                format: ImageFormat::Png,
                source: ImageSource::Bytes(image.to_vec()),
            },
        ],
    }
}

/// The ids of the first page of sessions (the default page size), newest first.
async fn listed(store: &dyn SessionStore) -> Vec<String> {
    let page = store.list_sessions(PageRequest::default()).await.unwrap();
    page.items.into_iter().map(|s| s.id).collect()
}

/// Every record of an encrypted session reads back as written, through every operation that returns it.
pub async fn encrypted_sessions_round_trip(make: Make) {
    let store = make(with_keys(keyring(true)));
    let metadata = BTreeMap::from([("user".to_string(), "ana, size 42".to_string())]);
    for key in [None, Some(KEY_B)] {
        let s = store
            .create_session(CreateSession {
                encryption_key_arn: key.map(String::from),
                metadata: metadata.clone(),
                tags: BTreeMap::from([("app".into(), "shoes".into())]),
            })
            .await
            .unwrap();
        // The key a session names is the one GetSession reports (a default key is not named, as the service
        // does not name its own keys).
        let got = store.get_session(sref(&s.id)).await.unwrap();
        assert_eq!(got.metadata, metadata);
        assert_eq!(got.encryption_key_arn.as_deref(), key);
        let inv = store
            .create_invocation(CreateInvocation {
                session: sref(&s.id),
                invocation_id: None,
                description: Some("turn 1: trail shoes".into()),
            })
            .await
            .unwrap();
        assert_eq!(inv.description.as_deref(), Some("turn 1: trail shoes"));
        let listed = store
            .list_invocations(sref(&s.id), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(
            listed.items[0].description.as_deref(),
            Some("turn 1: trail shoes")
        );
        let payload = rich("size 42 please", &[0x89, b'P', b'N', b'G', 0, 1, 2]);
        let req = |p: &Payload| PutStep {
            session: sref(&s.id),
            invocation_id: inv.invocation_id.clone(),
            step_id: Some("0a1b2c3d-0000-4000-8000-0000000000f1".into()),
            time: 7,
            payload: p.clone(),
        };
        let id = step_ok(&*store, req(&payload)).await;
        // A retry of the same step is a success; other content is a conflict (plaintexts are compared).
        assert_eq!(step_ok(&*store, req(&payload)).await, id);
        assert_eq!(
            step_err(&*store, req(&text("other"))).await,
            ErrorCode::Conflict
        );
        let step = store
            .get_invocation_step(GetStep {
                session: sref(&s.id),
                invocation_id: inv.invocation_id.clone(),
                step_id: id,
            })
            .await
            .unwrap();
        assert_eq!(step.payload, payload);
        let md2 = BTreeMap::from([("user".to_string(), "ana, size 43".to_string())]);
        let updated = store
            .update_session(UpdateSession {
                session: sref(&s.arn),
                metadata: Some(md2.clone()),
            })
            .await
            .unwrap();
        assert_eq!(updated.metadata, md2);
        // Listed without opening its metadata (summaries need no key).
        let all = store.list_sessions(PageRequest::default()).await.unwrap();
        assert!(
            all.items
                .iter()
                .any(|x| x.id == s.id && x.metadata.is_empty())
        );
        let ended = store.end_session(sref(&s.id)).await.unwrap();
        assert_eq!(ended.metadata, md2);
        store.delete_session(sref(&s.id)).await.unwrap();
        assert_eq!(
            store.get_session(sref(&s.id)).await.unwrap_err().code,
            ErrorCode::ResourceNotFound
        );
    }
}

/// A session whose key the store cannot use is refused at CreateSession with ValidationException, naming the
/// key, and nothing is stored; a store without key material never stores a session that names a key.
pub async fn unusable_keys_are_refused_at_create_session(make: Make) {
    let named = |k: &str| CreateSession {
        encryption_key_arn: Some(k.into()),
        ..create_req()
    };
    let unknown = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000";
    let without_keys = make(StoreConfig::default());
    let ring = make(with_keys(keyring(false)));
    for (store, key, why) in [
        (&without_keys, KEY_A, "no key material"),
        (&ring, unknown, "is not in keyring"),
    ] {
        let e = store.create_session(named(key)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation, "{e}");
        assert!(
            e.message.contains(key) && e.message.contains(why),
            "{}",
            e.message
        );
        assert_eq!(listed(&**store).await, Vec::<String>::new());
    }
    // Without a default key, a session that names none is clear; one that names a held key is encrypted.
    let clear = ring.create_session(create_req()).await.unwrap();
    assert_eq!(clear.encryption_key_arn, None);
    let sealed = ring.create_session(named(KEY_A)).await.unwrap();
    assert_eq!(sealed.encryption_key_arn.as_deref(), Some(KEY_A));
    let page = ring.list_sessions(PageRequest::default()).await.unwrap();
    assert_eq!(page.items.len(), 2);
}

/// Sessions past retention (counted from their last update) are gone from the API at once, and a sweep erases
/// them with their thread bindings; sessions written since stay.
pub async fn retention_hides_then_sweeps_sessions(make: MakeErasing) {
    const DAY: i64 = 86_400_000_000;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let (store, erasure) = make(StoreConfig {
        retention: Some(Duration::from_secs(30 * 86_400)),
        // Sessions stay writable across the test's days.
        idle_timeout: Duration::from_secs(365 * 86_400),
        clock: clock.clone(),
        ..with_keys(keyring(true))
    });
    let index = store.thread_index().expect("a thread index");
    let (old, _) = session_with_invocation(&*store).await;
    index.bind("old-thread", &old.id, false).await.unwrap();
    let kept = store.create_session(create_req()).await.unwrap();
    clock.advance(20 * DAY);
    // Written on day 20: its retention starts again.
    store
        .update_session(UpdateSession {
            session: sref(&kept.id),
            metadata: None,
        })
        .await
        .unwrap();
    let fresh = store.create_session(create_req()).await.unwrap();
    assert_eq!(erasure.sweep().await.unwrap(), 0, "nothing is due yet");
    clock.advance(10 * DAY);
    // Day 30: `old` is exactly 30 days old: gone from the API, before any sweep.
    for raw in [old.id.as_str(), old.arn.as_str()] {
        let e = store.get_session(sref(raw)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ResourceNotFound, "{raw}");
    }
    assert_eq!(
        listed(&*store).await,
        vec![fresh.id.clone(), kept.id.clone()]
    );
    assert_eq!(erasure.sweep().await.unwrap(), 1);
    assert_eq!(erasure.sweep().await.unwrap(), 0);
    assert_eq!(index.lookup("old-thread").await.unwrap(), None);
    store.get_session(sref(&kept.id)).await.unwrap();
    clock.advance(20 * DAY);
    assert_eq!(erasure.sweep().await.unwrap(), 2);
    assert_eq!(listed(&*store).await, Vec::<String>::new());
}
