//! Embedded-backend behaviour beyond the shared conformance suite: durability across
//! reopen, log rewrites, auto-compaction and concurrent group commit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capstan_store::embedded::{EmbeddedStore, Options};
use capstan_store::{Datastore, Error, EventType, Store};
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn log_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("store.log")).unwrap().len()
}

#[tokio::test]
async fn reopen_keeps_state_revision_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (r1, r2, r3);
    {
        let s = EmbeddedStore::open(dir.path(), common::test_options())
            .await
            .unwrap();
        r1 = s.create("/a", b("1")).await.unwrap();
        r2 = s.update("/a", b("2"), r1).await.unwrap();
        s.create("/b", b("b")).await.unwrap();
        r3 = s.delete("/b", None).await.unwrap().0;
    }
    let s = EmbeddedStore::open(dir.path(), common::test_options())
        .await
        .unwrap();
    assert_eq!(s.current_revision().await.unwrap(), r3);
    let a = s.get("/a").await.unwrap().unwrap();
    assert_eq!(
        (a.value, a.create_revision, a.mod_revision),
        (b("2"), r1, r2)
    );
    assert_eq!(s.get("/b").await.unwrap(), None);
    // History survives: a watch from the first revision replays everything.
    let mut w = s.watch("/", r1).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let group = w.next().await.unwrap().unwrap();
        kinds.push(group[0].kind);
    }
    assert_eq!(
        kinds,
        vec![
            EventType::Put,
            EventType::Put,
            EventType::Put,
            EventType::Delete
        ]
    );
    // Writes continue from the recovered revision.
    assert_eq!(s.create("/c", b("c")).await.unwrap(), r3 + 1);
}

#[tokio::test]
async fn open_via_datastore_uses_data_dir_db() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Datastore::parse(None, dir.path()).unwrap();
    let s = capstan_store::open(&ds).await.unwrap();
    s.create("/x", b("x")).await.unwrap();
    s.health().await.unwrap();
    assert!(dir.path().join("db").join("store.log").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rewrite_shrinks_and_preserves_data() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rewrite_min_bytes: 64 << 10,
        rewrite_ratio: 4,
        ..common::test_options()
    };
    let value = Bytes::from(vec![b'v'; 1000]);
    let mut last = 0;
    {
        let s = EmbeddedStore::open(dir.path(), options.clone())
            .await
            .unwrap();
        let mut rev = s.create("/hot", value.clone()).await.unwrap();
        s.create("/cold", b("cold")).await.unwrap();
        for i in 0..400 {
            rev = s.update("/hot", value.clone(), rev).await.unwrap();
            if i % 50 == 0 {
                s.compact(rev).await.unwrap();
            }
        }
        last = last.max(rev);
        // Without rewrites the log would hold ~400 KB.
        assert!(
            log_len(dir.path()) < 200 << 10,
            "log {}",
            log_len(dir.path())
        );
    }
    let s = EmbeddedStore::open(dir.path(), options).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), last);
    assert_eq!(s.get("/hot").await.unwrap().unwrap().mod_revision, last);
    assert_eq!(s.get("/cold").await.unwrap().unwrap().value, b("cold"));
    assert!(s.compact_revision() > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_compaction_keeps_retention_window() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        compaction_interval: Duration::from_millis(50),
        retention: Duration::from_millis(300),
        retention_revisions: 5,
        ..Options::default()
    };
    let s = EmbeddedStore::open(dir.path(), options).await.unwrap();
    let mut rev = s.create("/k", b("0")).await.unwrap();
    let first = rev;
    for _ in 0..20 {
        rev = s.update("/k", b("v"), rev).await.unwrap();
        // Never more than `retention_revisions` behind.
        assert!(s.compact_revision() <= (rev - 5).max(0));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Everything older than the window may go, but the last 5 revisions stay.
    let compacted = s.compact_revision();
    assert_eq!(compacted, rev - 5);
    assert!(matches!(
        s.list("/", Some(first), None, 0).await,
        Err(Error::Compacted { .. })
    ));
    assert!(s.list("/", Some(rev - 5), None, 0).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_has_one_winner_per_revision() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(dir.path(), common::test_options())
            .await
            .unwrap(),
    );
    let r0 = s.create("/counter", b("0")).await.unwrap();
    // 32 tasks race to update from the same revision: exactly one wins.
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.update("/counter", b(&i.to_string()), r0).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict { current: Some(cur) }) => assert_eq!(cur.mod_revision, r0 + 1),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(s.current_revision().await.unwrap(), r0 + 1);
}

#[tokio::test]
async fn store_drop_ends_watches() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path(), common::test_options())
        .await
        .unwrap();
    let mut w = s.watch("/", 1).await.unwrap();
    drop(s);
    match w.next().await {
        Some(Err(Error::Unavailable(_))) => {}
        other => panic!("want Unavailable, got {other:?}"),
    }
    assert!(w.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        watch_buffer: 2,
        ..common::test_options()
    };
    let s = EmbeddedStore::open(dir.path(), options).await.unwrap();
    let from = s.current_revision().await.unwrap() + 1;
    let mut w = s.watch("/lag/", from).await.unwrap();
    for i in 0..50 {
        s.create(&format!("/lag/{i:02}"), b("v")).await.unwrap();
        s.create(&format!("/other/{i:02}"), b("v")).await.unwrap();
    }
    let mut keys = Vec::new();
    while keys.len() < 50 {
        let group = w.next().await.unwrap().unwrap();
        keys.extend(group.into_iter().map(|e| e.kv.key));
    }
    let want: Vec<String> = (0..50).map(|i| format!("/lag/{i:02}")).collect();
    assert_eq!(keys, want);
    // A lagging watcher whose history was compacted away is told so.
    let mut w = s
        .watch("/lag/", s.current_revision().await.unwrap() + 1)
        .await
        .unwrap();
    let mut rev = 0;
    for i in 0..10 {
        rev = s.create(&format!("/lag/x{i}"), b("v")).await.unwrap();
    }
    s.compact(rev).await.unwrap();
    match w.next().await {
        Some(Err(Error::Compacted { compact_revision })) => assert_eq!(compact_revision, rev),
        other => panic!("want Compacted, got {other:?}"),
    }
}
