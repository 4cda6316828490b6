use super::*;
use crate::model::*;
use crate::store::conformance::{conformance, first_page, put, session_with_invocation, sref};

// Every store's behaviour, here on an in-memory SQLite database (the file store runs the same SQL).
conformance!(|cfg| Box::new(SqliteStore::memory(cfg).unwrap()));

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

#[tokio::test]
async fn version_2_files_move_to_microseconds_and_unreadable_times_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        // A file as version 2 wrote it: times in milliseconds, one step of year 10000 (version 2 took it).
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO sessions (seq, id, arn, status, created_at, last_updated_at, metadata)
               VALUES (1, '0a1b2c3d-0000-4000-8000-00000000abcd',
                       'arn:aws:bedrock:us-east-1:000000000000:session/0a1b2c3d-0000-4000-8000-00000000abcd',
                       'ACTIVE', 1735689600123, 1735689600456, '{}');
             INSERT INTO invocations (seq, session_seq, id, created_at)
               VALUES (1, 1, '0a1b2c3d-0000-4000-8000-0000000000a1', 1735689600123);",
        )
        .unwrap();
        let payload = encode_payload(&crate::store::conformance::text("x"));
        for (seq, time) in [(1, 1_735_689_600_789_i64), (2, 253_402_300_800_000)] {
            conn.execute(
                "INSERT INTO steps (seq, session_seq, invocation_seq, id, step_time, payload) VALUES (?1, 1, 1, ?2, ?3, ?4)",
                params![seq, format!("0a1b2c3d-0000-4000-8000-00000000000{seq}"), time, payload],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path, StoreConfig::default()).unwrap();
    let s = store
        .get_session(sref("0a1b2c3d-0000-4000-8000-00000000abcd"))
        .await
        .unwrap();
    assert_eq!(
        (s.created_at, s.last_updated_at),
        (1_735_689_600_123_000, 1_735_689_600_456_000)
    );
    let page = first_page(&store, &s).await;
    let times: Vec<i64> = page.items.iter().map(|x| x.time).collect();
    assert_eq!(times, vec![253_402_300_799_999_000, 1_735_689_600_789_000]);
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
