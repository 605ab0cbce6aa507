//! etcd-backend behaviour beyond the conformance suite: multiple endpoints, watch
//! resumption across an etcd restart, and errors when the cluster is down.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use capstan_store::{Datastore, Error};
use common::EtcdServer;
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_etcd_restart() {
    let Some(mut server) = EtcdServer::start() else {
        return;
    };
    // A second, dead endpoint in the list must not break anything.
    let endpoint = format!("{},127.0.0.1:1", server.endpoint());
    let ds = Datastore::parse(Some(&endpoint), Path::new("/unused")).unwrap();
    let s = capstan_store::open(&ds).await.unwrap();
    server.wait_ready(&*s).await;
    let r1 = s.create("/rs/a", b("1")).await.unwrap();
    let mut w = s.watch("/rs/", r1).await.unwrap();
    let first = w.next().await.unwrap().unwrap();
    assert_eq!(first[0].kv.mod_revision, r1);
    server.restart();
    server.wait_ready(&*s).await;
    let r2 = s.create("/rs/b", b("2")).await.unwrap();
    let r3 = s.create("/rs/c", b("3")).await.unwrap();
    let mut revs = Vec::new();
    while revs.len() < 2 {
        let group = tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .expect("watch did not resume")
            .unwrap()
            .unwrap();
        revs.extend(group.iter().map(|e| e.kv.mod_revision));
    }
    assert_eq!(revs, vec![r2, r3]);
}

#[tokio::test]
async fn unreachable_cluster_is_unavailable() {
    if !Path::new(common::ETCD_BIN).exists() {
        eprintln!("NOTICE: {} not found; skipping", common::ETCD_BIN);
        return;
    }
    let ds = Datastore::parse(Some("etcd://127.0.0.1:1"), Path::new("/unused")).unwrap();
    let s = capstan_store::open(&ds).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(20), s.health()).await {
        Ok(Err(Error::Unavailable(_))) => {}
        other => panic!("want Unavailable, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(20), s.get("/x")).await {
        Ok(Err(Error::Unavailable(_))) => {}
        other => panic!("want Unavailable, got {other:?}"),
    }
}
