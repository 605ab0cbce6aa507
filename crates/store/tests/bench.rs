//! Throughput benchmarks (ignored by default; run with
//! `cargo test -p capstan-store --release --test bench -- --ignored --nocapture`).
//! Prints creates/s at 1/16/64 concurrent writers for the embedded store (and for a
//! private etcd when installed) and the fan-out time for 1000 watchers on one prefix.
//! `CAPSTAN_BENCH_DIR` picks the directory for the embedded store (default: a temp dir).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_store::embedded::EmbeddedStore;
use capstan_store::Store;
use futures::StreamExt;

async fn creates_per_sec(store: Arc<dyn Store>, writers: usize, total: usize, tag: &str) -> f64 {
    let value = Bytes::from(vec![b'x'; 512]);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                for i in 0..total / writers {
                    let key = format!("/bench/{tag}/{writers}/{w}/{i}");
                    store.create(&key, value.clone()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (total / writers * writers) as f64 / start.elapsed().as_secs_f64()
}

async fn run_writers(name: &str, store: Arc<dyn Store>) {
    for (writers, total) in [(1, 500), (16, 4000), (64, 12800)] {
        let rate = creates_per_sec(store.clone(), writers, total, name).await;
        println!("{name}: {writers:>2} concurrent writers: {rate:>8.0} creates/s");
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var("CAPSTAN_BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_creates() {
    let dir = bench_dir();
    let store = EmbeddedStore::open(dir.path(), common::test_options())
        .await
        .unwrap();
    run_writers("embedded", Arc::new(store)).await;
    if let Some(backend) = common::etcd().await {
        run_writers("etcd", backend.store.clone()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_watch_fanout() {
    let dir = bench_dir();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(dir.path(), common::test_options())
            .await
            .unwrap(),
    );
    let watchers = 1000;
    let events = 2000;
    let from = store.current_revision().await.unwrap() + 1;
    let mut handles = Vec::new();
    for _ in 0..watchers {
        let mut w = store.watch("/fan/", from).await.unwrap();
        handles.push(tokio::spawn(async move {
            let mut n = 0;
            while n < events {
                let batch = tokio::time::timeout(Duration::from_secs(60), w.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                n += batch.len();
            }
        }));
    }
    let start = Instant::now();
    futures::stream::iter(0..events)
        .for_each_concurrent(64, |i| {
            let store = store.clone();
            async move {
                store
                    .create(&format!("/fan/{i}"), Bytes::from_static(b"v"))
                    .await
                    .unwrap();
            }
        })
        .await;
    let written = start.elapsed();
    for h in handles {
        h.await.unwrap();
    }
    let delivered = start.elapsed();
    println!(
        "fan-out: {events} creates to {watchers} watchers: writes {written:?}, all delivered {delivered:?} ({:.0} event deliveries/s)",
        (events * watchers) as f64 / delivered.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn bench_reopen() {
    let dir = bench_dir();
    let keys = 50_000;
    {
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(dir.path(), common::test_options())
                .await
                .unwrap(),
        );
        let value = Bytes::from(vec![b'x'; 1024]);
        futures::stream::iter(0..keys)
            .for_each_concurrent(64, |i| {
                let store = store.clone();
                let value = value.clone();
                async move {
                    store.create(&format!("/reopen/{i}"), value).await.unwrap();
                }
            })
            .await;
    }
    let size = std::fs::metadata(dir.path().join("store.log"))
        .unwrap()
        .len();
    let start = Instant::now();
    let store = EmbeddedStore::open(dir.path(), common::test_options())
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(store.count("/reopen/").await.unwrap(), keys as i64);
    println!(
        "reopen: {keys} keys, {:.1} MiB log replayed in {elapsed:?}",
        size as f64 / (1 << 20) as f64
    );
}
