//! Shared list+watch caches: one per resource, kept as the objects the API serves (JSON),
//! keyed `namespace/name`. Handlers run on every change (with the old object, if any); a
//! watch that ends is resumed from the last resourceVersion, after ERROR/410 by a relist.

use capstan_agent::api::Api;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A change handler: (old, new); `new` is None on deletion.
type Handler = Box<dyn Fn(Option<&Value>, Option<&Value>) + Send + Sync>;

pub struct Cache {
    pub plural: &'static str,
    path: String,
    /// Shared so a change is handed to the handlers without copying the object.
    objects: RwLock<HashMap<String, Arc<Value>>>,
    handlers: Mutex<Vec<Handler>>,
    synced: tokio::sync::watch::Sender<bool>,
}

pub fn key(obj: &Value) -> String {
    format!(
        "{}/{}",
        capstan_controllers::namespace(obj),
        capstan_controllers::name(obj)
    )
}

/// The key (`namespace/name`) of the `kind` object controlling `obj`, if one does.
pub fn controller_key(obj: &Value, kind: &str) -> Option<String> {
    let r = capstan_controllers::controller_ref(obj).filter(|r| r["kind"] == kind)?;
    Some(format!(
        "{}/{}",
        capstan_controllers::namespace(obj),
        r["name"].as_str().unwrap_or("")
    ))
}

/// What no controller reads is not kept (as client-go informers' transforms drop it):
/// managedFields are most of a small object's size.
fn trim(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
}

impl Cache {
    /// A cache of `path` (a cluster-wide collection path), not yet started.
    pub fn new(plural: &'static str, path: &str) -> Arc<Cache> {
        Arc::new(Cache {
            plural,
            path: path.to_string(),
            objects: RwLock::new(HashMap::new()),
            handlers: Mutex::new(Vec::new()),
            synced: tokio::sync::watch::channel(false).0,
        })
    }

    /// Add a handler; it is first called with every object already cached (as client-go's
    /// AddEventHandler replays), so a handler registered after the first list misses nothing.
    pub fn on_change(&self, f: impl Fn(Option<&Value>, Option<&Value>) + Send + Sync + 'static) {
        let mut handlers = self.handlers.lock().unwrap();
        // Under the handlers lock: a change applied meanwhile is notified after this replay.
        let current: Vec<Arc<Value>> = self.objects.read().unwrap().values().cloned().collect();
        for o in &current {
            f(None, Some(o));
        }
        handlers.push(Box::new(f));
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.objects.read().unwrap().get(key).map(|v| (**v).clone())
    }

    /// The object, shared with the cache (no copy).
    pub fn get_shared(&self, key: &str) -> Option<Arc<Value>> {
        self.objects.read().unwrap().get(key).cloned()
    }

    /// The keys of every cached object (no object copied).
    pub fn keys(&self) -> Vec<String> {
        self.objects.read().unwrap().keys().cloned().collect()
    }

    /// The objects `keep` selects.
    pub fn list(&self, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.objects
            .read()
            .unwrap()
            .values()
            .filter(|v| keep(v))
            .map(|v| (**v).clone())
            .collect()
    }

    pub fn in_namespace(&self, ns: &str) -> Vec<Value> {
        self.list(|v| capstan_controllers::namespace(v) == ns)
    }

    /// The objects of `ns`, shared with the cache (no copy: a sync of a ReplicaSet with
    /// 10,000 pods reads them where they are).
    pub fn in_namespace_shared(&self, ns: &str) -> Vec<Arc<Value>> {
        self.objects
            .read()
            .unwrap()
            .values()
            .filter(|v| capstan_controllers::namespace(v) == ns)
            .cloned()
            .collect()
    }

    /// Wait for the first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn notify(&self, old: Option<&Value>, new: Option<&Value>) {
        for h in self.handlers.lock().unwrap().iter() {
            h(old, new);
        }
    }

    fn reset(&self, mut items: Vec<Value>) {
        items.iter_mut().for_each(trim);
        let fresh: HashMap<String, Arc<Value>> =
            items.into_iter().map(|v| (key(&v), Arc::new(v))).collect();
        let old = std::mem::replace(&mut *self.objects.write().unwrap(), fresh.clone());
        for (k, o) in &old {
            if !fresh.contains_key(k) {
                self.notify(Some(o), None);
            }
        }
        for (k, n) in &fresh {
            self.notify(old.get(k).map(|o| &**o), Some(n));
        }
        self.synced.send_replace(true);
    }

    fn apply(&self, kind: &str, mut obj: Value) {
        trim(&mut obj);
        let k = key(&obj);
        if kind == "DELETED" {
            let old = self.objects.write().unwrap().remove(&k);
            self.notify(old.as_deref().or(Some(&obj)), None);
        } else {
            let obj = Arc::new(obj);
            let old = self.objects.write().unwrap().insert(k, obj.clone());
            self.notify(old.as_deref(), Some(&obj));
        }
    }

    async fn list_all(&self, api: &Api) -> Option<(Vec<Value>, String)> {
        let a = api
            .call("GET", &self.path, None)
            .await
            .ok()
            .filter(|a| a.code == 200)?;
        let mut body = a.body;
        let rv = body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let kind = body["kind"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches("List")
            .to_string();
        let api_version = body["apiVersion"].clone();
        let items = match body["items"].take() {
            Value::Array(items) => items
                .into_iter()
                .map(|mut v| {
                    v["kind"] = Value::String(kind.clone());
                    v["apiVersion"] = api_version.clone();
                    v
                })
                .collect(),
            _ => Vec::new(),
        };
        Some((items, rv))
    }

    /// List and watch until the process ends.
    pub async fn run(self: Arc<Self>, api: Api) {
        'relist: loop {
            let Some((items, mut rv)) = self.list_all(&api).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            self.reset(items);
            loop {
                let url = format!(
                    "{}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}",
                    self.path
                );
                let Ok(mut w) = api.watch(&url).await else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue 'relist;
                };
                loop {
                    let mut ev = match w.next().await {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        Err(_) => continue 'relist,
                    };
                    if let Some(v) = ev["object"]["metadata"]["resourceVersion"].as_str() {
                        rv = v.to_string();
                    }
                    let kind = ev["type"].as_str().unwrap_or_default().to_string();
                    match kind.as_str() {
                        "ERROR" => continue 'relist,
                        "BOOKMARK" => continue,
                        _ => self.apply(&kind, ev["object"].take()),
                    }
                }
            }
        }
    }
}

/// The caches the enabled controllers share, by plural.
#[derive(Default, Clone)]
pub struct Caches {
    pub by_plural: HashMap<&'static str, Arc<Cache>>,
}

impl Caches {
    /// The cache of `plural` (`group/version/plural`'s collection path), created once.
    pub fn want(&mut self, res: &'static capstan_api::resources::Resource) -> Arc<Cache> {
        self.by_plural
            .entry(res.plural)
            .or_insert_with(|| Cache::new(res.plural, &collection(res, None)))
            .clone()
    }

    pub fn get(&self, plural: &str) -> Option<&Arc<Cache>> {
        self.by_plural.get(plural)
    }
}

/// The collection path of `res` (in `ns` when given).
pub fn collection(res: &capstan_api::resources::Resource, ns: Option<&str>) -> String {
    let base = if res.group.is_empty() {
        format!("/api/{}", res.version)
    } else {
        format!("/apis/{}/{}", res.group, res.version)
    };
    match ns {
        Some(ns) if res.namespaced => format!("{base}/namespaces/{ns}/{}", res.plural),
        _ => format!("{base}/{}", res.plural),
    }
}

/// The path of one object of `res`.
pub fn object_path(res: &capstan_api::resources::Resource, ns: &str, name: &str) -> String {
    format!("{}/{name}", collection(res, Some(ns)))
}

pub fn resource(
    group: &str,
    version: &str,
    plural: &str,
) -> &'static capstan_api::resources::Resource {
    capstan_api::resources::find(group, version, plural).expect("registered resource")
}
