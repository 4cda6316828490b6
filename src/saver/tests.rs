use super::layout::{Envelope, StepKind};
use super::*;
use crate::model::{ContentBlock, GetStep, ListSteps, PageRequest};
use crate::store::StoreConfig;
use crate::store::sqlite::SqliteStore;
use futures::future::join_all;

fn typed(s: &str) -> Typed {
    Typed("json".into(), s.as_bytes().to_vec())
}

fn uuid6_like(n: u64) -> String {
    // Increasing uuid6-shaped ids (version 6, variant 10), like LangGraph's.
    let hi = 0x1ef4_f797_8335u64 + n;
    format!(
        "{:08x}-{:04x}-6{:03x}-8001-{:012x}",
        hi >> 16,
        hi & 0xffff,
        n & 0xfff,
        n
    )
}

fn cp(thread: &str, ns: &str, id: &str, parent: Option<&str>, value: &str) -> PutCheckpoint {
    PutCheckpoint {
        thread_id: thread.into(),
        checkpoint_ns: ns.into(),
        checkpoint_id: id.into(),
        parent_checkpoint_id: parent.map(String::from),
        checkpoint: typed(&format!("{{\"id\":\"{id}\"}}")),
        metadata_json: format!("{{\"step\":1,\"run_id\":\"run-{value}\"}}"),
        channel_values: vec![("v".into(), typed(value))],
    }
}

fn writes(thread: &str, id: &str, task: &str, ws: &[(&str, i64, &str)]) -> PutWrites {
    PutWrites {
        thread_id: thread.into(),
        checkpoint_ns: String::new(),
        checkpoint_id: id.into(),
        task_id: task.into(),
        task_path: format!("path-{task}"),
        writes: ws
            .iter()
            .map(|(c, i, v)| (c.to_string(), *i, typed(v)))
            .collect(),
    }
}

fn store() -> SqliteStore {
    SqliteStore::memory(StoreConfig::default()).unwrap()
}

#[tokio::test]
async fn put_get_latest_and_by_id_with_parents() {
    let (st, saver) = (store(), Saver::new());
    let ids: Vec<String> = (1..=3).map(uuid6_like).collect();
    saver
        .put(&st, cp("t", "", &ids[0], None, "a"))
        .await
        .unwrap();
    saver
        .put(&st, cp("t", "", &ids[1], Some(&ids[0]), "b"))
        .await
        .unwrap();
    saver
        .put(&st, cp("t", "child:1", &ids[2], None, "sub"))
        .await
        .unwrap();
    let latest = saver.get_tuple(&st, "t", "", None).await.unwrap().unwrap();
    assert_eq!(latest.checkpoint_id, ids[1]);
    assert_eq!(
        latest.parent_checkpoint_id.as_deref(),
        Some(ids[0].as_str())
    );
    assert_eq!(latest.channel_values, Some(vec![("v".into(), typed("b"))]));
    let first = saver
        .get_tuple(&st, "t", "", Some(&ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.channel_values, Some(vec![("v".into(), typed("a"))]));
    // Namespaces are apart.
    assert_eq!(
        saver
            .get_tuple(&st, "t", "child:1", None)
            .await
            .unwrap()
            .unwrap()
            .checkpoint_id,
        ids[2]
    );
    assert!(
        saver
            .get_tuple(&st, "t", "", Some(&ids[2]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        saver
            .get_tuple(&st, "nobody", "", None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn writes_merge_regular_first_special_last_and_may_precede_the_checkpoint() {
    let (st, saver) = (store(), Saver::new());
    let id = uuid6_like(7);
    // Writes before their checkpoint's put.
    saver
        .put_writes(
            &st,
            writes("t", &id, "task-b", &[("ch", 0, "b0"), ("ch2", 1, "b1")]),
        )
        .await
        .unwrap();
    saver.put(&st, cp("t", "", &id, None, "x")).await.unwrap();
    saver
        .put_writes(&st, writes("t", &id, "task-a", &[("ch", 0, "first")]))
        .await
        .unwrap();
    // A regular write again with other content: insert-or-ignore.
    saver
        .put_writes(&st, writes("t", &id, "task-a", &[("ch", 0, "second")]))
        .await
        .unwrap();
    // Special writes overwrite.
    saver
        .put_writes(&st, writes("t", &id, "task-a", &[("__error__", -1, "e1")]))
        .await
        .unwrap();
    saver
        .put_writes(&st, writes("t", &id, "task-a", &[("__error__", -1, "e2")]))
        .await
        .unwrap();
    let rec = saver
        .get_tuple(&st, "t", "", Some(&id))
        .await
        .unwrap()
        .unwrap();
    let got: Vec<(String, String, i64, String)> = rec
        .writes
        .iter()
        .map(|w| {
            (
                w.task_id.clone(),
                w.channel.clone(),
                w.idx,
                String::from_utf8(w.value.1.clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("task-a".into(), "__error__".into(), -1, "e2".into()),
            ("task-a".into(), "ch".into(), 0, "first".into()),
            ("task-b".into(), "ch".into(), 0, "b0".into()),
            ("task-b".into(), "ch2".into(), 1, "b1".into()),
        ]
    );
    // The latest lookup finds the same writes.
    assert_eq!(
        saver
            .get_tuple(&st, "t", "", None)
            .await
            .unwrap()
            .unwrap()
            .writes,
        rec.writes
    );
}

#[tokio::test]
async fn put_again_with_other_content_makes_a_revision() {
    let (st, saver) = (store(), Saver::new());
    let id = uuid6_like(3);
    saver.put(&st, cp("t", "", &id, None, "old")).await.unwrap();
    saver.put(&st, cp("t", "", &id, None, "old")).await.unwrap(); // identical: a no-op
    saver.put(&st, cp("t", "", &id, None, "new")).await.unwrap();
    let rec = saver
        .get_tuple(&st, "t", "", Some(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.channel_values, Some(vec![("v".into(), typed("new"))]));
    assert_eq!(saver.all_records(&st, "t").await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_streams_newest_first_with_before() {
    let (st, saver) = (store(), Saver::new());
    let ids: Vec<String> = (1..=40).map(uuid6_like).collect();
    for (i, id) in ids.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| ids[p].as_str());
        saver
            .put(&st, cp("t", "", id, parent, &i.to_string()))
            .await
            .unwrap();
    }
    let mut cursor = saver
        .list_start(&st, Some("t"), Some(""), Some(&ids[30]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = saver.list_next(&st, &mut cursor, 7).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 7);
        seen.extend(batch.into_iter().map(|r| r.checkpoint_id));
    }
    let expected: Vec<String> = ids[..30].iter().rev().cloned().collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn prune_copy_delete_for_runs_and_delete_thread() {
    let (st, saver) = (store(), Saver::new());
    let ids: Vec<String> = (1..=4).map(uuid6_like).collect();
    saver
        .put(&st, cp("t", "", &ids[0], None, "a"))
        .await
        .unwrap();
    saver
        .put(&st, cp("t", "", &ids[1], Some(&ids[0]), "b"))
        .await
        .unwrap();
    saver
        .put_writes(&st, writes("t", &ids[1], "task", &[("ch", 0, "w")]))
        .await
        .unwrap();
    saver
        .put(&st, cp("t", "ns", &ids[2], None, "c"))
        .await
        .unwrap();

    saver.copy_thread(&st, "t", "copy").await.unwrap();
    let copied = saver.all_records(&st, "copy").await.unwrap();
    assert_eq!(copied.len(), 3);
    assert_eq!(
        copied
            .iter()
            .find(|r| r.checkpoint_id == ids[1])
            .unwrap()
            .writes
            .len(),
        1
    );

    saver.prune(&st, &["t".to_string()], true).await.unwrap();
    let kept = saver.all_records(&st, "t").await.unwrap();
    let mut kept_ids: Vec<&str> = kept.iter().map(|r| r.checkpoint_id.as_str()).collect();
    kept_ids.sort();
    assert_eq!(kept_ids, vec![ids[1].as_str(), ids[2].as_str()]);
    assert_eq!(
        kept.iter()
            .find(|r| r.checkpoint_id == ids[1])
            .unwrap()
            .writes
            .len(),
        1
    );
    // A fresh Saver (another process) finds the rewritten thread through the index.
    assert_eq!(Saver::new().all_records(&st, "t").await.unwrap().len(), 2);

    saver
        .delete_for_runs(&st, &["run-b".to_string()])
        .await
        .unwrap();
    let left: Vec<String> = saver
        .all_records(&st, "copy")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.checkpoint_id)
        .collect();
    assert!(!left.contains(&ids[1]) && left.len() == 2, "{left:?}");

    saver.delete_thread(&st, "t").await.unwrap();
    assert!(saver.get_tuple(&st, "t", "", None).await.unwrap().is_none());
    assert!(
        Saver::new()
            .get_tuple(&st, "t", "", None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn concurrent_first_puts_of_one_thread_share_one_session() {
    let st = store();
    let ids: Vec<String> = (1..=8).map(uuid6_like).collect();
    let savers: Vec<Saver> = (0..8).map(|_| Saver::new()).collect();
    let puts = savers
        .iter()
        .zip(&ids)
        .map(|(s, id)| s.put(&st, cp("race", "", id, None, "x")));
    for r in join_all(puts).await {
        r.unwrap();
    }
    let page = st
        .list_sessions(PageRequest {
            max_results: Some(100),
            next_token: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "losers dropped their sessions");
    assert_eq!(
        Saver::new().all_records(&st, "race").await.unwrap().len(),
        8
    );
}

#[test]
fn legacy_envelopes_decode() {
    let cp_json = r#"{"step_type":"CHECKPOINTS","thread_id":"t","checkpoint_ns":"","checkpoint_id":"c1","checkpoint":["msgpack","AAE="],"metadata":["json","eyJzdGVwIjogMX0="],"parent_checkpoint_id":null,"channel_values":["msgpack","AAE="],"version":["msgpack","AAE="]}"#;
    let Some(Envelope::LegacyCheckpoint(c)) = layout::decode(&[cp_json]).unwrap() else {
        panic!("not legacy")
    };
    assert_eq!(c.checkpoint, Typed("msgpack".into(), vec![0, 1]));
    assert_eq!(
        layout::legacy_metadata_json(&c.metadata).unwrap(),
        r#"{"step": 1}"#
    );
    let w = r#"{"step_type":"WRITES","thread_id":"t","checkpoint_ns":"","checkpoint_id":"c1","task_id":"k","channel":"ch","value":["json","MQ=="],"task_path":"","write_idx":0}"#;
    let Some(Envelope::LegacyWrites(ws)) = layout::decode(&[w, w]).unwrap() else {
        panic!("not legacy writes")
    };
    assert_eq!(ws.len(), 2);
    assert!(layout::decode(&["plain user text"]).unwrap().is_none());
    assert!(
        layout::decode(&[r#"{"v":"bs9","kind":"checkpoint"}"#]).is_err(),
        "a newer layout is refused, not misread"
    );
}

#[tokio::test]
async fn large_checkpoints_are_stored_compressed_and_read_back() {
    let (st, saver) = (store(), Saver::new());
    let id = uuid6_like(9);
    let mut big = cp("t", "", &id, None, "x");
    big.channel_values = vec![("messages".into(), typed(&"hello world ".repeat(5000)))];
    saver.put(&st, big.clone()).await.unwrap();
    saver
        .put_writes(
            &st,
            writes("t", &id, "task", &[("ch", 0, &"w".repeat(20_000))]),
        )
        .await
        .unwrap();
    let step = st
        .get_invocation_step(GetStep {
            session: sref(&saver.resolve(&st, "t", false).await.unwrap().unwrap()),
            invocation_id: layout::namespace_invocation_id(""),
            step_id: id.clone(),
        })
        .await
        .unwrap();
    let ContentBlock::Text(text) = &step.payload.blocks[0] else {
        panic!("not text")
    };
    assert!(
        text.starts_with(r#"{"v":"bs1","z":"zstd""#) && text.len() < 10_000,
        "{}",
        &text[..40]
    );
    let by_id = saver
        .get_tuple(&st, "t", "", Some(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.channel_values, Some(big.channel_values.clone()));
    assert_eq!(by_id.writes.len(), 1);
    let latest = saver.get_tuple(&st, "t", "", None).await.unwrap().unwrap();
    assert_eq!(latest.checkpoint_id, id);
    assert_eq!(saver.all_records(&st, "t").await.unwrap().len(), 1);
}

/// The embedded store with slow writes: calls of one thread meet in flight, as over a network.
fn slow_store() -> crate::store::testing::Wrapped {
    crate::store::testing::Wrapped {
        put_delay: std::time::Duration::from_millis(3),
        ..crate::store::testing::Wrapped::new(store(), true)
    }
}

/// Every step of a thread's session: (kind, step id).
async fn steps_of(st: &dyn SessionStore, saver: &Saver, thread: &str) -> Vec<(StepKind, String)> {
    let sid = saver.resolve(st, thread, false).await.unwrap().unwrap();
    let page = st
        .list_invocation_steps(ListSteps {
            session: sref(&sid),
            invocation_id: None,
            page: PageRequest {
                max_results: Some(1000),
                next_token: None,
            },
        })
        .await
        .unwrap();
    assert!(page.next_token.is_none());
    page.items
        .into_iter()
        .map(|s| (layout::classify_step(&s.step_id).0, s.step_id))
        .collect()
}

/// Writes of checkpoint `of` (one per task, thread "t") and the next checkpoint, all in flight at once.
async fn writes_and_put_in_flight(
    st: &dyn SessionStore,
    saver: &Saver,
    of: &str,
    tasks: &[String],
    next: PutCheckpoint,
) {
    let mut calls: Vec<std::pin::Pin<Box<dyn Future<Output = Result<()>> + '_>>> = tasks
        .iter()
        .map(|t| {
            Box::pin(saver.put_writes(st, writes("t", of, t, &[("ch", 0, t.as_str())])))
                as std::pin::Pin<Box<dyn Future<Output = Result<()>>>>
        })
        .collect();
    calls.push(Box::pin(saver.put(st, next)));
    for r in join_all(calls).await {
        r.unwrap();
    }
}

#[tokio::test]
async fn concurrent_writes_of_a_superstep_share_one_step_and_read_back_whole() {
    let (st, saver) = (slow_store(), Saver::new());
    let ids: Vec<String> = (1..=2).map(uuid6_like).collect();
    saver
        .put(&st, cp("t", "", &ids[0], None, "a"))
        .await
        .unwrap();
    // Eight tasks' writes and the next checkpoint, all in flight at once: the first goes alone, the
    // others wait for it and go together.
    let tasks: Vec<String> = (0..8).map(|i| format!("task{i}")).collect();
    writes_and_put_in_flight(
        &st,
        &saver,
        &ids[0],
        &tasks,
        cp("t", "", &ids[1], Some(&ids[0]), "b"),
    )
    .await;
    // The first checkpoint, then one batch: the first writes waited (lingered) for the checkpoint that
    // follows them, and everything else arrived meanwhile.
    let steps = steps_of(&st, &saver, "t").await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        steps.iter().filter(|s| s.0 == StepKind::Batch).count(),
        1,
        "{steps:?}"
    );
    // Read back by a saver that wrote nothing (no step cache), by id, latest, and listed.
    let other = Saver::new();
    let first = other
        .get_tuple(&st, "t", "", Some(&ids[0]))
        .await
        .unwrap()
        .unwrap();
    let mut got: Vec<&str> = first.writes.iter().map(|w| w.task_id.as_str()).collect();
    got.sort();
    assert_eq!(got, tasks.iter().map(String::as_str).collect::<Vec<_>>());
    let latest = other.get_tuple(&st, "t", "", None).await.unwrap().unwrap();
    assert_eq!(latest.checkpoint_id, ids[1]);
    assert_eq!(
        latest.parent_checkpoint_id.as_deref(),
        Some(ids[0].as_str())
    );
    assert_eq!(
        other
            .get_tuple(&st, "t", "", Some(&ids[1]))
            .await
            .unwrap()
            .unwrap(),
        latest
    );
    let all = other.all_records(&st, "t").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|r| r.checkpoint_id.as_str())
            .collect::<Vec<_>>(),
        vec![ids[1].as_str(), ids[0].as_str()]
    );
    assert_eq!(all[1], first);
    // The writer's own reads (served from its step cache) agree.
    assert_eq!(
        saver
            .get_tuple(&st, "t", "", Some(&ids[0]))
            .await
            .unwrap()
            .unwrap(),
        first
    );
    // Idle lanes are not kept (a long-lived process writes many threads).
    assert_eq!(saver.lanes.count(), 0);
}

/// A leader whose own record is stored returns at once: it does not linger, for the writes queued behind
/// it, for a checkpoint that may only come once it returns (LangGraph puts a thread's next checkpoint after
/// the previous put returned). The writes' new leader lingers instead. On paused (virtual) time: the store's
/// writes take 10 ms, so a linger would be 5 ms.
#[tokio::test(start_paused = true)]
async fn a_leader_whose_record_is_stored_hands_over_without_lingering() {
    use std::time::Duration;
    let st = crate::store::testing::Wrapped {
        put_delay: Duration::from_millis(10),
        ..crate::store::testing::Wrapped::new(store(), true)
    };
    let saver = Saver::new();
    let ids: Vec<String> = (1..=3).map(uuid6_like).collect();
    // The lane learns the store's round trip.
    saver
        .put(&st, cp("t", "", &ids[0], None, "a"))
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let checkpoint = async {
        saver
            .put(&st, cp("t", "", &ids[1], Some(&ids[0]), "b"))
            .await
            .unwrap();
        start.elapsed()
    };
    let task_writes = async {
        tokio::time::sleep(Duration::from_millis(1)).await; // arrives while the checkpoint is in flight
        saver
            .put_writes(&st, writes("t", &ids[1], "task", &[("ch", 0, "x")]))
            .await
            .unwrap();
        start.elapsed()
    };
    let (checkpoint_took, writes_took) = tokio::join!(checkpoint, task_writes);
    assert_eq!(checkpoint_took, Duration::from_millis(10));
    // The writes waited for the lane, lingered (no checkpoint came), then went alone.
    assert_eq!(writes_took, Duration::from_millis(25));
    let steps = steps_of(&st, &saver, "t").await;
    assert_eq!(steps.len(), 3, "{steps:?}");
}

#[tokio::test]
async fn deferred_saver_queues_batches_and_flushes() {
    let st: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(store());
    let saver = std::sync::Arc::new(Saver::deferred());
    let ids: Vec<String> = (1..=30).map(uuid6_like).collect();
    for (i, id) in ids.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| ids[p].as_str());
        saver
            .put_deferred(st.clone(), cp("d", "", id, parent, &i.to_string()))
            .await
            .unwrap();
        saver
            .put_writes_deferred(
                st.clone(),
                writes("d", id, "task", &[("ch", 0, &format!("w{i}"))]),
            )
            .await
            .unwrap();
    }
    // The writer reads its own writes (its reads wait for its queue).
    let latest = saver.get_tuple(&*st, "d", "", None).await.unwrap().unwrap();
    assert_eq!(latest.checkpoint_id, ids[29]);
    assert_eq!(latest.writes.len(), 1);
    saver.flush(None).await.unwrap();
    let other = Saver::new();
    let all = other.all_records(&*st, "d").await.unwrap();
    assert_eq!(all.len(), 30);
    for (i, r) in all.iter().rev().enumerate() {
        assert_eq!(r.checkpoint_id, ids[i]);
        assert_eq!(r.writes.len(), 1, "{i}");
        assert_eq!(r.writes[0].value, typed(&format!("w{i}")));
        assert_eq!(
            r.channel_values,
            Some(vec![("v".into(), typed(&i.to_string()))])
        );
    }
    assert_eq!(saver.lanes.count(), 0, "flushed lanes are not kept");
    // 60 calls, far fewer steps (the first call goes alone; the rest meet in flight).
    let steps = steps_of(&*st, &other, "d").await.len();
    assert!(steps < 60, "{steps} steps");
    // Listing with `before` in small windows over batches: exact and in order.
    let mut cursor = other
        .list_start(&*st, Some("d"), Some(""), Some(&ids[20]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = other.list_next(&*st, &mut cursor, 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.into_iter().map(|r| r.checkpoint_id));
    }
    assert_eq!(seen, ids[..20].iter().rev().cloned().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_checkpoint_put_again_after_its_batch_wins() {
    let (st, saver) = (slow_store(), Saver::new());
    let ids: Vec<String> = (1..=2).map(uuid6_like).collect();
    saver
        .put(&st, cp("r", "", &ids[0], None, "a"))
        .await
        .unwrap();
    let (a, b) = futures::join!(
        saver.put_writes(&st, writes("r", &ids[0], "x", &[("ch", 0, "w")])),
        saver.put(&st, cp("r", "", &ids[1], Some(&ids[0]), "first")),
    );
    a.unwrap();
    b.unwrap();
    let (c, d) = futures::join!(
        saver.put_writes(&st, writes("r", &ids[0], "y", &[("ch", 0, "w")])),
        saver.put_writes(&st, writes("r", &ids[1], "z", &[("ch", 0, "w")])),
    );
    c.unwrap();
    d.unwrap();
    saver
        .put(&st, cp("r", "", &ids[1], Some(&ids[0]), "second"))
        .await
        .unwrap();
    for reader in [&saver, &Saver::new()] {
        let got = reader.get_tuple(&st, "r", "", None).await.unwrap().unwrap();
        assert_eq!(got.checkpoint_id, ids[1]);
        assert_eq!(
            got.channel_values,
            Some(vec![("v".into(), typed("second"))])
        );
        assert_eq!(got.writes.len(), 1);
    }
}

#[tokio::test]
async fn a_checkpoint_put_again_while_writes_are_in_flight_wins() {
    let (st, saver) = (slow_store(), Saver::new());
    let id = uuid6_like(1);
    saver
        .put(&st, cp("p", "", &id, None, "first"))
        .await
        .unwrap();
    // The second put meets writes in flight: it must not become a batch copy ranking below the first.
    let (a, b) = futures::join!(
        saver.put_writes(&st, writes("p", &id, "x", &[("ch", 0, "w")])),
        saver.put(&st, cp("p", "", &id, None, "second")),
    );
    a.unwrap();
    b.unwrap();
    for reader in [&saver, &Saver::new()] {
        let got = reader.get_tuple(&st, "p", "", None).await.unwrap().unwrap();
        assert_eq!(
            got.channel_values,
            Some(vec![("v".into(), typed("second"))])
        );
        assert_eq!(got.writes.len(), 1);
    }
}

#[tokio::test]
async fn latest_lookup_reads_past_a_short_first_page() {
    // Embedded stores ask for a first page of a few summaries: a checkpoint with more write steps after
    // it than that page holds must still come back whole, as it does with the network's page of 20.
    for round_trips in [true, false] {
        let st = store();
        let saver = Saver::with_options(SaverOptions {
            round_trips,
            ..SaverOptions::default()
        });
        let (c1, c2) = (uuid6_like(1), uuid6_like(2));
        saver.put(&st, cp("t", "", &c1, None, "one")).await.unwrap();
        for task in ["a", "b", "c"] {
            saver
                .put_writes(&st, writes("t", &c1, task, &[("ch", 0, task)]))
                .await
                .unwrap();
        }
        saver
            .put(&st, cp("t", "", &c2, Some(&c1), "two"))
            .await
            .unwrap();
        let tasks: Vec<String> = (0..30).map(|i| format!("task-{i:02}")).collect();
        for task in &tasks {
            saver
                .put_writes(&st, writes("t", &c2, task, &[("ch", 0, task)]))
                .await
                .unwrap();
        }
        // A reader with nothing cached, as another process would be.
        for reader in [
            &saver,
            &Saver::with_options(SaverOptions {
                round_trips,
                ..SaverOptions::default()
            }),
        ] {
            let rec = reader.get_tuple(&st, "t", "", None).await.unwrap().unwrap();
            assert_eq!(rec.checkpoint_id, c2, "round_trips={round_trips}");
            assert_eq!(rec.parent_checkpoint_id.as_deref(), Some(c1.as_str()));
            let got: Vec<&str> = rec.writes.iter().map(|w| w.task_id.as_str()).collect();
            assert_eq!(got, tasks.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}

/// A checkpoint stored in a batch in one generation, and a write of it put after the thread moved on (in
/// the next generation, its own step): a listing, and a saver that wrote nothing, read the checkpoint
/// with that write.
#[tokio::test]
async fn a_listing_joins_a_batched_checkpoint_and_its_write_in_the_next_generation() {
    let cfg = StoreConfig {
        max_steps_per_session: 3,
        ..StoreConfig::default()
    };
    let st = crate::store::testing::Wrapped {
        put_delay: std::time::Duration::from_millis(3),
        ..crate::store::testing::Wrapped::new(SqliteStore::memory(cfg).unwrap(), true)
    };
    let saver = Saver::new();
    let ids: Vec<String> = (1..=3).map(uuid6_like).collect();
    saver
        .put(&st, cp("t", "", &ids[0], None, "a"))
        .await
        .unwrap();
    // Writes of the first checkpoint and the second checkpoint in flight at once: one batch step.
    let tasks: Vec<String> = (0..4).map(|i| format!("task{i}")).collect();
    writes_and_put_in_flight(
        &st,
        &saver,
        &ids[0],
        &tasks,
        cp("t", "", &ids[1], Some(&ids[0]), "b"),
    )
    .await;
    let first = saver.resolve(&st, "t", false).await.unwrap().unwrap();
    let steps = steps_of(&st, &saver, "t").await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps.iter().any(|s| s.0 == StepKind::Batch), "{steps:?}");
    // The third checkpoint fills the session; a late write of the second moves the thread on.
    saver
        .put(&st, cp("t", "", &ids[2], Some(&ids[1]), "c"))
        .await
        .unwrap();
    saver
        .put_writes(&st, writes("t", &ids[1], "late", &[("ch", 0, "late")]))
        .await
        .unwrap();
    let now = saver.resolve(&st, "t", false).await.unwrap().unwrap();
    assert_ne!(now, first, "the thread moved on");
    for reader in [&saver, &Saver::new()] {
        let all = reader.all_records(&st, "t").await.unwrap();
        let listed: Vec<(&str, Vec<&str>)> = all
            .iter()
            .map(|r| {
                let mut tasks: Vec<&str> = r.writes.iter().map(|w| w.task_id.as_str()).collect();
                tasks.sort();
                (r.checkpoint_id.as_str(), tasks)
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                (ids[2].as_str(), vec![]),
                (ids[1].as_str(), vec!["late"]),
                (ids[0].as_str(), vec!["task0", "task1", "task2", "task3"]),
            ]
        );
        let by_id = reader
            .get_tuple(&st, "t", "", Some(&ids[1]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_id.writes.len(), 1);
    }
}
