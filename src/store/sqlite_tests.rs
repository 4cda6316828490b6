use super::*;
use crate::model::*;
use crate::store::conformance::{conformance, first_page, put, session_with_invocation, sref};

// Every store's behaviour, here on an in-memory SQLite database (the file store runs the same SQL).
conformance!(|cfg| Box::new(SqliteStore::memory(cfg).unwrap()), |cfg| {
    let store = SqliteStore::memory(cfg).unwrap();
    (Box::new(store.clone()), Arc::new(store))
});

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

/// A file as schema version `version` made it (its migrations only, in WAL mode), open for the caller's rows.
fn file_of_version(path: &Path, version: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!("PRAGMA user_version = {version}"))
        .unwrap();
    conn
}

#[tokio::test]
async fn version_2_files_move_to_microseconds_and_unreadable_times_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        // A file as version 2 wrote it: times in milliseconds, one step of year 10000 (version 2 took it).
        let conn = file_of_version(&path, 2);
        conn.execute_batch(
            "INSERT INTO sessions (seq, id, arn, status, created_at, last_updated_at, metadata)
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

// ---------------------------------------------------------------------------------------------
// Encryption at rest and erasure in the file (issue 16)

mod at_rest {
    use super::*;
    use crate::crypto::KeySource;
    use crate::error::ErrorCode;
    use crate::store::conformance::{KEY_A, create_req, keyring, rich, with_keys};
    use std::sync::Arc;

    /// The bytes of the database file, its WAL and its shared-memory index (those that exist).
    fn files(path: &Path) -> Vec<(String, Vec<u8>)> {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let p = format!("{}{suffix}", path.display());
                std::fs::read(&p).ok().map(|b| (p, b))
            })
            .collect()
    }

    /// Which of `needles` occur in the store's files.
    fn found(path: &Path, needles: &[&[u8]]) -> Vec<String> {
        let mut hits = Vec::new();
        for (name, bytes) in files(path) {
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == *n) {
                    hits.push(format!("{} in {name}", String::from_utf8_lossy(&n[..16])));
                }
            }
        }
        hits
    }

    struct Written {
        session: Session,
        invocation: String,
        step: String,
        payload: Payload,
    }

    const META: &str = "METADATA-PLAINTEXT-ana-lives-at-12-rue-des-lilas";
    const DESCRIPTION: &str = "DESCRIPTION-PLAINTEXT-turn-one-of-the-shoe-hunt";
    const TEXT: &str = "STEP-PLAINTEXT-she-wants-size-42-trail-shoes-in-blue ";

    fn image() -> Vec<u8> {
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// Markers of the plaintext written by [`write`]: text and slices of the image.
    fn needles(img: &[u8]) -> Vec<&[u8]> {
        vec![
            META.as_bytes(),
            DESCRIPTION.as_bytes(),
            TEXT.as_bytes(),
            &img[1000..1040],
            &img[150_000..150_040],
        ]
    }

    async fn write(store: &SqliteStore, key: Option<&str>) -> Written {
        let session = store
            .create_session(CreateSession {
                encryption_key_arn: key.map(String::from),
                metadata: BTreeMap::from([("address".into(), META.into())]),
                tags: BTreeMap::from([("app".into(), "shoes".into())]),
            })
            .await
            .unwrap();
        let invocation = store
            .create_invocation(CreateInvocation {
                session: sref(&session.id),
                invocation_id: None,
                description: Some(DESCRIPTION.into()),
            })
            .await
            .unwrap()
            .invocation_id;
        let payload = rich(&TEXT.repeat(400), &image());
        let step = store
            .put_invocation_step(PutStep {
                session: sref(&session.id),
                invocation_id: invocation.clone(),
                step_id: None,
                time: 1,
                payload: payload.clone(),
            })
            .await
            .unwrap();
        Written {
            session,
            invocation,
            step,
            payload,
        }
    }

    async fn read_step(store: &SqliteStore, w: &Written) -> Result<Step> {
        store
            .get_invocation_step(GetStep {
                session: sref(&w.session.id),
                invocation_id: w.invocation.clone(),
                step_id: w.step.clone(),
            })
            .await
    }

    async fn check_intact(store: &SqliteStore, w: &Written) {
        let s = store.get_session(sref(&w.session.id)).await.unwrap();
        assert_eq!(s.metadata["address"], META);
        let invs = store
            .list_invocations(sref(&w.session.id), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(invs.items[0].description.as_deref(), Some(DESCRIPTION));
        assert_eq!(read_step(store, w).await.unwrap().payload, w.payload);
    }

    /// Copies the WAL into the file and truncates it.
    fn checkpoint(store: &SqliteStore) {
        let conn = store.inner.writer.lock().unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }

    fn open(path: &Path, source: Option<Arc<dyn KeySource>>) -> SqliteStore {
        SqliteStore::open(
            path,
            StoreConfig {
                key_source: source,
                ..StoreConfig::default()
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_encrypted_file_holds_no_plaintext_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let ring = keyring(true);
        let img = image();
        let store = open(&path, Some(ring.clone()));
        let w = write(&store, None).await;
        // While it is open (the WAL holds the writes) and after a checkpoint into the file.
        assert_eq!(found(&path, &needles(&img)), Vec::<String>::new());
        check_intact(&store, &w).await;
        checkpoint(&store);
        assert_eq!(found(&path, &needles(&img)), Vec::<String>::new());
        // The control: the same writes in a clear session are in the files.
        let clear_dir = tempfile::tempdir().unwrap();
        let clear_path = clear_dir.path().join("s.db");
        let clear = open(&clear_path, None);
        write(&clear, None).await;
        assert_eq!(found(&clear_path, &needles(&img)).len(), 5);
        // Another handle with the same keyring reads it all back.
        drop(store);
        let again = open(&path, Some(ring.clone()));
        check_intact(&again, &w).await;
        assert_eq!(found(&path, &needles(&img)), Vec::<String>::new());
    }

    #[tokio::test]
    async fn missing_or_wrong_key_material_is_a_clear_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let w = write(&open(&path, Some(keyring(true))), None).await;
        for (source, why) in [
            (None, "opened without key material"),
            (
                Some(crate::store::conformance::keyring_without_a()),
                "is not in keyring",
            ),
        ] {
            let store = open(&path, source);
            let e = store.get_session(sref(&w.session.id)).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::AccessDenied, "{e}");
            assert!(
                e.message.contains(KEY_A) && e.message.contains(why),
                "{}",
                e.message
            );
            assert_eq!(
                read_step(&store, &w).await.unwrap_err().code,
                ErrorCode::AccessDenied
            );
            let writes = [
                store
                    .put_invocation_step(PutStep {
                        session: sref(&w.session.id),
                        invocation_id: w.invocation.clone(),
                        step_id: None,
                        time: 2,
                        payload: crate::store::conformance::text("more"),
                    })
                    .await
                    .map(|_| ()),
                store
                    .update_session(UpdateSession {
                        session: sref(&w.session.id),
                        metadata: Some(BTreeMap::new()),
                    })
                    .await
                    .map(|_| ()),
                store
                    .create_invocation(CreateInvocation {
                        session: sref(&w.session.id),
                        invocation_id: None,
                        description: None,
                    })
                    .await
                    .map(|_| ()),
                store.end_session(sref(&w.session.id)).await.map(|_| ()),
            ];
            for (i, r) in writes.into_iter().enumerate() {
                assert_eq!(r.unwrap_err().code, ErrorCode::AccessDenied, "write {i}");
            }
            // Nothing changed: one step, one invocation, still ACTIVE (read with the key).
            let summaries = first_page(&store, &w.session).await;
            assert_eq!(summaries.items.len(), 1);
        }
        // A keyring that names the key with other material: it does not hold the version that wrapped the key.
        let store = open(&path, Some(keyring(true)));
        let e = store.get_session(sref(&w.session.id)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(
            e.message.contains(KEY_A) && e.message.contains("does not hold"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn altered_or_moved_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let ring = keyring(true);
        let store = open(&path, Some(ring.clone()));
        let a = write(&store, None).await;
        let b = write(&store, None).await;
        let sql = Connection::open(&path).unwrap();
        let payload_of = |step: &str| -> Vec<u8> {
            sql.query_row("SELECT payload FROM steps WHERE id = ?1", [step], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let set_payload = |step: &str, bytes: &[u8]| {
            sql.execute(
                "UPDATE steps SET payload = ?1 WHERE id = ?2",
                params![bytes, step],
            )
            .unwrap();
        };
        let original = payload_of(&a.step);
        // One byte altered.
        let mut altered = original.clone();
        altered[100] ^= 1;
        set_payload(&a.step, &altered);
        let e = read_step(&store, &a).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InternalServer);
        assert!(
            e.message.contains("does not open") && e.message.contains(&a.session.arn),
            "{}",
            e.message
        );
        set_payload(&a.step, &original);
        check_intact(&store, &a).await;
        // A's sealed step copied into B's row: refused there.
        set_payload(&b.step, &original);
        let e = read_step(&store, &b).await.unwrap_err();
        assert!(e.message.contains("does not open"), "{}", e.message);
        // A plaintext payload put in place of a sealed one: refused, not served.
        set_payload(
            &b.step,
            &encode_payload(&crate::store::conformance::text("forged")),
        );
        assert!(read_step(&store, &b).await.is_err());
        // Sealed metadata replaced by clear JSON.
        sql.execute(
            "UPDATE sessions SET metadata = '{\"address\":\"forged\"}' WHERE id = ?1",
            [&a.session.id],
        )
        .unwrap();
        let e = store.get_session(sref(&a.session.id)).await.unwrap_err();
        assert!(e.message.contains("stored in clear"), "{}", e.message);
        // B's wrapped key put in A's row: it does not unwrap under A's context (a fresh handle: no cached key).
        sql.execute(
            "UPDATE session_keys SET wrapped = (SELECT k.wrapped FROM session_keys k JOIN sessions s ON s.seq = k.session_seq WHERE s.id = ?1)
             WHERE session_seq = (SELECT seq FROM sessions WHERE id = ?2)",
            [&b.session.id, &a.session.id],
        )
        .unwrap();
        let fresh = open(&path, Some(ring));
        let e = read_step(&fresh, &a).await.unwrap_err();
        assert!(
            e.message.contains("encryption context") && e.message.contains(&a.session.arn),
            "{}",
            e.message
        );
    }

    /// Ends and deletes a session.
    async fn delete(store: &SqliteStore, s: &Session) {
        store.end_session(sref(&s.id)).await.unwrap();
        store.delete_session(sref(&s.id)).await.unwrap();
    }

    #[tokio::test]
    async fn delete_session_erases_from_the_file() {
        let img = image();
        for ring in [None, Some(keyring(true))] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let store = open(&path, ring.clone());
            let keep = store.create_session(create_req()).await.unwrap();
            let w = write(&store, None).await;
            let wrapped: Option<Vec<u8>> = store
                .inner
                .writer
                .lock()
                .unwrap()
                .query_row(
                    "SELECT k.wrapped FROM session_keys k JOIN sessions s ON s.seq = k.session_seq WHERE s.id = ?1",
                    [&w.session.id],
                    |r| r.get(0),
                )
                .optional()
                .unwrap();
            assert_eq!(wrapped.is_some(), ring.is_some());
            let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            checkpoint(&store);
            let before = size(&path);
            delete(&store, &w.session).await;
            // No plaintext (nor the wrapped key) left in the file, its WAL or its index; the space is given back.
            let mut all = needles(&img);
            if let Some(k) = &wrapped {
                all.push(k);
            }
            assert_eq!(found(&path, &all), Vec::<String>::new());
            assert!(size(&path) < before / 2, "{} then {}", before, size(&path));
            assert_eq!(size(&path.with_extension("db-wal")), 0);
            store.get_session(sref(&keep.id)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn retention_sweeps_erase_from_the_file_and_interrupted_erasures_finish_at_open() {
        let img = image();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let clock = Arc::new(crate::clock::ManualClock::new(1_700_000_000_000_000));
        let cfg = StoreConfig {
            retention: Some(std::time::Duration::from_secs(86_400)),
            clock: clock.clone(),
            ..with_keys(keyring(true))
        };
        let store = SqliteStore::open(&path, cfg.clone()).unwrap();
        let w = write(&store, None).await;
        clock.advance(86_400_000_000);
        assert_eq!(store.sweep().await.unwrap(), 1);
        assert_eq!(found(&path, &needles(&img)), Vec::<String>::new());
        let rows: i64 = store
            .inner
            .writer
            .lock()
            .unwrap()
            .query_row(
                "SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM steps) + (SELECT COUNT(*) FROM session_keys)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0);
        let _ = w;
        // A crash after the key was destroyed (the session marked ERASING), before the records went: the next
        // open finishes the erasure.
        let w = write(&store, None).await;
        {
            let conn = store.inner.writer.lock().unwrap();
            let tx = Tx::begin(&conn, "BEGIN IMMEDIATE").unwrap();
            let seq: i64 = tx
                .query_row(
                    "SELECT seq FROM sessions WHERE id = ?1",
                    [&w.session.id],
                    |r| r.get(0),
                )
                .unwrap();
            shred(&tx, seq).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(
            store
                .get_session(sref(&w.session.id))
                .await
                .unwrap_err()
                .code,
            ErrorCode::ResourceNotFound
        );
        drop(store);
        let reopened = SqliteStore::open(&path, cfg).unwrap();
        let steps: i64 = reopened
            .inner
            .writer
            .lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM steps", [], |r| r.get(0))
            .unwrap();
        assert_eq!(steps, 0);
        assert_eq!(found(&path, &needles(&img)), Vec::<String>::new());
    }

    #[tokio::test]
    async fn files_of_version_3_keep_their_clear_sessions_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // A file as version 3 made it (no auto_vacuum, no key table), then a clear session written by this version.
        drop(file_of_version(&path, 3));
        let old = write(&open(&path, None), None).await;
        let store = open(&path, Some(keyring(true)));
        check_intact(&store, &old).await;
        // The old session stays clear (its new records too); a new session is encrypted.
        let new = write(&store, None).await;
        check_intact(&store, &new).await;
        let auto_vacuum: i64 = store
            .inner
            .writer
            .lock()
            .unwrap()
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(auto_vacuum, 0, "an existing file keeps its setting");
        // Erasing still leaves no plaintext (secure_delete zeroes the freed pages) without a vacuum.
        delete(&store, &old.session).await;
        assert_eq!(found(&path, &needles(&image())), Vec::<String>::new());
        check_intact(&store, &new).await;
    }
}
