//! One conformance suite for every backend: each case in `cases` runs against the
//! embedded store and against a private etcd (skipped with a notice when etcd is not
//! installed).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capstan_store::{Error, Event, EventType, Store, WatchStream};
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Reads events from `w` until `n` have arrived (panics after 20 s).
async fn take_events(w: &mut WatchStream, n: usize) -> Vec<Vec<Event>> {
    let mut groups = Vec::new();
    let mut count = 0;
    while count < n {
        let item = tokio::time::timeout(Duration::from_secs(20), w.next())
            .await
            .expect("watch timed out")
            .expect("watch ended")
            .expect("watch error");
        count += item.len();
        groups.push(item);
    }
    groups
}

/// Asserts nothing more arrives for a short while.
async fn assert_quiet(w: &mut WatchStream) {
    let got = tokio::time::timeout(Duration::from_millis(300), w.next()).await;
    assert!(got.is_err(), "unexpected watch item: {got:?}");
}

mod cases {
    use super::*;

    pub async fn create_get_exists(s: Arc<dyn Store>) {
        let rev0 = s.current_revision().await.unwrap();
        assert!(rev0 >= 1);
        assert_eq!(s.get("/t/a").await.unwrap(), None);
        let r = s.create("/t/a", b("1")).await.unwrap();
        assert_eq!(r, rev0 + 1);
        let kv = s.get("/t/a").await.unwrap().unwrap();
        assert_eq!(kv.key, "/t/a");
        assert_eq!(kv.value, b("1"));
        assert_eq!((kv.create_revision, kv.mod_revision), (r, r));
        assert!(matches!(
            s.create("/t/a", b("2")).await,
            Err(Error::KeyExists)
        ));
        assert_eq!(s.current_revision().await.unwrap(), r);
        assert_eq!(s.get("/t/a").await.unwrap().unwrap().value, b("1"));
        assert!(matches!(s.create("", b("x")).await, Err(Error::Other(_))));
        assert_eq!(s.current_revision().await.unwrap(), r);
        s.health().await.unwrap();
    }

    pub async fn revisions_strictly_increase(s: Arc<dyn Store>) {
        let r1 = s.create("/r/a", b("1")).await.unwrap();
        let r2 = s.update("/r/a", b("2"), r1).await.unwrap();
        let r3 = s.create("/r/b", b("1")).await.unwrap();
        let (r4, _) = s.delete("/r/a", None).await.unwrap();
        assert_eq!(vec![r2, r3, r4], vec![r1 + 1, r1 + 2, r1 + 3]);
        assert_eq!(s.current_revision().await.unwrap(), r4);
    }

    pub async fn update_cas(s: Arc<dyn Store>) {
        let r1 = s.create("/u/a", b("1")).await.unwrap();
        let r2 = s.update("/u/a", b("2"), r1).await.unwrap();
        assert!(r2 > r1);
        let kv = s.get("/u/a").await.unwrap().unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2));
        assert_eq!(kv.value, b("2"));
        match s.update("/u/a", b("3"), r1).await {
            Err(Error::Conflict { current: Some(cur) }) => assert_eq!(cur, kv),
            other => panic!("want Conflict, got {other:?}"),
        }
        match s.update("/u/a", b("3"), 0).await {
            Err(Error::Conflict { current: Some(cur) }) => assert_eq!(cur, kv),
            other => panic!("want Conflict, got {other:?}"),
        }
        assert!(matches!(
            s.update("/u/missing", b("x"), r1).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            s.update("/u/missing", b("x"), 0).await,
            Err(Error::NotFound)
        ));
        assert_eq!(s.get("/u/missing").await.unwrap(), None);
        assert_eq!(s.current_revision().await.unwrap(), r2);
    }

    pub async fn delete_cas(s: Arc<dyn Store>) {
        let r1 = s.create("/d/a", b("1")).await.unwrap();
        let r2 = s.update("/d/a", b("2"), r1).await.unwrap();
        match s.delete("/d/a", Some(r1)).await {
            Err(Error::Conflict { current: Some(cur) }) => assert_eq!(cur.mod_revision, r2),
            other => panic!("want Conflict, got {other:?}"),
        }
        let (r3, old) = s.delete("/d/a", Some(r2)).await.unwrap();
        assert_eq!(r3, r2 + 1);
        assert_eq!(old.value, b("2"));
        assert_eq!((old.create_revision, old.mod_revision), (r1, r2));
        assert_eq!(s.get("/d/a").await.unwrap(), None);
        assert!(matches!(s.delete("/d/a", None).await, Err(Error::NotFound)));
        assert!(matches!(
            s.delete("/d/a", Some(r2)).await,
            Err(Error::NotFound)
        ));
        s.create("/d/b", b("x")).await.unwrap();
        let (_, old) = s.delete("/d/b", None).await.unwrap();
        assert_eq!(old.value, b("x"));
        // A recreated key gets a fresh create revision.
        let r = s.create("/d/a", b("again")).await.unwrap();
        assert_eq!(s.get("/d/a").await.unwrap().unwrap().create_revision, r);
    }

    pub async fn list_at_revision(s: Arc<dyn Store>) {
        s.create("/l/a", b("a1")).await.unwrap();
        let rb = s.create("/l/b", b("b1")).await.unwrap();
        s.create("/lz", b("outside")).await.unwrap();
        let ra = s.get("/l/a").await.unwrap().unwrap().mod_revision;
        let mid = s.current_revision().await.unwrap();
        s.update("/l/a", b("a2"), ra).await.unwrap();
        s.delete("/l/b", Some(rb)).await.unwrap();
        s.create("/l/c", b("c1")).await.unwrap();
        let show = |r: &capstan_store::ListResult| -> Vec<String> {
            r.kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
                .collect()
        };
        let past = s.list("/l/", Some(mid), None, 0).await.unwrap();
        assert_eq!(show(&past), vec!["/l/a=a1", "/l/b=b1"]);
        assert_eq!(past.revision, mid);
        assert!(!past.more);
        let now = s.list("/l/", None, None, 0).await.unwrap();
        assert_eq!(show(&now), vec!["/l/a=a2", "/l/c=c1"]);
        assert_eq!(now.revision, s.current_revision().await.unwrap());
        let at_rb = s.list("/l/", Some(rb), None, 0).await.unwrap();
        assert_eq!(show(&at_rb), vec!["/l/a=a1", "/l/b=b1"]);
        assert!(matches!(
            s.list("/l/", Some(now.revision + 1000), None, 0).await,
            Err(Error::FutureRevision)
        ));
        let all = s.list("", None, None, 0).await.unwrap();
        assert_eq!(all.kvs.len(), 3);
        assert_eq!(s.count("/l/").await.unwrap(), 2);
        assert_eq!(s.count("/l").await.unwrap(), 3);
        assert_eq!(s.count("").await.unwrap(), 3);
        assert_eq!(s.count("/nothing/").await.unwrap(), 0);
    }

    pub async fn pagination(s: Arc<dyn Store>) {
        for i in 0..25 {
            s.create(&format!("/p/{i:02}"), b("v")).await.unwrap();
        }
        s.create("/pz", b("outside")).await.unwrap();
        let rev = s.current_revision().await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let page = s
                .list("/p/", Some(rev), after.as_deref(), 10)
                .await
                .unwrap();
            assert_eq!(page.revision, rev);
            pages.push((page.kvs.len(), page.more));
            seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
            // Writes between pages do not show up in a list pinned to `rev`.
            s.create(&format!("/p/{:02}x", pages.len()), b("new"))
                .await
                .unwrap();
            if !page.more {
                break;
            }
            after = page.kvs.last().map(|kv| kv.key.clone());
        }
        assert_eq!(pages, vec![(10, true), (10, true), (5, false)]);
        let want: Vec<String> = (0..25).map(|i| format!("/p/{i:02}")).collect();
        assert_eq!(seen, want);
        let exact = s.list("/p/", Some(rev), None, 25).await.unwrap();
        assert_eq!((exact.kvs.len(), exact.more), (25, false));
        let tail = s.list("/p/", Some(rev), Some("/p/23"), 0).await.unwrap();
        assert_eq!(tail.kvs.len(), 1);
    }

    pub async fn large_range(s: Arc<dyn Store>) {
        // About 6 MiB in one response: above gRPC's default 4 MiB decode limit.
        let value = Bytes::from(vec![b'x'; 1200]);
        let keys: Vec<String> = (0..5000).map(|i| format!("/big/{i:05}")).collect();
        futures::stream::iter(keys.iter())
            .for_each_concurrent(64, |k| {
                let s = s.clone();
                let value = value.clone();
                async move {
                    s.create(k, value).await.unwrap();
                }
            })
            .await;
        let all = s.list("/big/", None, None, 0).await.unwrap();
        assert_eq!(all.kvs.len(), 5000);
        assert!(!all.more);
        assert_eq!(s.count("/big/").await.unwrap(), 5000);
    }

    pub async fn watch_from_revision(s: Arc<dyn Store>) {
        let r1 = s.create("/w/a", b("1")).await.unwrap();
        let r2 = s.update("/w/a", b("2"), r1).await.unwrap();
        s.create("/other/x", b("x")).await.unwrap();
        let (r3, _) = s.delete("/w/a", Some(r2)).await.unwrap();
        let mut w = s.watch("/w/", r2).await.unwrap();
        let groups = take_events(&mut w, 2).await;
        assert_eq!(groups.len(), 2);
        let put = &groups[0][0];
        assert_eq!(put.kind, EventType::Put);
        assert_eq!((put.kv.mod_revision, put.kv.create_revision), (r2, r1));
        assert_eq!(put.kv.value, b("2"));
        assert_eq!(put.prev.as_ref().unwrap().value, b("1"));
        let del = &groups[1][0];
        assert_eq!(del.kind, EventType::Delete);
        assert_eq!(del.kv.key, "/w/a");
        assert_eq!(del.kv.mod_revision, r3);
        assert_eq!(del.kv.create_revision, r1);
        assert_eq!(del.kv.value, b("2"));
        assert_eq!(del.prev.as_ref().unwrap().mod_revision, r2);
        // Live events follow; other prefixes are filtered out.
        s.create("/other/y", b("y")).await.unwrap();
        let r4 = s.create("/w/b", b("b")).await.unwrap();
        let live = take_events(&mut w, 1).await;
        assert_eq!(live[0][0].kv.mod_revision, r4);
        assert_eq!(live[0][0].kind, EventType::Put);
        assert!(live[0][0].prev.is_none());
        assert_quiet(&mut w).await;
        // A watch from a future revision waits for it.
        let now = s.current_revision().await.unwrap();
        let mut fw = s.watch("/w/", now + 2).await.unwrap();
        s.create("/w/c", b("c")).await.unwrap();
        s.create("/w/d", b("d")).await.unwrap();
        let got = take_events(&mut fw, 1).await;
        assert_eq!(got[0][0].kv.key, "/w/d");
    }

    pub async fn watch_ordering_concurrent(s: Arc<dyn Store>) {
        let start = s.current_revision().await.unwrap() + 1;
        let mut early = s.watch("/c/", start).await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        let key = format!("/c/{w}/{i}");
                        let r = s.create(&key, b("v")).await.unwrap();
                        if i % 3 == 0 {
                            s.update(&key, b("v2"), r).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        let mut late = s.watch("/c/", start).await.unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let total = 8 * (25 + 9);
        let a = take_events(&mut early, total).await;
        let c = take_events(&mut late, total).await;
        let revs = |groups: &[Vec<Event>]| -> Vec<i64> {
            groups
                .iter()
                .flat_map(|g| g.iter().map(|e| e.kv.mod_revision))
                .collect()
        };
        let ra = revs(&a);
        assert!(
            ra.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing"
        );
        assert_eq!(ra, revs(&c));
        for g in &a {
            assert!(g.iter().all(|e| e.kv.mod_revision == g[0].kv.mod_revision));
        }
        let keys: BTreeSet<String> = a.iter().flatten().map(|e| e.kv.key.clone()).collect();
        assert_eq!(keys.len(), 200);
        assert_quiet(&mut early).await;
    }

    pub async fn many_watchers(s: Arc<dyn Store>) {
        let start = s.current_revision().await.unwrap() + 1;
        let mut watchers = Vec::new();
        for _ in 0..100 {
            watchers.push(s.watch("/m/", start).await.unwrap());
        }
        for i in 0..20 {
            s.create(&format!("/m/{i}"), b("v")).await.unwrap();
        }
        for w in &mut watchers {
            let got = take_events(w, 20).await;
            assert_eq!(got.len(), 20);
            assert_eq!(got[0][0].kv.mod_revision, start);
        }
    }

    pub async fn compaction(s: Arc<dyn Store>) {
        let r1 = s.create("/k/a", b("1")).await.unwrap();
        let r2 = s.update("/k/a", b("2"), r1).await.unwrap();
        let r3 = s.update("/k/a", b("3"), r2).await.unwrap();
        s.compact(r2).await.unwrap();
        match s.list("/k/", Some(r1), None, 0).await {
            Err(Error::Compacted { compact_revision }) => assert_eq!(compact_revision, r2),
            other => panic!("want Compacted, got {other:?}"),
        }
        let at = s.list("/k/", Some(r2), None, 0).await.unwrap();
        assert_eq!(at.kvs[0].value, b("2"));
        let mut w = s.watch("/k/", r1).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Err(Error::Compacted { compact_revision }))) => {
                assert_eq!(compact_revision, r2)
            }
            other => panic!("want Compacted, got {other:?}"),
        }
        let mut w = s.watch("/k/", r3).await.unwrap();
        let got = take_events(&mut w, 1).await;
        assert_eq!(got[0][0].kv.value, b("3"));
        // Compacting again (or to an older revision) is a no-op.
        s.compact(r2).await.unwrap();
        s.compact(r1).await.unwrap();
        assert!(matches!(
            s.compact(r3 + 1000).await,
            Err(Error::FutureRevision)
        ));
        assert_eq!(s.get("/k/a").await.unwrap().unwrap().value, b("3"));
    }

    pub async fn binary_values(s: Arc<dyn Store>) {
        let value = Bytes::from((0..=255u8).collect::<Vec<_>>());
        s.create("/bin/a", value.clone()).await.unwrap();
        assert_eq!(s.get("/bin/a").await.unwrap().unwrap().value, value);
        s.create("/bin/empty", Bytes::new()).await.unwrap();
        assert_eq!(
            s.get("/bin/empty").await.unwrap().unwrap().value,
            Bytes::new()
        );
    }
}

macro_rules! conformance {
    ($backend:ident, $make:path, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(backend) = $make().await else { return };
                    super::cases::$case(backend.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($case:ident),* $(,)?) => {
        conformance!(embedded, crate::common::embedded, [$($case),*]);
        conformance!(etcd, crate::common::etcd, [$($case),*]);
    };
}

all_backends!(
    create_get_exists,
    revisions_strictly_increase,
    update_cas,
    delete_cas,
    list_at_revision,
    pagination,
    large_range,
    watch_from_revision,
    watch_ordering_concurrent,
    many_watchers,
    compaction,
    binary_values,
);
