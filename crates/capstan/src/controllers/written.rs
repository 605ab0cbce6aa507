//! What a sync wrote (kube's EndpointSliceTracker, for the Endpoints and EndpointSlice
//! controllers): per controller key, the objects it created or updated (their
//! resourceVersion) and deleted (their uid), until the cache shows them. A sync that finds
//! its last writes not yet in the cache waits (its own write's watch event re-queues it),
//! so it never computes from a stale cache and never writes over its own write. An
//! expectation older than 10 s is dropped.

use super::cache::Cache;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Want {
    /// At least this resourceVersion.
    Version(u64),
    /// The object with this uid gone.
    Gone(String),
}

/// When the last write was, and what is awaited: (cache key, what it must show).
type Pending = (Instant, Vec<(String, Want)>);

#[derive(Default)]
pub struct Written(Mutex<HashMap<String, Pending>>);

/// The object's resourceVersion as a number (this API server's are store revisions).
pub fn version(obj: &Value) -> Option<u64> {
    obj.pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

impl Written {
    fn push(&self, k: &str, obj_key: String, want: Want) {
        let mut g = self.0.lock().unwrap();
        let e = g
            .entry(k.to_string())
            .or_insert_with(|| (Instant::now(), Vec::new()));
        e.0 = Instant::now();
        e.1.push((obj_key, want));
    }

    /// `k`'s sync wrote `obj` (the API server's answer), cached under `obj_key`.
    pub fn wrote(&self, k: &str, obj_key: String, obj: &Value) {
        if let Some(v) = version(obj) {
            self.push(k, obj_key, Want::Version(v));
        }
    }

    /// `k`'s sync deleted the object with `uid` cached under `obj_key`.
    pub fn deleted(&self, k: &str, obj_key: String, uid: &str) {
        self.push(k, obj_key, Want::Gone(uid.to_string()));
    }

    /// Whether `cache` shows everything `k`'s syncs wrote.
    pub fn settled(&self, k: &str, cache: &Cache) -> bool {
        let mut g = self.0.lock().unwrap();
        let Some((at, wants)) = g.get_mut(k) else {
            return true;
        };
        wants.retain(|(obj_key, want)| {
            let cur = cache.get_shared(obj_key);
            let seen = match want {
                Want::Version(v) => cur.and_then(|c| version(&c)).is_some_and(|c| c >= *v),
                Want::Gone(uid) => cur.is_none_or(|c| capstan_controllers::uid(&c) != uid),
            };
            !seen
        });
        if wants.is_empty() || at.elapsed() > Duration::from_secs(10) {
            g.remove(k);
            return true;
        }
        false
    }

    pub fn forget(&self, k: &str) {
        self.0.lock().unwrap().remove(k);
    }
}
