//! The in-memory watch cache, fed by one store watch on `/registry/`, as kube-apiserver's
//! cacher does: lists are served from it and N API watchers cost one store watch.
//!
//! Invariant: the cache applies store events strictly in revision order; `revision` is the
//! revision of the last applied event, and every object in `objects` carries its mod revision
//! as `metadata.resourceVersion`.

use capstan_store::{EventType, Store};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// What happened to an object, as a watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One change at one revision.
#[derive(Debug)]
pub struct CacheEvent {
    pub change: Change,
    pub key: String,
    pub revision: i64,
    /// The object after the change (for Deleted: the last state, with the deletion revision).
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub prev: Option<Arc<Value>>,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    revision: i64,
    history: VecDeque<Arc<CacheEvent>>,
    /// Events with revision > oldest can be replayed from history.
    oldest: i64,
}

/// A new watcher's start: the events to send first, the live receiver, and the cache revision
/// at subscription (live events at or below it are already covered).
pub type Subscription = (
    Vec<Arc<CacheEvent>>,
    broadcast::Receiver<Arc<CacheEvent>>,
    i64,
);

/// The cache. Clone the `Arc` to share.
pub struct WatchCache {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<CacheEvent>>,
    rev: watch::Sender<i64>,
    capacity: usize,
}

/// Decode a stored value into the wire object, stamping the resourceVersion.
pub fn decode_stored(value: &[u8], mod_revision: i64) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(value).ok()?;
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(mod_revision.to_string()),
        );
    }
    Some(v)
}

impl WatchCache {
    /// Build the cache from a full list, then follow the store's watch in the background.
    pub async fn start(store: Arc<dyn Store>, capacity: usize) -> anyhow::Result<Arc<WatchCache>> {
        let (tx, _) = broadcast::channel(16384);
        let (rev_tx, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                revision: 0,
                history: VecDeque::new(),
                oldest: 0,
            }),
            events: tx,
            rev: rev_tx,
            capacity,
        });
        let rev = cache.relist(&*store).await?;
        let c = cache.clone();
        tokio::spawn(async move { c.follow(store, rev).await });
        Ok(cache)
    }

    async fn relist(&self, store: &dyn Store) -> anyhow::Result<i64> {
        let list = store.list("/registry/", None, None, 0).await?;
        let mut objects = BTreeMap::new();
        for kv in list.kvs {
            if let Some(v) = decode_stored(&kv.value, kv.mod_revision) {
                objects.insert(kv.key, Arc::new(v));
            }
        }
        {
            let mut st = self.state.write().unwrap();
            st.objects = objects;
            st.revision = list.revision;
            st.history.clear();
            st.oldest = list.revision;
        }
        self.rev.send_replace(list.revision);
        Ok(list.revision)
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut rev: i64) {
        loop {
            match store.watch("/registry/", rev + 1).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(events) => {
                                for e in events {
                                    rev = rev.max(e.kv.mod_revision);
                                    self.apply(e);
                                }
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "watch cache: store watch failed; relisting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "watch cache: cannot watch store"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.relist(&*store).await {
                Ok(r) => rev = r,
                Err(err) => tracing::warn!(error = %err, "watch cache: relist failed"),
            }
        }
    }

    fn apply(&self, e: capstan_store::Event) {
        let revision = e.kv.mod_revision;
        let key = e.kv.key.clone();
        let ev = {
            let mut st = self.state.write().unwrap();
            let prev = st.objects.get(&key).cloned();
            let ev = match e.kind {
                EventType::Put => {
                    let Some(obj) = decode_stored(&e.kv.value, revision) else {
                        tracing::warn!(%key, "watch cache: undecodable value");
                        return;
                    };
                    let obj = Arc::new(obj);
                    st.objects.insert(key.clone(), obj.clone());
                    let change = if prev.is_some() {
                        Change::Modified
                    } else {
                        Change::Added
                    };
                    CacheEvent {
                        change,
                        key,
                        revision,
                        object: obj,
                        prev,
                    }
                }
                EventType::Delete => {
                    st.objects.remove(&key);
                    let obj = match &prev {
                        Some(p) => {
                            let mut v = (**p).clone();
                            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                                m.insert(
                                    "resourceVersion".into(),
                                    Value::String(revision.to_string()),
                                );
                            }
                            Arc::new(v)
                        }
                        None => match decode_stored(&e.kv.value, revision) {
                            Some(v) => Arc::new(v),
                            None => return,
                        },
                    };
                    CacheEvent {
                        change: Change::Deleted,
                        key,
                        revision,
                        object: obj,
                        prev,
                    }
                }
            };
            let ev = Arc::new(ev);
            st.history.push_back(ev.clone());
            while st.history.len() > self.capacity {
                if let Some(old) = st.history.pop_front() {
                    st.oldest = old.revision;
                }
            }
            st.revision = revision;
            // Sent under the lock so that `subscribe` sees each event either in its snapshot or on
            // its receiver, never both nor neither.
            let _ = self.events.send(ev.clone());
            ev
        };
        drop(ev);
        self.rev.send_replace(revision);
    }

    /// The revision of the last applied event.
    pub fn revision(&self) -> i64 {
        *self.rev.borrow()
    }

    /// Wait until the cache has applied `revision` (bounded by `timeout`).
    pub async fn wait_for(&self, revision: i64, timeout: Duration) -> bool {
        let mut rx = self.rev.subscribe();
        let ok = matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await,
            Ok(Ok(_))
        );
        ok
    }

    /// Objects under `prefix`, with the cache revision they were read at.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Value>>, i64) {
        let st = self.state.read().unwrap();
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.revision)
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().unwrap().objects.get(key).cloned()
    }

    /// Start a watch: events with revision > `after` under `prefix`. `after` = None means "now,
    /// after synthetic ADDED events for the current state" (the returned Vec holds those).
    /// Err(oldest) when `after` is older than the history kept.
    pub fn subscribe(&self, prefix: &str, after: Option<i64>) -> Result<Subscription, i64> {
        let st = self.state.read().unwrap();
        let rx = self.events.subscribe();
        let mut initial = Vec::new();
        match after {
            None => {
                for (k, v) in st
                    .objects
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                {
                    let revision = v
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(st.revision);
                    initial.push(Arc::new(CacheEvent {
                        change: Change::Added,
                        key: k.clone(),
                        revision,
                        object: v.clone(),
                        prev: None,
                    }));
                }
            }
            Some(after) => {
                if after < st.oldest {
                    return Err(st.oldest);
                }
                for ev in st.history.iter() {
                    if ev.revision > after && ev.key.starts_with(prefix) {
                        initial.push(ev.clone());
                    }
                }
            }
        }
        Ok((initial, rx, st.revision))
    }

    /// Number of events kept for replay.
    pub fn oldest_revision(&self) -> i64 {
        self.state.read().unwrap().oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn cache_with(capacity: usize) -> (tempfile::TempDir, Arc<dyn Store>, Arc<WatchCache>) {
        let dir = tempfile::tempdir().unwrap();
        let ds = capstan_store::Datastore::Embedded {
            dir: dir.path().join("db"),
        };
        let store = capstan_store::open(&ds).await.unwrap();
        let cache = WatchCache::start(store.clone(), capacity).await.unwrap();
        (dir, store, cache)
    }

    fn obj(name: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"ns"}}}}"#
        ))
    }

    #[tokio::test]
    async fn replays_history_and_expires_old_revisions() {
        let (_d, store, cache) = cache_with(4).await;
        let start = store.current_revision().await.unwrap();
        let mut last = 0;
        for i in 0..10 {
            last = store
                .create(
                    &format!("/registry/configmaps/ns/c{i}"),
                    obj(&format!("c{i}")),
                )
                .await
                .unwrap();
        }
        assert!(cache.wait_for(last, Duration::from_secs(5)).await);
        // Only the last 4 events are kept: resuming from the start is 410-worthy.
        assert!(cache
            .subscribe("/registry/configmaps/", Some(start))
            .is_err());
        let (initial, _rx, rev) = cache
            .subscribe("/registry/configmaps/", Some(last - 2))
            .unwrap();
        assert_eq!(rev, last);
        assert_eq!(
            initial.iter().map(|e| e.revision).collect::<Vec<_>>(),
            vec![last - 1, last]
        );
        // A watch from "now" starts with the current state as ADDED events.
        let (initial, mut rx, _) = cache.subscribe("/registry/configmaps/ns/", None).unwrap();
        assert_eq!(initial.len(), 10);
        assert!(initial.iter().all(|e| e.change == Change::Added));
        let kv = store
            .get("/registry/configmaps/ns/c3")
            .await
            .unwrap()
            .unwrap();
        store
            .update("/registry/configmaps/ns/c3", obj("c3"), kv.mod_revision)
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.change, Change::Modified);
        assert_eq!(
            ev.object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
            Some(ev.revision.to_string().as_str())
        );
        let (cur, _) = store
            .delete("/registry/configmaps/ns/c3", None)
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((ev.change, ev.revision), (Change::Deleted, cur));
        let (items, _) = cache.list("/registry/configmaps/ns/");
        assert_eq!(items.len(), 9);
    }
}
