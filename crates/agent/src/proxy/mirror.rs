//! The proxy's view of the API: Services and EndpointSlices (discovery.k8s.io/v1) listed and
//! watched into memory (relisted after a watch ERROR such as 410 Expired), shared by both
//! proxy modes. Nothing is applied before both were listed, so a restarted agent rebuilds
//! from the API, never from an empty view.

use crate::api::Api;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Objects by `namespace/name`; a pass clones the `Arc`s, never the objects.
pub(crate) type Objects = Arc<Mutex<BTreeMap<String, Arc<Value>>>>;

/// One resource mirrored from the API: the objects, whether the first list arrived.
pub(crate) struct Mirror {
    pub(crate) objects: Objects,
    pub(crate) listed: Arc<std::sync::atomic::AtomicBool>,
}

fn key(v: &Value) -> String {
    format!(
        "{}/{}",
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn slim(mut v: Value) -> Value {
    if let Some(md) = v["metadata"].as_object_mut() {
        md.remove("managedFields");
    }
    v
}

/// List and watch `path` forever into a [`Mirror`], poking `changed` after each change.
pub(crate) fn mirror(
    api: Api,
    path: &'static str,
    changed: Arc<Notify>,
) -> (Mirror, tokio::task::JoinHandle<()>) {
    let objects: Objects = Default::default();
    let listed: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let m = Mirror {
        objects: objects.clone(),
        listed: listed.clone(),
    };
    let task = tokio::spawn(async move {
        loop {
            let list = match api.call("GET", path, None).await {
                Ok(a) if a.code == 200 => a.body,
                Ok(a) => {
                    tracing::warn!(code = a.code, path, "proxy: listing");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, path, "proxy: listing");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut list = list;
            let items: BTreeMap<String, Arc<Value>> = match list["items"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            }
            .into_iter()
            .map(|v| (key(&v), Arc::new(slim(v))))
            .collect();
            *objects.lock().expect("proxy objects") = items;
            listed.store(true, std::sync::atomic::Ordering::SeqCst);
            changed.notify_one();
            let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0");
            let watch = format!(
                "{path}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=300"
            );
            let mut w = match api.watch(&watch).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, path, "proxy: watching");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match w.next().await {
                    Ok(Some(ev)) => {
                        let obj = ev["object"].clone();
                        match ev["type"].as_str().unwrap_or_default() {
                            "ADDED" | "MODIFIED" => {
                                objects
                                    .lock()
                                    .expect("proxy objects")
                                    .insert(key(&obj), Arc::new(slim(obj)));
                            }
                            "DELETED" => {
                                objects.lock().expect("proxy objects").remove(&key(&obj));
                            }
                            "BOOKMARK" => continue,
                            // ERROR (say 410 Expired): relist.
                            _ => break,
                        }
                        changed.notify_one();
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, path, "proxy: watch ended");
                        break;
                    }
                }
            }
        }
    });
    (m, task)
}

/// A pass's copy of one mirror: the objects' `Arc`s.
pub type Shared = Vec<Arc<Value>>;

/// Services and EndpointSlices mirrored from the API; `changed` is poked after each change.
pub struct Mirrors {
    services: Mirror,
    slices: Mirror,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Mirrors {
    pub fn start(api: Api, changed: Arc<Notify>) -> Mirrors {
        let (services, t1) = mirror(api.clone(), "/api/v1/services", changed.clone());
        let (slices, t2) = mirror(api, "/apis/discovery.k8s.io/v1/endpointslices", changed);
        Mirrors {
            services,
            slices,
            tasks: vec![t1, t2],
        }
    }

    /// (services, slices), once both were listed.
    pub fn snapshot(&self) -> Option<(Shared, Shared)> {
        let ready = |m: &Mirror| m.listed.load(std::sync::atomic::Ordering::SeqCst);
        if !ready(&self.services) || !ready(&self.slices) {
            return None;
        }
        let all = |m: &Mirror| -> Vec<Arc<Value>> {
            m.objects
                .lock()
                .expect("proxy objects")
                .values()
                .cloned()
                .collect()
        };
        Some((all(&self.services), all(&self.slices)))
    }
}

impl Drop for Mirrors {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
