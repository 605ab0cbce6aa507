//! The in-memory watch cache, fed by one store watch on `/registry/`, as kube-apiserver's
//! cacher does: lists are served from it and N API watchers cost one store watch.
//!
//! Objects are kept as the stored JSON bytes (shared with the store's own copy where the
//! backend keeps one) plus a small "selectable" projection (name, namespace, labels and the
//! fields field selectors use), so memory stays close to the size of the data and lists are
//! written by concatenating bytes. Full objects are parsed only where needed (Tables,
//! conversions).
//!
//! Invariant: the cache applies store events strictly in revision order; `revision` is the
//! revision of the last applied event; an object's resourceVersion is its mod revision.

use bytes::Bytes;
use capstan_store::{EventType, Store};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
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

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    /// Stored JSON, without resourceVersion.
    pub raw: Bytes,
    /// The revision stamped as metadata.resourceVersion on output.
    pub revision: i64,
    /// metadata (name, namespace, labels) and the fields selectors read.
    pub selectable: Value,
}

/// Top-level and nested paths copied into the selectable projection: everything
/// kube-apiserver's field selectors read, across kinds.
const SELECTABLE: &[&[&str]] = &[
    &["spec", "nodeName"],
    &["spec", "restartPolicy"],
    &["spec", "schedulerName"],
    &["spec", "serviceAccountName"],
    &["spec", "hostNetwork"],
    &["spec", "unschedulable"],
    &["spec", "clusterIP"],
    &["spec", "type"],
    &["status", "phase"],
    &["status", "podIP"],
    &["status", "podIPs"],
    &["status", "nominatedNodeName"],
    &["status", "replicas"],
    &["status", "succeeded"],
    &["type"],
    &["reason"],
    &["source"],
    &["involvedObject"],
    &["regarding"],
    &["reportingComponent"],
    &["reportingController"],
];

fn project(obj: &Value) -> Value {
    let mut out = Map::new();
    let mut meta = Map::new();
    for k in ["name", "namespace", "labels", "uid", "deletionTimestamp"] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    out.insert("metadata".into(), Value::Object(meta));
    for path in SELECTABLE {
        let mut cur = obj;
        let mut found = true;
        for seg in path.iter() {
            match cur.get(*seg) {
                Some(v) => cur = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut slot = &mut out;
        for seg in &path[..path.len() - 1] {
            let entry = slot
                .entry(seg.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            slot = entry.as_object_mut().expect("projection nodes are objects");
        }
        slot.insert(path[path.len() - 1].to_string(), cur.clone());
    }
    Value::Object(out)
}

impl CachedObject {
    /// Build from stored bytes; None when they are not a JSON object.
    pub fn new(raw: Bytes, revision: i64) -> Option<CachedObject> {
        let v: Value = serde_json::from_slice(&raw).ok()?;
        if !v.is_object() {
            return None;
        }
        Some(CachedObject {
            selectable: project(&v),
            raw,
            revision,
        })
    }

    /// The full object, parsed, with its resourceVersion.
    pub fn value(&self) -> Value {
        decode_stored(&self.raw, self.revision).unwrap_or(Value::Null)
    }

    /// Append the object's JSON with its resourceVersion to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_with_rv(&self.raw, self.revision, out);
    }

    pub fn name(&self) -> &str {
        self.selectable
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.selectable
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// Write stored JSON with `"resourceVersion":"N"` spliced into its metadata. The API server
/// writes objects with kind, apiVersion and metadata first, so the splice point is found
/// without parsing; anything else is parsed and re-serialized.
pub fn write_with_rv(raw: &[u8], revision: i64, out: &mut Vec<u8>) {
    const META: &[u8] = b"\"metadata\":{";
    let head = &raw[..raw.len().min(512)];
    if let Some(pos) = head.windows(META.len()).position(|w| w == META) {
        // Only trust the splice when everything before it is kind/apiVersion.
        let before = &raw[..pos];
        let simple = before.iter().filter(|b| **b == b'{').count() == 1 && !before.contains(&b'[');
        if simple {
            let at = pos + META.len();
            out.extend_from_slice(&raw[..at]);
            out.extend_from_slice(b"\"resourceVersion\":\"");
            out.extend_from_slice(revision.to_string().as_bytes());
            out.push(b'"');
            if raw.get(at) != Some(&b'}') {
                out.push(b',');
            }
            out.extend_from_slice(&raw[at..]);
            return;
        }
    }
    match decode_stored(raw, revision) {
        Some(v) => serde_json::to_writer(out, &v).expect("Value serializes"),
        None => out.extend_from_slice(raw),
    }
}

/// One change at one revision.
/// History events (newest) that keep their encoded watch line.
const LINE_WINDOW: usize = 1024;

#[derive(Debug)]
pub struct CacheEvent {
    pub change: Change,
    pub key: String,
    pub revision: i64,
    /// The object after the change (for Deleted: the last state, at the deletion revision).
    pub object: Arc<CachedObject>,
    /// The object before the change, for selector transitions.
    pub prev: Option<Arc<CachedObject>>,
    /// `{"type":..,"object":..}\n` in JSON, built once and shared by every watcher that wants it.
    line: OnceLock<Bytes>,
}

impl CacheEvent {
    fn new(
        change: Change,
        key: String,
        revision: i64,
        object: Arc<CachedObject>,
        prev: Option<Arc<CachedObject>>,
    ) -> Self {
        CacheEvent {
            change,
            key,
            revision,
            object,
            prev,
            line: OnceLock::new(),
        }
    }

    /// The same event without its cached line.
    fn without_line(&self) -> CacheEvent {
        CacheEvent::new(
            self.change,
            self.key.clone(),
            self.revision,
            self.object.clone(),
            self.prev.clone(),
        )
    }

    /// The JSON watch line for this event, as type `kind` (the change itself unless a
    /// selector transition turned it into ADDED/DELETED).
    pub fn json_line(&self, kind: &str) -> Bytes {
        let build = || {
            let mut out = Vec::with_capacity(self.object.raw.len() + 48);
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\",\"object\":");
            self.object.write_json(&mut out);
            out.extend_from_slice(b"}\n");
            Bytes::from(out)
        };
        if kind == self.change.as_str() {
            self.line.get_or_init(build).clone()
        } else {
            build()
        }
    }
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
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
            if let Some(o) = CachedObject::new(kv.value, kv.mod_revision) {
                objects.insert(kv.key, Arc::new(o));
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
        {
            let mut st = self.state.write().unwrap();
            let prev = st.objects.get(&key).cloned();
            let ev = match e.kind {
                EventType::Put => {
                    let Some(obj) = CachedObject::new(e.kv.value, revision) else {
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
                    CacheEvent::new(change, key, revision, obj, prev)
                }
                EventType::Delete => {
                    st.objects.remove(&key);
                    let raw = prev.as_ref().map(|p| p.raw.clone()).unwrap_or(e.kv.value);
                    let Some(obj) = CachedObject::new(raw, revision) else {
                        return;
                    };
                    CacheEvent::new(Change::Deleted, key, revision, Arc::new(obj), prev)
                }
            };
            let ev = Arc::new(ev);
            st.history.push_back(ev.clone());
            // The encoded line is kept only for recent events (live watchers share it); older
            // history keeps the object alone, so it does not hold a second copy of every version.
            if let Some(i) = st.history.len().checked_sub(LINE_WINDOW + 1) {
                if st.history[i].line.get().is_some() {
                    let old = st.history[i].without_line();
                    st.history[i] = Arc::new(old);
                }
            }
            while st.history.len() > self.capacity {
                if let Some(old) = st.history.pop_front() {
                    st.oldest = old.revision;
                }
            }
            st.revision = revision;
            // Sent under the lock so that `subscribe` sees each event either in its snapshot or on
            // its receiver, never both nor neither.
            let _ = self.events.send(ev);
        }
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
    pub fn list(&self, prefix: &str) -> (Vec<Arc<CachedObject>>, i64) {
        let st = self.state.read().unwrap();
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.revision)
    }

    /// Objects under `prefix`, parsed (for the server's own rare full scans).
    pub fn list_values(&self, prefix: &str) -> Vec<Value> {
        self.list(prefix).0.iter().map(|o| o.value()).collect()
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
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
                    initial.push(Arc::new(CacheEvent::new(
                        Change::Added,
                        k.clone(),
                        v.revision,
                        v.clone(),
                        None,
                    )));
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

    /// The oldest revision watchers can resume after.
    pub fn oldest_revision(&self) -> i64 {
        self.state.read().unwrap().oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_resource_version() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":{}}"#,
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"7","name":"a"},"spec":{}}"#,
            ),
            (
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{}}"#,
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"7"}}"#,
            ),
            (
                r#"{"spec":{"x":{"metadata":{}}},"metadata":{"name":"b"}}"#,
                r#"{"spec":{"x":{"metadata":{}}},"metadata":{"name":"b","resourceVersion":"7"}}"#,
            ),
        ];
        for (raw, want) in cases {
            let mut out = Vec::new();
            write_with_rv(raw.as_bytes(), 7, &mut out);
            let got: Value = serde_json::from_slice(&out).unwrap();
            let want: Value = serde_json::from_str(want).unwrap();
            assert_eq!(got, want, "{raw}");
        }
    }

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

    /// Only the newest history events keep their encoded line; older ones encode again when
    /// replayed, with the same bytes.
    #[tokio::test]
    async fn old_history_drops_cached_lines() {
        let (_d, store, cache) = cache_with(LINE_WINDOW * 2).await;
        let start = store.current_revision().await.unwrap();
        let (_, mut rx, _) = cache.subscribe("/registry/configmaps/", None).unwrap();
        let n = LINE_WINDOW + 10;
        let mut last = 0;
        for i in 0..n {
            last = store
                .create(
                    &format!("/registry/configmaps/ns/c{i}"),
                    obj(&format!("c{i}")),
                )
                .await
                .unwrap();
            // A live watcher encodes each event as it comes.
            let ev = rx.recv().await.unwrap();
            ev.json_line("ADDED");
        }
        assert!(cache.wait_for(last, Duration::from_secs(5)).await);
        let (replay, _, _) = cache
            .subscribe("/registry/configmaps/", Some(start))
            .unwrap();
        assert_eq!(replay.len(), n);
        let cached: Vec<bool> = replay.iter().map(|e| e.line.get().is_some()).collect();
        assert!(
            cached[..n - LINE_WINDOW].iter().all(|c| !c),
            "old events keep no line"
        );
        assert!(
            cached[n - LINE_WINDOW..].iter().all(|c| *c),
            "recent ones do"
        );
        let line: Value = serde_json::from_slice(&replay[0].json_line("ADDED")).unwrap();
        assert_eq!(line["object"]["metadata"]["name"], "c0");
        assert_eq!(
            line["object"]["metadata"]["resourceVersion"],
            replay[0].revision.to_string()
        );
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
                .value()
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str),
            Some(ev.revision.to_string().as_str())
        );
        let line: Value = serde_json::from_slice(&ev.json_line("MODIFIED")).unwrap();
        assert_eq!(
            line["object"]["metadata"]["resourceVersion"],
            ev.revision.to_string()
        );
        assert_eq!(line["object"]["metadata"]["name"], "c3");
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
