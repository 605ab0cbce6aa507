//! Deployment (kube's pkg/controller/deployment): which ReplicaSets it owns, the new one for
//! its template (named `<deployment>-<pod-template-hash>`), RollingUpdate and Recreate scaling,
//! revisions, history cleanup and status with the Available and Progressing conditions.
//!
//! The pod-template-hash differs from kube's: kube hashes the template printed with Go's
//! `%#v` (FNV-32a, then collisionCount), which cannot be reproduced outside Go. Here it is
//! FNV-32a of the template's canonical JSON (keys sorted) followed by collisionCount's decimal
//! digits, encoded as kube does (the decimal hash, each digit mapped through
//! SafeEncodeString's alphabet). Stable across restarts, but not the names kube would pick.

use crate::{controller_ref, deleting, labels, name, selector, time_at, uid};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        v => v.clone(),
    }
}

/// The pod-template-hash of `template` with `collision_count` (see the module's note).
pub fn pod_template_hash(template: &Value, collision_count: i64) -> String {
    let mut h: u32 = 0x811c9dc5;
    let text = canonical(template).to_string();
    let mut feed = |b: &[u8]| {
        for &x in b {
            h ^= x as u32;
            h = h.wrapping_mul(0x01000193);
        }
    };
    feed(text.as_bytes());
    if collision_count > 0 {
        feed(collision_count.to_string().as_bytes());
    }
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

/// `template` without the pod-template-hash label (kube's EqualIgnoreHash compares these).
fn without_hash(template: &Value) -> Value {
    let mut t = canonical(template);
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH_LABEL);
        if l.is_empty() {
            t["metadata"].as_object_mut().unwrap().remove("labels");
        }
    }
    if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|_, v| !v.is_null() && *v != json!({}));
        if m.is_empty() {
            t.as_object_mut().unwrap().remove("metadata");
        }
    }
    t
}

pub fn replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

fn status_i(v: &Value, k: &str) -> i64 {
    v["status"][k].as_i64().unwrap_or(0)
}

pub fn revision(rs: &Value) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An intstr (int or "N%") of `total`, rounding up or down.
fn scaled(v: &Value, total: i64, up: bool, default_pct: i64) -> i64 {
    let pct = match v {
        Value::Number(n) => return n.as_i64().unwrap_or(0).max(0),
        Value::String(s) if s.ends_with('%') => s[..s.len() - 1].parse().unwrap_or(default_pct),
        Value::String(s) => return s.parse().unwrap_or(0),
        _ => default_pct,
    };
    let x = pct * total;
    if up {
        (x + 99) / 100
    } else {
        x / 100
    }
}

/// (maxSurge, maxUnavailable) of a RollingUpdate Deployment (kube's ResolveFenceposts).
pub fn fenceposts(d: &Value) -> (i64, i64) {
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let n = replicas(d);
    let surge = scaled(&ru["maxSurge"], n, true, 25);
    let mut unavail = scaled(&ru["maxUnavailable"], n, false, 25);
    if surge == 0 && unavail == 0 {
        unavail = 1;
    }
    (surge, unavail.min(n))
}

fn recreate(d: &Value) -> bool {
    d["spec"]["strategy"]["type"] == "Recreate"
}

/// What one sync of a Deployment should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Orphan ReplicaSets matching the selector: add the Deployment's ownerReference.
    pub adopt: Vec<Value>,
    /// A new ReplicaSet to create.
    pub create: Option<Value>,
    /// (ReplicaSet, merge patch of its spec.replicas and annotations).
    pub update: Vec<(Value, Value)>,
    /// Old ReplicaSets to delete (revisionHistoryLimit).
    pub delete: Vec<Value>,
    /// ScalingReplicaSet event messages.
    pub events: Vec<String>,
    /// Annotations to merge into the Deployment (its revision), if they differ.
    pub annotations: Option<Value>,
    /// The status to report.
    pub status: Value,
    /// Whether to look again soon (a rollout is under way).
    pub again: bool,
}

pub fn owner_ref(d: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name(d), "uid": uid(d),
        "controller": true, "blockOwnerDeletion": true})
}

/// The ReplicaSets of `d` among `all` (the namespace's): owned, or orphans it adopts.
fn owned(d: &Value, all: &[Value], plan: &mut Plan) -> Vec<Value> {
    let Some(sel) = selector(&d["spec"]["selector"]).filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rs in all {
        match controller_ref(rs) {
            Some(r) if r["uid"] == uid(d) => out.push(rs.clone()),
            None if !deleting(d) && !deleting(rs) && sel.matches(&labels(rs)) => {
                plan.adopt.push(rs.clone());
                out.push(rs.clone());
            }
            _ => {}
        }
    }
    out
}

/// The new ReplicaSet for `d`'s template, `<name>-<hash>`, with `replicas`.
pub fn new_replica_set(d: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut sel = d["spec"]["selector"].clone();
    sel["matchLabels"][HASH_LABEL] = json!(hash);
    let mut ann = rs_annotations(d, revision);
    if let Some(c) = d
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CHANGE_CAUSE))
    {
        ann[CHANGE_CAUSE] = c.clone();
    }
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{}-{hash}", name(d)), "namespace": crate::namespace(d),
            "labels": template["metadata"]["labels"].clone(), "annotations": ann,
            "ownerReferences": [owner_ref(d)]},
        "spec": {"replicas": replicas, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": sel, "template": template}})
}

fn rs_annotations(d: &Value, revision: i64) -> Value {
    let n = replicas(d);
    let max = if recreate(d) { n } else { n + fenceposts(d).0 };
    json!({REVISION: revision.to_string(), DESIRED: n.to_string(), MAX_REPLICAS: max.to_string()})
}

fn scale(plan: &mut Plan, d: &Value, rs: &Value, to: i64, revision: Option<i64>) {
    let from = replicas(rs);
    let mut ann = rs_annotations(d, revision.unwrap_or_else(|| self::revision(rs)));
    if revision.is_some() {
        if let Some(c) = d
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CHANGE_CAUSE))
        {
            ann[CHANGE_CAUSE] = c.clone();
        }
    }
    let cur = rs["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ann_same = ann
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| cur.get(k) == Some(v));
    if from == to && ann_same {
        return;
    }
    let patch = json!({"metadata": {"annotations": ann, "resourceVersion": rs["metadata"]["resourceVersion"]},
        "spec": {"replicas": to}});
    if to > from {
        plan.events.push(format!(
            "Scaled up replica set {} from {from} to {to}",
            name(rs)
        ));
    } else if to < from {
        plan.events.push(format!(
            "Scaled down replica set {} from {from} to {to}",
            name(rs)
        ));
    }
    plan.update.push((rs.clone(), patch));
}

fn condition(t: &str, status: &str, reason: &str, msg: &str, now: &str) -> Value {
    json!({"type": t, "status": status, "reason": reason, "message": msg,
        "lastUpdateTime": now, "lastTransitionTime": now})
}

/// Put `c` among `conds`, keeping lastTransitionTime when the status is unchanged (and
/// lastUpdateTime too when nothing changed at all, unless `touch`).
fn set_condition(conds: &mut Vec<Value>, mut c: Value, touch: bool) {
    if let Some(old) = conds.iter_mut().find(|o| o["type"] == c["type"]) {
        if old["status"] == c["status"] {
            c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            if !touch && old["reason"] == c["reason"] && old["message"] == c["message"] {
                c["lastUpdateTime"] = old["lastUpdateTime"].clone();
            }
        }
        *old = c;
    } else {
        conds.push(c);
    }
}

/// One sync of Deployment `d` against the ReplicaSets of its namespace.
pub fn reconcile(d: &Value, all: &[Value], now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut rss = owned(d, all, &mut plan);
    rss.retain(|r| !deleting(r));
    let want = replicas(d);
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let mut collision = d["status"]["collisionCount"].as_i64().unwrap_or(0);
    let tmpl = without_hash(&d["spec"]["template"]);
    // The oldest matching one is the new RS (kube's FindNewReplicaSet).
    rss.sort_by_key(|r| {
        (
            crate::str_at(r, "/metadata/creationTimestamp").to_string(),
            name(r).to_string(),
        )
    });
    let new_idx = rss
        .iter()
        .position(|r| without_hash(&r["spec"]["template"]) == tmpl);
    let max_old = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, r)| revision(r))
        .max()
        .unwrap_or(0);
    let mut new_rs = new_idx.map(|i| rss[i].clone());
    let old: Vec<Value> = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, r)| r.clone())
        .collect();
    let mut created = false;
    let (surge, unavail) = if recreate(d) {
        (0, want)
    } else {
        fenceposts(d)
    };
    let deleting_d = deleting(d);

    if !deleting_d && !paused {
        let new_rev = max_old + 1;
        if recreate(d) {
            let mut waiting = false;
            for r in &old {
                if replicas(r) > 0 {
                    scale(&mut plan, d, r, 0, None);
                    waiting = true;
                } else if status_i(r, "replicas") > 0 {
                    waiting = true;
                }
            }
            match &new_rs {
                _ if waiting => plan.again = true,
                Some(n) => {
                    let rev = (revision(n) <= max_old).then_some(new_rev);
                    scale(&mut plan, d, n, want, rev.or(Some(revision(n))));
                }
                None => created = true,
            }
            if created {
                plan.create = Some(new_replica_set(
                    d,
                    &pod_template_hash(&d["spec"]["template"], collision),
                    want,
                    new_rev,
                ));
            }
        } else {
            let total: i64 = rss.iter().map(replicas).sum();
            let cur_new = new_rs.as_ref().map(replicas).unwrap_or(0);
            let old_active = old.iter().any(|r| replicas(r) > 0);
            let target_new = if !old_active || cur_new >= want {
                want
            } else {
                let room = (want + surge - total).max(0);
                cur_new + room.min(want - cur_new)
            };
            match &new_rs {
                Some(n) => {
                    let rev = (revision(n) <= max_old).then_some(new_rev);
                    scale(&mut plan, d, n, target_new, rev.or(Some(revision(n))));
                }
                None => {
                    created = true;
                    plan.create = Some(new_replica_set(
                        d,
                        &pod_template_hash(&d["spec"]["template"], collision),
                        target_new,
                        new_rev,
                    ));
                }
            }
            // Scale old ones down (kube's reconcileOldReplicaSets).
            let new_spec = if created { 0 } else { cur_new };
            let new_avail = new_rs
                .as_ref()
                .map(|n| status_i(n, "availableReplicas"))
                .unwrap_or(0);
            let min_avail = want - unavail;
            let all_pods: i64 = total;
            let max_down = all_pods - min_avail - (new_spec - new_avail);
            let mut olds: Vec<(Value, i64)> = old
                .iter()
                .filter(|r| replicas(r) > 0)
                .map(|r| (r.clone(), replicas(r)))
                .collect();
            if max_down > 0 && !olds.is_empty() {
                // First the unhealthy replicas, then by availability.
                let mut left = max_down;
                for (r, to) in olds.iter_mut() {
                    let unhealthy = (*to - status_i(r, "availableReplicas")).max(0);
                    let n = unhealthy.min(left);
                    *to -= n;
                    left -= n;
                }
                let total_avail: i64 = rss.iter().map(|r| status_i(r, "availableReplicas")).sum();
                let mut down = (total_avail - min_avail).max(0).min(left);
                for (_, to) in olds.iter_mut() {
                    let n = (*to).min(down);
                    *to -= n;
                    down -= n;
                }
            }
            for (r, to) in &olds {
                if *to != replicas(r) {
                    scale(&mut plan, d, r, *to, None);
                }
            }
        }
        if let Some(c) = &plan.create {
            // A name taken by a ReplicaSet with another template: bump collisionCount.
            if all.iter().any(|r| name(r) == name(c)) {
                plan.create = None;
                plan.events.clear();
                collision += 1;
                plan.again = true;
                created = false;
            } else if replicas(c) > 0 {
                plan.events.push(format!(
                    "Scaled up replica set {} from 0 to {}",
                    name(c),
                    replicas(c)
                ));
            }
        }
        if created {
            new_rs = plan.create.clone();
        }
    } else if !deleting_d {
        // Paused: no rollout progress, but a scale with no rollout under way still applies.
        if let Some(n) = &new_rs {
            if old.iter().all(|r| replicas(r) == 0) && replicas(n) != want {
                scale(&mut plan, d, n, want, None);
            }
        }
    }

    // History: old ReplicaSets at 0 beyond revisionHistoryLimit, oldest revision first.
    let limit = d["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let mut idle: Vec<&Value> = old
        .iter()
        .filter(|r| {
            replicas(r) == 0
                && status_i(r, "replicas") == 0
                && !plan.update.iter().any(|(u, _)| uid(u) == uid(r))
        })
        .collect();
    if idle.len() > limit && !deleting_d {
        idle.sort_by_key(|r| revision(r));
        plan.delete = idle[..idle.len() - limit]
            .iter()
            .map(|r| (*r).clone())
            .collect();
    }

    // The Deployment's revision annotation follows the new RS's.
    if let Some(n) = &new_rs {
        let rev = plan
            .update
            .iter()
            .find(|(u, _)| name(u) == name(n))
            .and_then(|(_, p)| {
                p["metadata"]["annotations"][REVISION]
                    .as_str()
                    .map(String::from)
            })
            .or_else(|| {
                n["metadata"]["annotations"][REVISION]
                    .as_str()
                    .map(String::from)
            });
        if let Some(rev) = rev {
            if d["metadata"]["annotations"][REVISION].as_str() != Some(rev.as_str()) {
                plan.annotations = Some(json!({REVISION: rev}));
            }
        }
    }

    // Status (kube's calculateStatus and the progress conditions).
    let spec_total: i64 = rss.iter().map(replicas).sum();
    let actual: i64 = rss.iter().map(|r| status_i(r, "replicas")).sum();
    let ready: i64 = rss.iter().map(|r| status_i(r, "readyReplicas")).sum();
    let avail: i64 = rss.iter().map(|r| status_i(r, "availableReplicas")).sum();
    let updated = if created {
        0
    } else {
        new_rs
            .as_ref()
            .map(|n| status_i(n, "replicas"))
            .unwrap_or(0)
    };
    let mut conds: Vec<Value> = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if avail >= want - unavail {
        set_condition(
            &mut conds,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &stamp,
            ),
            false,
        );
    } else {
        set_condition(
            &mut conds,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &stamp,
            ),
            false,
        );
    }
    let new_name = new_rs
        .as_ref()
        .map(|n| name(n).to_string())
        .unwrap_or_default();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let complete = updated == want
        && actual == want
        && avail >= want
        && !created
        && new_rs.as_ref().is_some_and(|n| replicas(n) == want)
        && old.iter().all(|r| replicas(r) == 0);
    let prev = conds.iter().find(|c| c["type"] == "Progressing").cloned();
    let prev_reason = prev
        .as_ref()
        .map(|c| c["reason"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    if paused {
        set_condition(
            &mut conds,
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                &stamp,
            ),
            false,
        );
    } else if created {
        let msg = format!("Created new replica set \"{new_name}\"");
        set_condition(
            &mut conds,
            condition("Progressing", "True", "NewReplicaSetCreated", &msg, &stamp),
            true,
        );
    } else if complete {
        let msg = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
        set_condition(
            &mut conds,
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &msg,
                &stamp,
            ),
            false,
        );
    } else if new_rs.is_some() {
        let old_status = &d["status"];
        let moved = !plan.update.is_empty()
            || [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ]
            .iter()
            .zip([actual, updated, ready, avail])
            .any(|(k, v)| {
                old_status[*k].as_i64().unwrap_or(0) != v
                    && (*k != "availableReplicas" || v > old_status[*k].as_i64().unwrap_or(0))
            });
        let since = prev.as_ref().and_then(|c| time_at(c, "/lastUpdateTime"));
        let timed_out = prev_reason == "ProgressDeadlineExceeded"
            || (!moved
                && since.is_some_and(|t| (now - t).num_seconds() > deadline)
                && prev_reason != "NewReplicaSetAvailable");
        if timed_out && !moved {
            let msg = format!("ReplicaSet \"{new_name}\" has timed out progressing.");
            set_condition(
                &mut conds,
                condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &msg,
                    &stamp,
                ),
                false,
            );
        } else if prev.is_none() {
            let msg = format!("Found new replica set \"{new_name}\"");
            set_condition(
                &mut conds,
                condition("Progressing", "True", "FoundNewReplicaSet", &msg, &stamp),
                false,
            );
        } else if moved
            || prev.is_none()
            || prev_reason == "NewReplicaSetAvailable"
            || prev_reason == "DeploymentPaused"
        {
            let msg = format!("ReplicaSet \"{new_name}\" is progressing.");
            set_condition(
                &mut conds,
                condition("Progressing", "True", "ReplicaSetUpdated", &msg, &stamp),
                moved,
            );
        }
    }
    if !complete && !paused {
        plan.again = true;
    }
    conds.sort_by_key(|c| c["type"] != "Available");
    let mut status = json!({"observedGeneration": generation, "replicas": actual,
        "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": avail,
        "unavailableReplicas": (spec_total - avail).max(0), "conditions": conds});
    if collision > 0 {
        status["collisionCount"] = json!(collision);
    }
    plan.status = status;
    plan
}

/// Whether the reported status differs from `want`.
pub fn status_changed(d: &Value, want: &Value) -> bool {
    let s = &d["status"];
    [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "collisionCount",
    ]
    .iter()
    .any(|k| s[k].as_i64().unwrap_or(0) != want[k].as_i64().unwrap_or(0))
        || s["conditions"] != want["conditions"]
}

#[cfg(test)]
mod tests;
