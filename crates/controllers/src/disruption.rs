//! PodDisruptionBudget status (kube's pkg/controller/disruption): expected pods from the
//! controllers' scale, desired and current healthy pods, disruptions allowed, the
//! DisruptionAllowed condition, and the disruptedPods the Eviction API recorded.

use crate::{controller_ref, deleting, name, pod, selector, time_at};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// A pod's controller (uid) and its replicas, or why there is none.
pub type ScaleOf<'a> = dyn Fn(&Value) -> Result<(String, i64), String> + 'a;

/// How long an eviction recorded in disruptedPods is waited for (kube's DeletionTimeout).
pub const DELETION_TIMEOUT_SECS: i64 = 120;

/// The pods of the PDB's namespace its selector picks (null selects none, `{}` all).
pub fn selected<'a, P: std::borrow::Borrow<Value>>(pdb: &Value, pods: &'a [P]) -> Vec<&'a Value> {
    let Some(sel) = pdb.pointer("/spec/selector").and_then(selector) else {
        return Vec::new();
    };
    pods.iter()
        .map(|p| p.borrow())
        .filter(|p| sel.matches(crate::labels_ref(p)))
        .collect()
}

/// `value` (an IntOrString) against `total`, percentages rounded up.
pub fn scaled(value: &Value, total: i64) -> Result<(i64, bool), String> {
    match value {
        Value::Number(n) => Ok((n.as_i64().unwrap_or(0), false)),
        Value::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok(((pct * total + 99) / 100, true))
        }
        _ => Err("invalid IntOrString".into()),
    }
}

/// Sum of the scales of the pods' controllers; `scale(pod)` names the pod's controller
/// (uid) and its replicas, or says why it cannot.
fn expected_scale(pods: &[&Value], scale: &ScaleOf<'_>) -> Result<i64, String> {
    let mut seen = std::collections::HashMap::new();
    for p in pods {
        if controller_ref(p).is_none() {
            return Err(format!("found no controller ref for pod {:?}", name(p)));
        }
        let (uid, n) = scale(p)?;
        seen.insert(uid, n);
    }
    Ok(seen.values().sum())
}

/// (expectedPods, desiredHealthy) as kube's getExpectedPodCount.
fn expected(pdb: &Value, pods: &[&Value], scale: &ScaleOf<'_>) -> Result<(i64, i64), String> {
    let spec = &pdb["spec"];
    if let Some(mu) = spec.get("maxUnavailable").filter(|v| !v.is_null()) {
        let expected = expected_scale(pods, scale)?;
        let (max, _) = scaled(mu, expected)?;
        return Ok((expected, (expected - max).max(0)));
    }
    if let Some(ma) = spec.get("minAvailable").filter(|v| !v.is_null()) {
        if ma.is_number() {
            return Ok((pods.len() as i64, ma.as_i64().unwrap_or(0)));
        }
        let expected = expected_scale(pods, scale)?;
        let (min, _) = scaled(ma, expected)?;
        return Ok((expected, min));
    }
    Ok((0, 0))
}

fn condition(
    old: &Value,
    allowed: bool,
    reason: &str,
    message: &str,
    generation: &Value,
    now: &str,
) -> Value {
    let status = if allowed { "True" } else { "False" };
    let prev = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["type"] == "DisruptionAllowed"));
    let since = match prev {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    json!({"type": "DisruptionAllowed", "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": since})
}

/// The status `pdb` should have, given the pods of its namespace.
pub fn status<P: std::borrow::Borrow<Value>>(
    pdb: &Value,
    pods: &[P],
    scale: &ScaleOf<'_>,
    now: DateTime<Utc>,
) -> Value {
    let generation = pdb
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(0));
    let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let pods = selected(pdb, pods);
    let (expected, desired) = match expected(pdb, &pods, scale) {
        Ok(x) => x,
        Err(e) => {
            let mut s = pdb["status"].clone();
            if !s.is_object() {
                s = json!({});
            }
            s["disruptionsAllowed"] = json!(0);
            s["observedGeneration"] = generation.clone();
            s["conditions"] = json!([condition(pdb, false, "SyncFailed", &e, &generation, &stamp)]);
            return s;
        }
    };
    let mut disrupted = Map::new();
    if let Some(m) = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
    {
        for (pod_name, t) in m {
            let live = pods.iter().any(|p| name(p) == pod_name && !deleting(p));
            let fresh = time_at(t, "")
                .is_some_and(|t| t + chrono::Duration::seconds(DELETION_TIMEOUT_SECS) > now);
            if live && fresh {
                disrupted.insert(pod_name.clone(), t.clone());
            }
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| !disrupted.contains_key(name(p)) && !deleting(p) && pod::ready(p))
        .count() as i64;
    let mut allowed = healthy - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let (reason, ok) = if allowed > 0 {
        ("SufficientPods", true)
    } else {
        ("InsufficientPods", false)
    };
    let mut s = json!({"observedGeneration": generation, "currentHealthy": healthy,
        "desiredHealthy": desired, "disruptionsAllowed": allowed, "expectedPods": expected,
        "conditions": [condition(pdb, ok, reason, "", &generation, &stamp)]});
    if !disrupted.is_empty() {
        s["disruptedPods"] = Value::Object(disrupted);
    }
    s
}

/// Whether `want` differs from the PDB's status in what the controller owns.
pub fn status_changed(pdb: &Value, want: &Value) -> bool {
    let old = &pdb["status"];
    let strip = |c: &Value| {
        c.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["type"].clone(),
                            c["status"].clone(),
                            c["reason"].clone(),
                            c["message"].clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    [
        "observedGeneration",
        "currentHealthy",
        "desiredHealthy",
        "disruptionsAllowed",
        "expectedPods",
    ]
    .iter()
    .any(|k| old[k].as_i64().unwrap_or(0) != want[k].as_i64().unwrap_or(0))
        || strip(&old["conditions"]) != strip(&want["conditions"])
        || old["disruptedPods"].as_object().map(Map::len).unwrap_or(0)
            != want["disruptedPods"].as_object().map(Map::len).unwrap_or(0)
}

#[cfg(test)]
mod tests;
