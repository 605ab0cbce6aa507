//! The namespace controller's decisions (kube's pkg/controller/namespace/deletion): which
//! discovered resources to empty, what is left of each after the deletes, the deletion
//! conditions on the namespace's status, and the `kubernetes` finalizer's removal.

use crate::{finalizers, str_at, time_at};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// The finalizer (in `spec.finalizers`) this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// What kube waits for content held by finalizers before looking again (seconds).
pub const FINALIZER_ESTIMATE_SECS: i64 = 15;

/// A namespaced resource discovery served with the `delete` verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub delete_collection: bool,
    pub list: bool,
}

impl Gvr {
    /// Go's `GroupVersionResource.String()`.
    pub fn go_string(&self) -> String {
        format!(
            "{}/{}, Resource={}",
            self.group, self.version, self.resource
        )
    }
}

/// kube's schema.ParseGroupVersion.
pub fn parse_group_version(gv: &str) -> Result<(String, String), String> {
    if gv.is_empty() || gv == "/" {
        return Ok((String::new(), String::new()));
    }
    match gv.matches('/').count() {
        0 => Ok((String::new(), gv.to_string())),
        1 => {
            let (g, v) = gv.split_once('/').unwrap_or_default();
            Ok((g.to_string(), v.to_string()))
        }
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

/// The resources to empty from APIResourceLists (discovery documents), given preferred
/// version first within each group: namespaced, not subresources, with the `delete` verb
/// (kube's FilteredBy(SupportsAllVerbs{delete}) + GroupVersionResources); a group/resource
/// served in several versions is taken once, from the first list. A groupVersion that does
/// not parse fails the whole set, as kube's GroupVersionResources does.
pub fn deletable(lists: &[Value]) -> Result<Vec<Gvr>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for l in lists {
        let verbs_of = |r: &Value| -> Vec<String> {
            r["verbs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let resources: Vec<&Value> = l["resources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["namespaced"].as_bool() == Some(true))
                    .filter(|r| !str_at(r, "/name").contains('/'))
                    .filter(|r| verbs_of(r).iter().any(|v| v == "delete"))
                    .collect()
            })
            .unwrap_or_default();
        if resources.is_empty() {
            continue;
        }
        let (group, version) = parse_group_version(str_at(l, "/groupVersion"))?;
        for r in resources {
            let name = str_at(r, "/name").to_string();
            if !seen.insert((group.clone(), name.clone())) {
                continue;
            }
            let verbs = verbs_of(r);
            out.push(Gvr {
                group: group.clone(),
                version: version.clone(),
                resource: name,
                delete_collection: verbs.iter().any(|v| v == "deletecollection"),
                list: verbs.iter().any(|v| v == "list"),
            });
        }
    }
    Ok(out)
}

/// How long the namespace's pods may still take to terminate gracefully (kube's
/// estimateGracefulTerminationForPods): the largest terminationGracePeriodSeconds of the
/// non-terminal pods, or 0 once that long has passed since the namespace's deletion.
pub fn pods_estimate(pods: &[Value], ns_deleted_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let estimate = pods
        .iter()
        .filter(|p| !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed"))
        .filter_map(|p| p.pointer("/spec/terminationGracePeriodSeconds")?.as_i64())
        .max()
        .unwrap_or(0)
        .max(0);
    if now - ns_deleted_at >= chrono::Duration::seconds(estimate) {
        0
    } else {
        estimate
    }
}

/// What is left of one resource after its deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remaining {
    /// Seconds to wait before looking again.
    pub estimate: i64,
    pub count: usize,
    /// Finalizer → how many of the remaining objects carry it.
    pub finalizers: BTreeMap<String, usize>,
}

/// kube's tail of deleteAllContentForGroupVersionResource: the items still listed after the
/// deletes, with the graceful-termination `estimate` for this resource. An item that is still
/// there with neither a pending grace period nor a finalizer is an error.
pub fn remaining(
    gvr: &Gvr,
    ns: &str,
    items: &[Value],
    estimate: i64,
) -> Result<Remaining, (Remaining, String)> {
    if items.is_empty() {
        return Ok(Remaining::default());
    }
    let mut f = BTreeMap::new();
    for i in items {
        for x in finalizers(i) {
            *f.entry(x.to_string()).or_insert(0) += 1;
        }
    }
    let r = Remaining {
        estimate,
        count: items.len(),
        finalizers: f,
    };
    if estimate != 0 {
        return Ok(r);
    }
    if !r.finalizers.is_empty() {
        return Ok(Remaining {
            estimate: FINALIZER_ESTIMATE_SECS,
            ..r
        });
    }
    Err((
        Remaining {
            estimate,
            ..Remaining::default()
        },
        format!(
            "unexpected items still remain in namespace: {ns} for gvr: {}",
            gvr.go_string()
        ),
    ))
}

/// What one pass over the namespace's content found.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub discovery_error: Option<String>,
    pub group_version_error: Option<String>,
    pub content_errors: Vec<String>,
    /// (resource, group) → remaining count.
    pub remaining: BTreeMap<(String, String), usize>,
    pub finalizers: BTreeMap<String, usize>,
    pub estimate: i64,
}

impl Pass {
    /// Add one resource's outcome (kube's deleteAllContent loop body).
    pub fn add(&mut self, gvr: &Gvr, outcome: Result<Remaining, (Remaining, String)>) {
        let r = match outcome {
            Ok(r) => r,
            Err((r, e)) => {
                self.content_errors.push(e);
                r
            }
        };
        self.estimate = self.estimate.max(r.estimate);
        if r.count > 0 {
            *self
                .remaining
                .entry((gvr.resource.clone(), gvr.group.clone()))
                .or_insert(0) += r.count;
            for (f, n) in r.finalizers {
                if n > 0 {
                    *self.finalizers.entry(f).or_insert(0) += n;
                }
            }
        }
    }

    /// Done when nothing failed and nothing needs waiting for: the finalizer can go.
    pub fn done(&self) -> bool {
        self.estimate == 0
            && self.discovery_error.is_none()
            && self.group_version_error.is_none()
            && self.content_errors.is_empty()
    }

    /// The failing conditions (type, reason, message); the rest are reported as OK.
    pub fn failing(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        if let Some(e) = &self.discovery_error {
            out.push((
                "NamespaceDeletionDiscoveryFailure",
                "DiscoveryFailed",
                e.clone(),
            ));
        }
        if let Some(e) = &self.group_version_error {
            out.push((
                "NamespaceDeletionGroupVersionParsingFailure",
                "GroupVersionParsingFailed",
                e.clone(),
            ));
        }
        if !self.remaining.is_empty() {
            let mut parts: Vec<String> = self
                .remaining
                .iter()
                .map(|((r, g), n)| format!("{r}.{g} has {n} resource instances"))
                .collect();
            parts.sort();
            out.push((
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
            ));
        }
        if !self.finalizers.is_empty() {
            let mut parts: Vec<String> = self
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            parts.sort();
            out.push((
                "NamespaceFinalizersRemaining",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            ));
        }
        if !self.content_errors.is_empty() {
            let mut msgs = self.content_errors.clone();
            msgs.sort();
            out.push((
                "NamespaceDeletionContentFailure",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ));
        }
        out
    }
}

/// kube's message for discovery that failed for some groups (`group/version: error`).
pub fn discovery_message(failed: &[String]) -> String {
    format!(
        "Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}",
        failed.len(),
        failed.join(", ")
    )
}

/// The condition types this controller maintains, in kube's order, with their OK reason and
/// message.
const CONDITIONS: &[(&str, &str, &str)] = &[
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The namespace's status.conditions after `pass` (kube's updateConditions), or None when
/// nothing changed. `now` stamps new conditions and status transitions.
pub fn conditions(ns: &Value, pass: &Pass, now: &str) -> Option<Vec<Value>> {
    let mut conds: Vec<Value> = ns
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let failing = pass.failing();
    let mut changed = false;
    for (ty, ok_reason, ok_msg) in CONDITIONS {
        let (status, reason, msg) = match failing.iter().find(|(t, _, _)| t == ty) {
            Some((_, r, m)) => ("True", *r, m.clone()),
            None => ("False", *ok_reason, ok_msg.to_string()),
        };
        match conds.iter_mut().find(|c| c["type"] == *ty) {
            None => {
                conds.push(
                    json!({"type": ty, "status": status, "lastTransitionTime": now,
                    "reason": reason, "message": msg}),
                );
                changed = true;
            }
            Some(c) => {
                if c["status"] != status || c["reason"] != reason || c["message"] != msg.as_str() {
                    if c["status"] != status {
                        c["lastTransitionTime"] = json!(now);
                    }
                    c["status"] = json!(status);
                    c["reason"] = json!(reason);
                    c["message"] = json!(msg);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(conds)
}

/// When the namespace's deletion began, if it is being deleted.
pub fn deleted_at(ns: &Value) -> Option<DateTime<Utc>> {
    time_at(ns, "/metadata/deletionTimestamp")
}

/// Whether this controller's finalizer is gone from `spec.finalizers`.
pub fn finalized(ns: &Value) -> bool {
    !spec_finalizers(ns).contains(&FINALIZER)
}

pub fn spec_finalizers(ns: &Value) -> Vec<&str> {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The body for `PUT namespaces/NAME/finalize`: the namespace with `kubernetes` removed
/// from spec.finalizers (the rest sorted and deduplicated, as kube's finalizeNamespace).
pub fn finalize_body(ns: &Value) -> Value {
    let mut rest: Vec<&str> = spec_finalizers(ns)
        .into_iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    rest.sort();
    rest.dedup();
    let mut out = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": ns["metadata"].clone(), "spec": ns["spec"].clone()});
    out["spec"]["finalizers"] = json!(rest);
    out
}

#[cfg(test)]
mod tests;
