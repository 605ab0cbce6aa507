//! Controller expectations (kube's ControllerExpectations): what a sync created or deleted,
//! per controller key, until the pod cache shows it, so a lagging cache cannot make the next
//! sync create or delete twice. An expectation older than 60 s is dropped.

use serde_json::Value;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Expect {
    /// Ids of created pods (their names, or for a DaemonSet their nodes) not seen yet.
    created: HashSet<String>,
    /// Uids of deleted pods still in the cache without a deletionTimestamp.
    deleted: HashSet<String>,
    at: Option<Instant>,
}

#[derive(Default)]
pub struct Expectations(Mutex<HashMap<String, Expect>>);

impl Expectations {
    /// Whether what the last sync of `k` did has reached `pods`; `id_of(pod)` is the id a
    /// created pod shows under (one pass over the pods, only while something is expected).
    pub fn satisfied<P: Borrow<Value>>(
        &self,
        k: &str,
        pods: &[P],
        id_of: impl Fn(&Value) -> Option<String>,
    ) -> bool {
        let mut g = self.0.lock().unwrap();
        let Some(e) = g.get_mut(k) else { return true };
        if !e.created.is_empty() {
            let ids: HashSet<String> = pods.iter().filter_map(|p| id_of(p.borrow())).collect();
            e.created.retain(|id| !ids.contains(id));
        }
        if !e.deleted.is_empty() {
            let live: HashSet<&str> = pods
                .iter()
                .map(|p| p.borrow())
                .filter(|p| !capstan_controllers::deleting(p))
                .map(capstan_controllers::uid)
                .collect();
            e.deleted.retain(|u| live.contains(u.as_str()));
        }
        let expired = e.at.is_some_and(|t| t.elapsed() > Duration::from_secs(60));
        if (e.created.is_empty() && e.deleted.is_empty()) || expired {
            g.remove(k);
            return true;
        }
        false
    }

    /// A sync of `k` is about to write.
    pub fn begin(&self, k: &str) {
        self.0.lock().unwrap().entry(k.to_string()).or_default().at = Some(Instant::now());
    }

    pub fn created(&self, k: &str, id: &str) {
        let mut g = self.0.lock().unwrap();
        g.entry(k.to_string())
            .or_default()
            .created
            .insert(id.to_string());
    }

    pub fn deleted(&self, k: &str, uids: impl IntoIterator<Item = String>) {
        let mut g = self.0.lock().unwrap();
        g.entry(k.to_string()).or_default().deleted.extend(uids);
    }

    /// A delete that failed: nothing to wait for.
    pub fn not_deleted(&self, k: &str, uid: &str) {
        if let Some(e) = self.0.lock().unwrap().get_mut(k) {
            e.deleted.remove(uid);
        }
    }

    /// `k` is gone.
    pub fn forget(&self, k: &str) {
        self.0.lock().unwrap().remove(k);
    }
}

/// For pods identified by name (ReplicaSet, Job).
pub fn named(p: &Value) -> Option<String> {
    Some(capstan_controllers::name(p).to_string())
}
