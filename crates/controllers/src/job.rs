//! Job (kube's pkg/controller/job): pods up to parallelism until `completions` succeed
//! (NonIndexed or Indexed), failed pods counted against backoffLimit with exponential backoff
//! (10 s, 20 s, … up to 6 min) before replacements, activeDeadlineSeconds, the
//! SuccessCriteriaMet/Complete and FailureTarget/Failed conditions, ttlSecondsAfterFinished.

use crate::{controller_ref, deleting, name, pod, str_at, time_at, uid};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub const INDEX: &str = "batch.kubernetes.io/job-completion-index";
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// Longest backoff before a failed pod is replaced (kube's MaxJobBackOff).
pub const MAX_BACKOFF_SECS: i64 = 360;

/// What one sync of a Job should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Pods to create: a completion index each for Indexed jobs, None otherwise.
    pub create: Vec<Option<i64>>,
    /// Pods to delete (active pods of a finished job).
    pub delete: Vec<Value>,
    /// The status to report.
    pub status: Value,
    /// Events to record: (warning, reason, message).
    pub events: Vec<(bool, &'static str, String)>,
    /// Look again after this many seconds (backoff, deadline, ttl).
    pub requeue_secs: Option<i64>,
    /// ttlSecondsAfterFinished has passed: delete the Job (propagation Background).
    pub delete_job: bool,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn condition(job: &Value, ty: &str) -> Option<Value> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == "True")
        .cloned()
}

pub fn finished(job: &Value) -> bool {
    condition(job, "Complete").is_some() || condition(job, "Failed").is_some()
}

fn indexed(job: &Value) -> bool {
    str_at(job, "/spec/completionMode") == "Indexed"
}

pub fn pod_index(p: &Value) -> Option<i64> {
    p.pointer(&format!(
        "/metadata/annotations/{}",
        INDEX.replace('/', "~1")
    ))
    .or_else(|| p.pointer(&format!("/metadata/labels/{}", INDEX.replace('/', "~1"))))
    .and_then(Value::as_str)
    .and_then(|s| s.parse().ok())
}

pub fn owner_ref(job: &Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "name": name(job), "uid": uid(job),
        "controller": true, "blockOwnerDeletion": true})
}

/// A new pod from the template, with the job labels (and the index for Indexed jobs).
pub fn pod_from_template(job: &Value, index: Option<i64>) -> Value {
    let t = &job["spec"]["template"];
    let gen = match index {
        Some(i) => format!("{}-{i}-", name(job)),
        None => format!("{}-", name(job)),
    };
    let mut meta = json!({"generateName": gen, "namespace": crate::namespace(job),
        "ownerReferences": [owner_ref(job)]});
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = t
            .pointer(&format!("/metadata/{k}"))
            .filter(|v| !v.is_null())
        {
            meta[k] = v.clone();
        }
    }
    for k in ["labels", "annotations"] {
        if !meta[k].is_object() {
            meta[k] = json!({});
        }
    }
    for (k, v) in [
        (CONTROLLER_UID, uid(job)),
        ("controller-uid", uid(job)),
        (JOB_NAME, name(job)),
        ("job-name", name(job)),
    ] {
        meta["labels"][k] = json!(v);
    }
    let mut spec = t["spec"].clone();
    if let Some(i) = index {
        meta["labels"][INDEX] = json!(i.to_string());
        meta["annotations"][INDEX] = json!(i.to_string());
        if let Some(cs) = spec["containers"].as_array_mut() {
            for c in cs {
                let mut env = c["env"].as_array().cloned().unwrap_or_default();
                env.retain(|e| e["name"] != "JOB_COMPLETION_INDEX");
                env.push(
                    json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef":
                    {"fieldPath": format!("metadata.annotations['{INDEX}']")}}}),
                );
                c["env"] = json!(env);
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// When a pod ended (its last condition change, else its creation).
fn ended(p: &Value) -> Option<DateTime<Utc>> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| time_at(c, "/lastTransitionTime"))
        .max()
        .or_else(|| time_at(p, "/metadata/creationTimestamp"))
}

/// kube's completedIndexes format: "0-2,5".
fn ranges(ix: &BTreeSet<i64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let v: Vec<i64> = ix.iter().copied().collect();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn cond(ty: &str, reason: &str, msg: &str, now: DateTime<Utc>) -> Value {
    json!({"type": ty, "status": "True", "reason": reason, "message": msg,
        "lastProbeTime": stamp(now), "lastTransitionTime": stamp(now)})
}

/// restartPolicy OnFailure: the restarts of the running and pending pods' containers count
/// against backoffLimit (kube's pastBackoffLimitOnFailure).
fn past_backoff_limit_on_failure(job: &Value, owned: &[&Value], limit: i64) -> bool {
    if str_at(job, "/spec/template/spec/restartPolicy") != "OnFailure" {
        return false;
    }
    let restarts: i64 = owned
        .iter()
        .filter(|p| matches!(pod::phase(p), "Running" | "Pending"))
        .flat_map(|p| {
            ["initContainerStatuses", "containerStatuses"]
                .into_iter()
                .flat_map(move |k| p["status"][k].as_array().into_iter().flatten())
        })
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// One sync of `job` against the pods of its namespace.
pub fn reconcile<P: std::borrow::Borrow<Value>>(
    job: &Value,
    pods: &[P],
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan {
        status: job["status"].clone(),
        ..Plan::default()
    };
    if !plan.status.is_object() {
        plan.status = json!({});
    }
    let me = uid(job);
    if finished(job) {
        // Its pods still going: active counts down to 0 as they go (kube's final status).
        let active: Vec<&Value> = pods
            .iter()
            .map(|p| p.borrow())
            .filter(|p| controller_ref(p).is_some_and(|r| r["uid"] == me))
            .filter(|p| pod::active(p))
            .collect();
        plan.status["active"] = json!(active.len());
        plan.status["ready"] = json!(active.iter().filter(|p| pod::ready(p)).count());
        plan.delete = active.into_iter().cloned().collect();
        if let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() {
            let at = time_at(job, "/status/completionTime").or_else(|| {
                condition(job, "Failed").and_then(|c| time_at(&c, "/lastTransitionTime"))
            });
            let left = at.map_or(0, |t| {
                (t + chrono::Duration::seconds(ttl) - now).num_seconds()
            });
            if left <= 0 {
                plan.delete_job = !deleting(job);
            } else {
                plan.requeue_secs = Some(left);
            }
        }
        return plan;
    }
    let owned: Vec<&Value> = pods
        .iter()
        .map(|p| p.borrow())
        .filter(|p| controller_ref(p).is_some_and(|r| r["uid"] == me))
        .collect();
    let active: Vec<&Value> = owned.iter().copied().filter(|p| pod::active(p)).collect();
    let failed: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|p| pod::phase(p) == "Failed")
        .collect();
    let ok: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|p| pod::phase(p) == "Succeeded")
        .collect();
    let is_indexed = indexed(job);
    let completions = job["spec"]["completions"].as_i64();
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
    let done_ix: BTreeSet<i64> = ok
        .iter()
        .filter_map(|p| pod_index(p))
        .filter(|i| completions.is_none_or(|c| *i < c))
        .collect();
    let succeeded = if is_indexed {
        done_ix.len() as i64
    } else {
        ok.len() as i64
    };
    let start = time_at(job, "/status/startTime").unwrap_or(now);
    let s = &mut plan.status;
    s["startTime"] = json!(stamp(start));
    s["active"] = json!(active.len());
    s["succeeded"] = json!(succeeded);
    s["failed"] = json!(failed.len());
    s["ready"] = json!(active.iter().filter(|p| pod::ready(p)).count());
    if is_indexed {
        s["completedIndexes"] = json!(ranges(&done_ix));
    }
    let mut conds = s["conditions"].as_array().cloned().unwrap_or_default();
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .map(|d| start + chrono::Duration::seconds(d));
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded >= 1 && active.is_empty(),
    };
    let failure = if failed.len() as i64 > backoff_limit
        || past_backoff_limit_on_failure(job, &owned, backoff_limit)
    {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline.is_some_and(|d| now >= d) {
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if complete {
        conds.push(cond(
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        ));
        conds.push(cond(
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        ));
        plan.status["completionTime"] = json!(stamp(now));
        plan.events
            .push((false, "Completed", "Job completed".into()));
        plan.delete = active.iter().map(|p| (*p).clone()).collect();
    } else if let Some((reason, msg)) = failure {
        conds.push(cond("FailureTarget", reason, msg, now));
        conds.push(cond("Failed", reason, msg, now));
        plan.events.push((true, reason, msg.into()));
        plan.delete = active.iter().map(|p| (*p).clone()).collect();
    } else if !deleting(job) && job["spec"]["suspend"].as_bool() != Some(true) {
        let need = match completions {
            Some(c) => (c - succeeded).min(parallelism),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let missing = need - active.len() as i64;
        // Backoff after failures: 10 s · 2^(failures-1) since the last failure.
        let wait = failed
            .iter()
            .filter_map(|p| ended(p))
            .max()
            .and_then(|last| {
                let secs = (10i64 << (failed.len() as u32 - 1).min(10)).min(MAX_BACKOFF_SECS);
                let left = (last + chrono::Duration::seconds(secs) - now).num_seconds();
                (left > 0).then_some(left)
            });
        if missing > 0 {
            if let Some(w) = wait {
                plan.requeue_secs = Some(w);
            } else if is_indexed {
                let busy: BTreeSet<i64> = active.iter().filter_map(|p| pod_index(p)).collect();
                plan.create = (0..completions.unwrap_or(1))
                    .filter(|i| !done_ix.contains(i) && !busy.contains(i))
                    .take(missing as usize)
                    .map(Some)
                    .collect();
            } else {
                plan.create = vec![None; missing as usize];
            }
        }
        if let Some(d) = deadline {
            let left = (d - now).num_seconds().max(1);
            plan.requeue_secs = Some(plan.requeue_secs.map_or(left, |r| r.min(left)));
        }
    }
    plan.status["conditions"] = json!(conds);
    if conds.is_empty() {
        plan.status.as_object_mut().map(|m| m.remove("conditions"));
    }
    plan
}

/// Whether the reported status differs from `want`.
pub fn status_changed(job: &Value, want: &Value) -> bool {
    let have = &job["status"];
    ["active", "succeeded", "failed", "ready"]
        .iter()
        .any(|k| have[k].as_i64().unwrap_or(0) != want[k].as_i64().unwrap_or(0))
        || [
            "startTime",
            "completionTime",
            "completedIndexes",
            "conditions",
        ]
        .iter()
        .any(|k| have[k] != want[k])
}

#[cfg(test)]
mod tests;
