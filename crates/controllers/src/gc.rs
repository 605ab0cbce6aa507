//! The garbage collector's decisions (kube's garbagecollector.attemptToDeleteItem,
//! processDeletingDependentsItem and orphanDependents) over the ownerReferences graph.

use crate::{deleting, finalizers, owner_refs, uid, FOREGROUND, ORPHAN};
use serde_json::Value;

/// What an ownerReference points at, as the collector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Gone (or a different object under that name now).
    Absent,
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Being deleted in the foreground (deletionTimestamp + `foregroundDeletion`).
    Waiting,
}

/// The state of the owner `r` names, given the object found under its kind/namespace/name.
pub fn classify(found: Option<&Value>, r: &Value) -> Owner {
    match found {
        Some(o) if r["uid"] == uid(o) => {
            if deleting(o) && finalizers(o).contains(&FOREGROUND) {
                Owner::Waiting
            } else {
                Owner::Solid
            }
        }
        _ => Owner::Absent,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependent {
    Keep,
    /// Some owners are gone but others remain: drop the references to these uids.
    RemoveRefs(Vec<String>),
    /// Every owner is gone or waiting: delete it, in the foreground when an owner waits for
    /// it and it has dependents of its own, else with its own finalizer's policy or Background.
    Delete(&'static str),
}

/// What to do with `dep` given the state of each of its owners (in ownerReferences order).
pub fn dependent(dep: &Value, owners: &[Owner], has_dependents: bool) -> Dependent {
    let refs = owner_refs(dep);
    if refs.is_empty() || refs.len() != owners.len() {
        return Dependent::Keep;
    }
    if deleting(dep) && !finalizers(dep).contains(&FOREGROUND) {
        return Dependent::Keep;
    }
    if owners.contains(&Owner::Solid) {
        let gone: Vec<String> = refs
            .iter()
            .zip(owners)
            .filter(|(_, o)| **o == Owner::Absent)
            .filter_map(|(r, _)| r["uid"].as_str().map(str::to_string))
            .collect();
        return if gone.is_empty() {
            Dependent::Keep
        } else {
            Dependent::RemoveRefs(gone)
        };
    }
    if deleting(dep) {
        return Dependent::Keep;
    }
    if owners.contains(&Owner::Waiting) && has_dependents {
        return Dependent::Delete("Foreground");
    }
    let f = finalizers(dep);
    Dependent::Delete(if f.contains(&ORPHAN) {
        "Orphan"
    } else if f.contains(&FOREGROUND) {
        "Foreground"
    } else {
        "Background"
    })
}

/// What to do for an owner being deleted with a GC finalizer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnerPlan {
    /// Orphan: remove the owner's reference from these dependents.
    pub orphan: Vec<Value>,
    /// Foreground: delete these dependents (not yet being deleted).
    pub delete: Vec<Value>,
    /// The finalizer to remove now (dependents done).
    pub remove_finalizer: Option<&'static str>,
}

fn refers<'a>(dep: &'a Value, owner_uid: &str) -> Option<&'a Value> {
    owner_refs(dep).iter().find(|r| r["uid"] == owner_uid)
}

/// `owner` has a deletionTimestamp; `dependents` are the objects referring to its uid.
pub fn owner(owner: &Value, dependents: &[Value]) -> OwnerPlan {
    let mut plan = OwnerPlan::default();
    if !deleting(owner) {
        return plan;
    }
    let me = uid(owner);
    let f = finalizers(owner);
    if f.contains(&ORPHAN) {
        plan.orphan = dependents
            .iter()
            .filter(|d| refers(d, me).is_some())
            .cloned()
            .collect();
        if plan.orphan.is_empty() {
            plan.remove_finalizer = Some(ORPHAN);
        }
        return plan;
    }
    if f.contains(&FOREGROUND) {
        let blocking: Vec<&Value> = dependents
            .iter()
            .filter(|d| refers(d, me).is_some_and(|r| r["blockOwnerDeletion"] == true))
            .collect();
        if blocking.is_empty() {
            plan.remove_finalizer = Some(FOREGROUND);
        }
        plan.delete = dependents
            .iter()
            .filter(|d| refers(d, me).is_some() && !deleting(d))
            .cloned()
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests;
