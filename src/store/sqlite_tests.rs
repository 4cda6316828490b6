use super::*;
use crate::model::*;
use crate::store::conformance::{conformance, put, session_with_invocation, sref};

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
