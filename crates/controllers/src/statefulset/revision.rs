//! A StatefulSet's ControllerRevisions (kube's pkg/controller/history as the StatefulSet
//! controller uses it): the revision of the current template (`data` = the template as a
//! strategic merge patch `{"spec":{"template":{…,"$patch":"replace"}}}`), named
//! `<set>-<hash>` with the hash FNV-32 of the patch's JSON bytes (keys sorted, Go's escaping)
//! followed by collisionCount's digits, in SafeEncodeString's alphabet; which revision is
//! current and which the update one; history pruning.

use crate::{controller_ref, name, namespace, str_at, time_at, uid};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The label on a revision carrying its hash.
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `v` with object keys sorted (Go's json.Marshal of a map).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        v => v.clone(),
    }
}

/// The bytes Go's json.Marshal writes for `v` (sorted keys; `<`, `>`, `&`, U+2028/9 escaped).
pub fn go_json(v: &Value) -> String {
    sorted(v)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The template of `sts` as the patch a revision stores.
pub fn patch(sts: &Value) -> Value {
    let mut t = sts["spec"]["template"].clone();
    if !t.is_object() {
        t = json!({});
    }
    t["$patch"] = json!("replace");
    json!({"spec": {"template": t}})
}

/// The template a revision holds (its patch without the directive).
pub fn template(rev: &Value) -> Value {
    let mut t = rev["data"]["spec"]["template"].clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

/// kube's HashControllerRevision: FNV-32 (not 32a) of the data bytes and the collision count.
pub fn hash(data: &Value, collision_count: i64) -> String {
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |b: &[u8]| {
        for &x in b {
            h = h.wrapping_mul(0x01000193);
            h ^= x as u32;
        }
    };
    feed(go_json(data).as_bytes());
    feed(collision_count.to_string().as_bytes());
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn owner_ref(sts: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name(sts), "uid": uid(sts),
        "controller": true, "blockOwnerDeletion": true})
}

/// A new ControllerRevision of `sts`'s template with `revision` and `collision_count`
/// (labels: the template's plus the hash label).
pub fn new_revision(sts: &Value, revision: i64, collision_count: i64) -> Value {
    let data = patch(sts);
    let h = hash(&data, collision_count);
    let prefix: String = name(sts).chars().take(223).collect();
    let mut labels = sts["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), json!(h));
    let mut meta = json!({"name": format!("{prefix}-{h}"), "namespace": namespace(sts),
        "labels": labels, "ownerReferences": [owner_ref(sts)]});
    if let Some(a) = sts["metadata"]["annotations"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        meta["annotations"] = json!(a);
    }
    json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
        "data": data, "revision": revision})
}

pub fn number(rev: &Value) -> i64 {
    rev["revision"].as_i64().unwrap_or(0)
}

/// The revisions `sts` controls, oldest first (kube's byRevision).
pub fn owned(sts: &Value, revisions: &[Value]) -> Vec<Value> {
    let me = uid(sts);
    let mut v: Vec<Value> = revisions
        .iter()
        .filter(|r| controller_ref(r).is_some_and(|o| o["uid"] == me))
        .cloned()
        .collect();
    v.sort_by(|a, b| {
        number(a)
            .cmp(&number(b))
            .then_with(|| {
                let t = |r: &Value| time_at(r, "/metadata/creationTimestamp");
                t(a).cmp(&t(b))
            })
            .then_with(|| name(a).cmp(name(b)))
    });
    v
}

/// Which revisions a sync works with.
#[derive(Debug, Clone, PartialEq)]
pub struct Revisions {
    pub current: Value,
    pub update: Value,
    /// A revision to create (the template is new).
    pub create: Option<Value>,
    /// An older revision equal to the template, to renumber to the next revision (rollback).
    pub renumber: Option<(String, i64)>,
    pub collision_count: i64,
}

/// kube's getStatefulSetRevisions over the revisions `sts` owns (see [`owned`]).
pub fn choose(sts: &Value, owned: &[Value]) -> Revisions {
    let collision_count = sts["status"]["collisionCount"].as_i64().unwrap_or(0);
    let next = owned.iter().map(number).max().unwrap_or(0) + 1;
    let fresh = new_revision(sts, next, collision_count);
    let equal: Vec<&Value> = owned
        .iter()
        .filter(|r| r["data"] == fresh["data"])
        .collect();
    let (mut update, mut create, mut renumber) = (fresh.clone(), None, None);
    match equal.last() {
        Some(e) if owned.last().is_some_and(|l| name(l) == name(e)) => update = (*e).clone(),
        Some(e) => {
            update = (*e).clone();
            update["revision"] = json!(next);
            renumber = Some((name(e).to_string(), next));
        }
        None => create = Some(fresh),
    }
    let want = str_at(sts, "/status/currentRevision");
    let current = owned
        .iter()
        .find(|r| !want.is_empty() && name(r) == want)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Revisions {
        current,
        update,
        create,
        renumber,
        collision_count,
    }
}

/// kube's truncateHistory: the revisions no pod, nor the current or update revision, uses,
/// beyond revisionHistoryLimit (default 10), oldest first.
pub fn prune(
    sts: &Value,
    owned: &[Value],
    revs: &Revisions,
    pod_revisions: &[&str],
) -> Vec<String> {
    let limit = sts["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let mut live: HashSet<&str> = pod_revisions.iter().copied().collect();
    live.insert(name(&revs.current));
    live.insert(name(&revs.update));
    let history: Vec<&Value> = owned.iter().filter(|r| !live.contains(name(r))).collect();
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit]
        .iter()
        .map(|r| name(r).to_string())
        .collect()
}
