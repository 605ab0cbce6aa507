//! The garbage collector's I/O edge: the ownerReferences graph over the shared caches of the
//! kinds it monitors; a dependent whose owners are gone (confirmed by a live GET, as kube's
//! does) is deleted, an owner deleted with the `orphan` finalizer has its dependents'
//! references removed and then the finalizer, one with `foregroundDeletion` has its
//! dependents deleted and loses the finalizer once no blocking dependent is left.

use super::cache::{key, object_path, resource, Cache, Caches};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::gc::{self, Dependent, Owner};
use capstan_controllers::{finalizers, name, namespace, owner_refs, uid, FOREGROUND, ORPHAN};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The kinds whose objects the collector watches (as owners and as dependents).
const MONITORED: &[(&str, &str, &str)] = &[
    ("", "v1", "pods"),
    ("", "v1", "replicationcontrollers"),
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("batch", "v1", "jobs"),
    ("apps", "v1", "controllerrevisions"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "services"),
    ("discovery.k8s.io", "v1", "endpointslices"),
];

pub fn register(caches: &mut Caches) {
    for (g, v, p) in MONITORED {
        caches.want(resource(g, v, p));
    }
}

fn monitored(plural: &str) -> &'static capstan_api::resources::Resource {
    MONITORED
        .iter()
        .find(|(_, _, p)| *p == plural)
        .map(|(g, v, p)| resource(g, v, p))
        .unwrap_or_else(|| resource("", "v1", "pods"))
}

struct Gc {
    api: Api,
    caches: Vec<Arc<Cache>>,
    /// Owner uid → the items (`plural|ns/name`) referring to it, kept from every change so
    /// finding an object's dependents never scans the caches.
    index: Mutex<HashMap<String, HashSet<String>>>,
}

fn item(plural: &str, obj: &Value) -> String {
    format!("{plural}|{}", key(obj))
}

fn interesting(obj: &Value) -> bool {
    !owner_refs(obj).is_empty()
        || finalizers(obj)
            .iter()
            .any(|f| *f == ORPHAN || *f == FOREGROUND)
}

pub async fn run(api: Api, caches: &Caches) {
    let mine: Vec<Arc<Cache>> = MONITORED
        .iter()
        .filter_map(|(_, _, p)| caches.get(p).cloned())
        .collect();
    let queue = Queue::new();
    let g = Arc::new(Gc {
        api,
        caches: mine.clone(),
        index: Mutex::new(HashMap::new()),
    });
    for c in &mine {
        let (q, g2, plural) = (queue.clone(), g.clone(), c.plural);
        c.on_change(move |old, new| {
            if let Some(o) = new {
                if interesting(o) {
                    q.add(item(plural, o));
                }
            }
            g2.reindex(plural, old, new);
            let Some(o) = new.or(old) else { return };
            // Deleted or being deleted: its dependents may be orphans now (or must go, in the
            // foreground). A live owner's other changes concern no dependent.
            let going = new.is_none()
                || o.pointer("/metadata/deletionTimestamp")
                    .is_some_and(|t| !t.is_null());
            if going {
                for d in g2.dependents(uid(o)) {
                    q.add(d);
                }
            }
            // A foreground owner waits on its dependents' deletion.
            for r in owner_refs(o) {
                if let Some(k) = g2.find_owner_key(namespace(o), r) {
                    q.add(k);
                }
            }
        });
    }
    for c in &mine {
        c.wait_synced().await;
    }
    let all = {
        let g = g.clone();
        move || {
            let mut keys = Vec::new();
            for c in &g.caches {
                keys.extend(c.list(interesting).iter().map(|o| item(c.plural, o)));
            }
            keys
        }
    };
    for k in all() {
        queue.add(k);
    }
    drive(queue, Duration::from_secs(30), all, |k| {
        let g = g.clone();
        async move { g.sync(&k).await }
    })
    .await;
}

impl Gc {
    fn cache(&self, plural: &str) -> Option<&Arc<Cache>> {
        self.caches.iter().find(|c| c.plural == plural)
    }

    /// Keep the owner index: `old`'s references out, `new`'s in.
    fn reindex(&self, plural: &str, old: Option<&Value>, new: Option<&Value>) {
        let mut idx = self.index.lock().unwrap();
        if let Some(o) = old {
            let it = item(plural, o);
            for r in owner_refs(o) {
                let u = r["uid"].as_str().unwrap_or_default();
                if let Some(set) = idx.get_mut(u) {
                    set.remove(&it);
                    if set.is_empty() {
                        idx.remove(u);
                    }
                }
            }
        }
        if let Some(n) = new {
            let it = item(plural, n);
            for r in owner_refs(n) {
                if let Some(u) = r["uid"].as_str().filter(|u| !u.is_empty()) {
                    idx.entry(u.to_string()).or_default().insert(it.clone());
                }
            }
        }
    }

    /// Items (`plural|ns/name`) of the objects referring to `owner_uid`.
    fn dependents(&self, owner_uid: &str) -> Vec<String> {
        if owner_uid.is_empty() {
            return Vec::new();
        }
        let idx = self.index.lock().unwrap();
        idx.get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The dependents of `owner_uid`, shared with the caches (an owner of 10,000 pods is
    /// synced on each of its own status changes: no copies).
    fn dependent_objects(&self, owner_uid: &str) -> Vec<(&'static str, std::sync::Arc<Value>)> {
        let mut out = Vec::new();
        for it in self.dependents(owner_uid) {
            let Some((plural, k)) = it.split_once('|') else {
                continue;
            };
            let Some(c) = self.cache(plural) else {
                continue;
            };
            // The index and the cache agree after each change; re-check the reference anyway.
            if let Some(o) = c
                .get_shared(k)
                .filter(|o| owner_refs(o).iter().any(|r| r["uid"] == owner_uid))
            {
                out.push((c.plural, o));
            }
        }
        out
    }

    fn owner_resource(r: &Value) -> Option<&'static capstan_api::resources::Resource> {
        capstan_api::resources::find_kind(
            r["apiVersion"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
        )
    }

    fn find_owner_key(&self, ns: &str, r: &Value) -> Option<String> {
        let res = Self::owner_resource(r)?;
        self.cache(res.plural)?;
        let ns = if res.namespaced { ns } else { "" };
        Some(format!(
            "{}|{ns}/{}",
            res.plural,
            r["name"].as_str().unwrap_or("")
        ))
    }

    /// The owner's state: from the cache, and when the cache says gone, from the API server.
    async fn owner_state(&self, ns: &str, r: &Value) -> Owner {
        let Some(res) = Self::owner_resource(r) else {
            return Owner::Solid;
        };
        let ns = if res.namespaced { ns } else { "" };
        let owner_name = r["name"].as_str().unwrap_or("");
        if let Some(c) = self.cache(res.plural) {
            let state = gc::classify(c.get(&format!("{ns}/{owner_name}")).as_ref(), r);
            if state != Owner::Absent {
                return state;
            }
        }
        match self
            .api
            .call("GET", &object_path(res, ns, owner_name), None)
            .await
        {
            Ok(a) if a.code == 404 => Owner::Absent,
            Ok(a) if a.code == 200 => gc::classify(Some(&a.body), r),
            _ => Owner::Solid,
        }
    }

    async fn sync(&self, k: &str) -> Option<Duration> {
        let (plural, okey) = k.split_once('|')?;
        let c = self.cache(plural)?;
        let obj = c.get(okey)?;
        let res = monitored(plural);
        let path = object_path(res, namespace(&obj), name(&obj));
        let mut again = None;
        // As an owner being deleted.
        let plan = if capstan_controllers::deleting(&obj) {
            let deps: Vec<Value> = self
                .dependent_objects(uid(&obj))
                .into_iter()
                .map(|(_, o)| (*o).clone())
                .collect();
            gc::owner(&obj, &deps)
        } else {
            gc::OwnerPlan::default()
        };
        for d in &plan.orphan {
            let refs: Vec<Value> = owner_refs(d)
                .iter()
                .filter(|r| r["uid"] != uid(&obj))
                .cloned()
                .collect();
            let dpath = self.path_of(d);
            if !writes::set_owner_refs(&self.api, &dpath, d, refs).await {
                again = Some(Duration::from_secs(1));
            }
        }
        for d in &plan.delete {
            let kids = !self.dependent_objects(uid(d)).is_empty();
            let policy = if kids { "Foreground" } else { "Background" };
            writes::delete(&self.api, &self.path_of(d), uid(d), Some(policy)).await;
        }
        if let Some(f) = plan.remove_finalizer {
            let rest: Vec<&str> = finalizers(&obj).into_iter().filter(|x| *x != f).collect();
            let patch = json!({"metadata": {"finalizers": rest,
                "resourceVersion": obj["metadata"]["resourceVersion"]}});
            if !writes::merge(&self.api, &path, &patch).await {
                again = Some(Duration::from_secs(1));
            }
        } else if !plan.orphan.is_empty() || !plan.delete.is_empty() {
            again = Some(Duration::from_secs(1));
        }
        // As a dependent.
        let refs = owner_refs(&obj).to_vec();
        if !refs.is_empty() {
            let mut states = Vec::new();
            for r in &refs {
                states.push(self.owner_state(namespace(&obj), r).await);
            }
            let kids = !self.dependent_objects(uid(&obj)).is_empty();
            match gc::dependent(&obj, &states, kids) {
                Dependent::Keep => {}
                Dependent::RemoveRefs(gone) => {
                    let keep: Vec<Value> = refs
                        .into_iter()
                        .filter(|r| !gone.iter().any(|g| r["uid"] == g.as_str()))
                        .collect();
                    if !writes::set_owner_refs(&self.api, &path, &obj, keep).await {
                        again = Some(Duration::from_secs(1));
                    }
                }
                Dependent::Delete(policy) => {
                    tracing::debug!(object = %k, %policy, "garbage collecting");
                    if !writes::delete(&self.api, &path, uid(&obj), Some(policy)).await {
                        again = Some(Duration::from_secs(1));
                    }
                }
            }
        }
        again
    }

    fn path_of(&self, d: &Value) -> String {
        let plural = self
            .caches
            .iter()
            .find(|c| c.get(&key(d)).is_some_and(|o| uid(&o) == uid(d)))
            .map(|c| c.plural)
            .unwrap_or("pods");
        object_path(monitored(plural), namespace(d), name(d))
    }
}
