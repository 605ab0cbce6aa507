//! StatefulSet (kube v1.32's pkg/controller/statefulset): pods `<set>-<ordinal>` for ordinals
//! `start..start+replicas`, created in order and each only when its predecessors are Running
//! and Ready (OrderedReady) or all at once (Parallel); condemned pods (ordinals outside the
//! range) deleted highest first, one at a time under OrderedReady; failed pods deleted to be
//! recreated under the same name; revisions as ControllerRevisions ([`revision`]); RollingUpdate
//! from the highest ordinal down to `partition`, one pod at a time (or `maxUnavailable`), or
//! OnDelete; claims from volumeClaimTemplates ([`identity`]); status.

pub mod identity;
pub mod revision;

use crate::{controller_ref, deleting, labels, name, pod, selector, str_at, uid};
use chrono::{DateTime, Utc};
use identity::{ordinal, replicas, revision_of, start};
use revision::Revisions;
use serde_json::{json, Value};

/// Why a pod is deleted (for the log; the event is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Phase Failed or Succeeded: recreated under the same name once gone.
    Recreate,
    /// Ordinal outside the range.
    ScaleDown,
    /// Not on the update revision.
    Update,
}

/// What one sync of a StatefulSet should do, in this order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Orphans to adopt and pods to release; when any, nothing else is planned this sync.
    pub adopt: Vec<Value>,
    pub release: Vec<Value>,
    /// Revision to create / to renumber (before any pod is created).
    pub create_revision: Option<Value>,
    pub renumber_revision: Option<(String, i64)>,
    /// Claims to create before the pods that mount them.
    pub create_claims: Vec<Value>,
    /// Claims whose ownerReferences should become the given list.
    pub claim_refs: Vec<(Value, Vec<Value>)>,
    /// Pods to create, in order.
    pub create: Vec<Value>,
    pub delete: Vec<(Value, Why)>,
    /// Label patches restoring a pod's identity.
    pub relabel: Vec<(Value, Value)>,
    /// Revisions to delete (history beyond the limit).
    pub prune: Vec<String>,
    pub status: Value,
    /// Look again after this many seconds (minReadySeconds pending).
    pub requeue_after: Option<i64>,
}

fn running_ready(p: &Value) -> bool {
    pod::phase(p) == "Running" && pod::ready(p)
}

fn available(p: &Value, min_ready: i64, now: DateTime<Utc>) -> bool {
    running_ready(p) && pod::available(p, min_ready, now)
}

fn healthy(p: &Value) -> bool {
    running_ready(p) && !deleting(p)
}

fn terminated(p: &Value) -> bool {
    matches!(pod::phase(p), "Failed" | "Succeeded")
}

pub fn ordered_ready(sts: &Value) -> bool {
    str_at(sts, "/spec/podManagementPolicy") != "Parallel"
}

fn rolling(sts: &Value) -> bool {
    str_at(sts, "/spec/updateStrategy/type") != "OnDelete"
}

fn partition(sts: &Value) -> Option<i64> {
    sts.pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
}

/// maxUnavailable resolved against replicas (percentages rounded up, at least 1), when set.
pub fn max_unavailable(sts: &Value) -> Option<i64> {
    let v = sts.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")?;
    let n = match v {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) if s.ends_with('%') => {
            let pct: i64 = s[..s.len() - 1].parse().ok()?;
            (pct * replicas(sts) + 99) / 100
        }
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(n.max(1))
}

/// The pods of the namespace `sts` controls, adopting orphans whose name is `<set>-<n>` and
/// whose labels match, releasing its pods that stopped matching.
fn claim<'a>(sts: &Value, pods: &'a [Value], plan: &mut Plan) -> Vec<&'a Value> {
    let sel = selector(&sts["spec"]["selector"]).filter(|s| !s.is_empty());
    let me = uid(sts);
    let mut owned = Vec::new();
    for p in pods {
        let matches = sel.as_ref().is_some_and(|s| s.matches(&labels(p)));
        match controller_ref(p) {
            Some(r) if r["uid"] == me => {
                if matches {
                    owned.push(p);
                } else if !deleting(sts) {
                    plan.release.push(p.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches && !deleting(sts) && !deleting(p) && ordinal(sts, p).is_some() {
                    plan.adopt.push(p.clone());
                }
            }
        }
    }
    owned
}

/// One sync of `sts` against the pods, ControllerRevisions and claims of its namespace.
pub fn reconcile(
    sts: &Value,
    pods: &[Value],
    revisions: &[Value],
    claims: &[Value],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let owned = claim(sts, pods, &mut plan);
    let history = revision::owned(sts, revisions);
    let revs = revision::choose(sts, &history);
    plan.status = status(sts, &owned, &revs, now);
    if !plan.adopt.is_empty() || !plan.release.is_empty() {
        return plan;
    }
    plan.create_revision = revs.create.clone();
    plan.renumber_revision = revs.renumber.clone();
    let pod_revs: Vec<&str> = owned.iter().map(|p| revision_of(p)).collect();
    plan.prune = revision::prune(sts, &history, &revs, &pod_revs);
    if deleting(sts) {
        return plan;
    }
    let (first, n) = (start(sts), replicas(sts).max(0));
    let mut slots: Vec<Option<&Value>> = vec![None; n as usize];
    let mut condemned: Vec<(i64, &Value)> = Vec::new();
    for p in &owned {
        match ordinal(sts, p) {
            Some(o) if o >= first && o < first + n => slots[(o - first) as usize] = Some(p),
            Some(o) => condemned.push((o, p)),
            None => {}
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
    claim_refs(sts, &slots, &condemned, claims, &mut plan);
    let monotonic = ordered_ready(sts);
    let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let first_unhealthy = slots
        .iter()
        .map(|s| s.filter(|p| !healthy(p)))
        .find(|s| s.is_some())
        .flatten()
        .or_else(|| condemned.iter().map(|c| c.1).find(|p| !healthy(p)))
        .map(|p| uid(p).to_string());
    let cur_template = revision::template(&revs.current);
    let upd_template = sts["spec"]["template"].clone();
    let (cur_name, upd_name) = (name(&revs.current), name(&revs.update));
    let cur_replicas = sts["status"]["currentReplicas"].as_i64().unwrap_or(0);
    let new_pod = |o: i64| {
        let old = rolling(sts)
            && match partition(sts) {
                Some(p) => o < first + p,
                None => o < first + cur_replicas,
            };
        if old {
            identity::new_pod(sts, &cur_template, o, cur_name)
        } else {
            identity::new_pod(sts, &upd_template, o, upd_name)
        }
    };
    let mut blocked = false;
    for (i, slot) in slots.iter().enumerate() {
        let o = first + i as i64;
        let Some(p) = slot else {
            missing_claims(sts, o, claims, &mut plan);
            plan.create.push(new_pod(o));
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        };
        if terminated(p) {
            if !deleting(p) {
                plan.delete.push(((*p).clone(), Why::Recreate));
            }
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        if pod::phase(p) == "Pending" {
            missing_claims(sts, o, claims, &mut plan);
        }
        if monotonic && (deleting(p) || !available(p, min_ready, now)) {
            blocked = true;
            break;
        }
        if let Some(patch) = identity::identity_patch(sts, p, o) {
            plan.relabel.push(((*p).clone(), patch));
        }
    }
    if !blocked {
        for (_, p) in &condemned {
            if deleting(p) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            let first_bad = first_unhealthy.as_deref() == Some(uid(p));
            if monotonic && !available(p, min_ready, now) && !first_bad {
                blocked = true;
                break;
            }
            plan.delete.push(((*p).clone(), Why::ScaleDown));
            if monotonic {
                blocked = true;
                break;
            }
        }
    }
    if !blocked && rolling(sts) {
        update(sts, &slots, upd_name, &mut plan);
    }
    let (ready, avail) = (
        &plan.status["readyReplicas"],
        &plan.status["availableReplicas"],
    );
    if min_ready > 0 && ready != avail {
        plan.requeue_after = Some(min_ready);
    }
    plan
}

/// The rolling update: delete the highest-ordinal pod at or above the partition that is not
/// on the update revision, once every higher one is healthy; with maxUnavailable, as many as
/// it allows.
fn update(sts: &Value, slots: &[Option<&Value>], upd: &str, plan: &mut Plan) {
    let min = partition(sts).unwrap_or(0).max(0) as usize;
    let mut deleted = 0;
    if let Some(max) = max_unavailable(sts) {
        let unavailable = slots.iter().filter(|s| !s.is_some_and(healthy)).count() as i64;
        let mut budget = max - unavailable;
        for s in slots.iter().skip(min).rev() {
            if budget <= 0 {
                break;
            }
            if let Some(p) = s.filter(|p| revision_of(p) != upd && !deleting(p)) {
                plan.delete.push((p.clone(), Why::Update));
                deleted += 1;
                budget -= 1;
            }
        }
    } else {
        for s in slots.iter().skip(min).rev() {
            let Some(p) = s else { break };
            if revision_of(p) != upd && !deleting(p) {
                plan.delete.push(((*p).clone(), Why::Update));
                deleted += 1;
                break;
            }
            if !healthy(p) {
                break;
            }
        }
    }
    let cur = plan.status["currentReplicas"].as_i64().unwrap_or(0);
    plan.status["currentReplicas"] = json!((cur - deleted).max(0));
}

/// Claims of the pod at `ordinal` that do not exist yet.
fn missing_claims(sts: &Value, ordinal: i64, claims: &[Value], plan: &mut Plan) {
    for t in identity::claim_templates(sts) {
        let n = identity::claim_name(sts, &t, ordinal);
        let exists =
            claims.iter().any(|c| name(c) == n) || plan.create_claims.iter().any(|c| name(c) == n);
        if !exists {
            plan.create_claims
                .push(identity::new_claim(sts, &t, ordinal));
        }
    }
}

/// Claims whose ownerReferences the retention policy wants changed.
fn claim_refs(
    sts: &Value,
    slots: &[Option<&Value>],
    condemned: &[(i64, &Value)],
    claims: &[Value],
    plan: &mut Plan,
) {
    let first = start(sts);
    let pods = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|p| (first + i as i64, p)))
        .chain(condemned.iter().copied());
    for (o, p) in pods {
        for t in identity::claim_templates(sts) {
            let n = identity::claim_name(sts, &t, o);
            let Some(c) = claims.iter().find(|c| name(c) == n) else {
                continue;
            };
            let want = identity::claim_owner_refs(sts, c, Some(p), o);
            if want.as_slice() != crate::owner_refs(c) {
                plan.claim_refs.push((c.clone(), want));
            }
        }
    }
}

/// kube's status computation plus completeRollingUpdate.
fn status(sts: &Value, owned: &[&Value], revs: &Revisions, now: DateTime<Utc>) -> Value {
    let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let (cur, upd) = (name(&revs.current), name(&revs.update));
    let (mut replicas, mut ready, mut avail, mut current, mut updated) = (0, 0, 0, 0, 0);
    for p in owned {
        let created = !pod::phase(p).is_empty();
        replicas += created as i64;
        if running_ready(p) {
            ready += 1;
            avail += available(p, min_ready, now) as i64;
        }
        if created && !deleting(p) {
            current += (revision_of(p) == cur) as i64;
            updated += (revision_of(p) == upd) as i64;
        }
    }
    let mut s = json!({"replicas": replicas, "readyReplicas": ready,
        "availableReplicas": avail, "currentReplicas": current, "updatedReplicas": updated,
        "currentRevision": cur, "updateRevision": upd,
        "collisionCount": revs.collision_count,
        "observedGeneration": sts["metadata"]["generation"].as_i64().unwrap_or(0)});
    if rolling(sts) && updated == replicas && ready == replicas {
        s["currentReplicas"] = json!(updated);
        s["currentRevision"] = json!(upd);
    }
    s
}

/// Whether the reported status differs from `want` (absent counters are zero).
pub fn status_changed(sts: &Value, want: &Value) -> bool {
    want.as_object().into_iter().flatten().any(|(k, v)| {
        let have = &sts["status"][k];
        match v {
            Value::Number(n) => have.as_i64().unwrap_or(0) != n.as_i64().unwrap_or(0),
            _ => have != v,
        }
    })
}

#[cfg(test)]
mod tests;
