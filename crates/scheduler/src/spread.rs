//! PodTopologySpread as kube-scheduler: DoNotSchedule constraints as a filter (matching pods
//! per domain of the eligible nodes — nodeAffinityPolicy / nodeTaintsPolicy — and skew against
//! the global minimum, minDomains), ScheduleAnyway constraints as a score. kube's system
//! default constraints (for pods of Services / ReplicaSets / StatefulSets) are not applied.

use crate::filters::{untolerated_taint, Fail};
use crate::hash::FxMap;
use crate::intern::{value_of, IdSelector};
use crate::node::NodeInfo;
use crate::podinfo::{PodInfo, Spread};
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;

pub(crate) const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub(crate) const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// The constraints over the snapshot's ids: selectors, topology keys, the pod's namespace.
struct Ids {
    sels: Vec<IdSelector>,
    keys: Vec<u32>,
    ns: u32,
}

fn compile(cs: &[Spread], pod: &PodInfo, snap: &Snapshot) -> Ids {
    let interner = snap.interner();
    Ids {
        sels: cs
            .iter()
            .map(|c| IdSelector::new(&c.selector, |s| interner.get(s)))
            .collect(),
        keys: cs.iter().map(|c| interner.get(&c.key)).collect(),
        ns: interner.get(&pod.namespace),
    }
}

/// The node's value ids of `keys`, when it has them all.
fn values(node: &NodeInfo, keys: &[u32], out: &mut Vec<u32>) -> bool {
    out.clear();
    for k in keys {
        match value_of(&node.label_ids, *k) {
            Some(v) => out.push(v),
            None => return false,
        }
    }
    true
}

/// Whether the node counts for the constraint (kube's matchNodeInclusionPolicies).
fn eligible(c: &Spread, pod: &PodInfo, node: &NodeInfo, affinity: &mut Option<bool>) -> bool {
    if c.honor_affinity
        && !*affinity.get_or_insert_with(|| pod.node_affinity.matches(&node.name, &node.labels))
    {
        return false;
    }
    !(c.honor_taints && untolerated_taint(pod, node).is_some())
}

/// Pods on the node (of namespace id `ns`, not terminating) the selector matches; an empty
/// selector counts none, as kube's countPodsMatchSelector.
fn count(node: &NodeInfo, sel: &IdSelector, ns: u32) -> i64 {
    if sel.is_everything() {
        return 0;
    }
    node.keys
        .iter()
        .filter(|k| !k.terminating && k.ns == ns && sel.matches(k.labels()))
        .count() as i64
}

/// kube's PreFilter state: matching pods per domain (value id), per constraint.
#[derive(Debug, Clone)]
pub(crate) struct FilterState {
    keys: Vec<u32>,
    counts: Vec<FxMap<u32, i64>>,
    /// count → how many domains have it (the first key is the global minimum).
    hist: Vec<BTreeMap<i64, usize>>,
    domains: Vec<usize>,
}

pub(crate) fn pre_filter(pod: &PodInfo, snap: &Snapshot) -> Option<FilterState> {
    let cs = &pod.hard_spread;
    if cs.is_empty() {
        return None;
    }
    let ids = compile(cs, pod, snap);
    let mut counts = vec![FxMap::<u32, i64>::default(); cs.len()];
    let mut vals = Vec::new();
    for node in snap.nodes() {
        if !values(node, &ids.keys, &mut vals) {
            continue;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if eligible(c, pod, node, &mut affinity) {
                *counts[i].entry(vals[i]).or_insert(0) += count(node, &ids.sels[i], ids.ns);
            }
        }
    }
    let mut hist = vec![BTreeMap::new(); cs.len()];
    for (i, m) in counts.iter().enumerate() {
        for n in m.values() {
            *hist[i].entry(*n).or_insert(0) += 1;
        }
    }
    Some(FilterState {
        keys: ids.keys,
        domains: counts.iter().map(|m| m.len()).collect(),
        counts,
        hist,
    })
}

impl FilterState {
    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
        for (i, c) in pod.hard_spread.iter().enumerate() {
            let Some(v) = value_of(&node.label_ids, self.keys[i]) else {
                return Err(Fail::unresolvable(ERR_SPREAD_LABEL));
            };
            let mut min = self.hist[i]
                .keys()
                .next()
                .copied()
                .unwrap_or(i32::MAX as i64);
            if (self.domains[i] as i64) < c.min_domains as i64 {
                min = 0;
            }
            let n = self.counts[i].get(&v).copied().unwrap_or(0);
            if n + c.self_match as i64 - min > c.max_skew as i64 {
                return Err(Fail::resolvable(ERR_SPREAD));
            }
        }
        Ok(())
    }

    /// kube's AddPod / RemovePod extension: `p` counted on `node`.
    pub fn update(&mut self, pod: &PodInfo, p: &PodInfo, node: &NodeInfo, delta: i64) {
        let cs = &pod.hard_spread;
        let mut vals = Vec::new();
        if p.namespace != pod.namespace || !values(node, &self.keys, &mut vals) {
            return;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if !c.selector.matches(&p.labels) || !eligible(c, pod, node, &mut affinity) {
                continue;
            }
            let old = self.counts[i].get(&vals[i]).copied();
            let new = old.unwrap_or(0) + delta;
            if let Some(old) = old {
                let h = self.hist[i].get_mut(&old).expect("counted");
                *h -= 1;
                if *h == 0 {
                    self.hist[i].remove(&old);
                }
            }
            *self.hist[i].entry(new).or_insert(0) += 1;
            self.counts[i].insert(vals[i], new);
        }
    }
}

/// The ScheduleAnyway score over `nodes` (normalized 0–100), or None when kube skips it.
pub(crate) fn score(pod: &PodInfo, snap: &Snapshot, nodes: &[&NodeInfo]) -> Option<Vec<i64>> {
    let cs = &pod.soft_spread;
    if cs.is_empty() || snap.is_empty() {
        return None;
    }
    let ids = compile(cs, pod, snap);
    let mut vals = Vec::new();
    // Per feasible node: its value ids (None = ignored, it lacks a key).
    let node_vals: Vec<Option<Vec<u32>>> = nodes
        .iter()
        .map(|n| values(n, &ids.keys, &mut vals).then(|| vals.clone()))
        .collect();
    let mut counts = vec![FxMap::<u32, i64>::default(); cs.len()];
    for v in node_vals.iter().flatten() {
        for (i, c) in cs.iter().enumerate() {
            if c.key != HOSTNAME {
                counts[i].entry(v[i]).or_insert(0);
            }
        }
    }
    let kept = node_vals.iter().filter(|v| v.is_some()).count();
    let weights: Vec<f64> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let size = if c.key == HOSTNAME {
                kept
            } else {
                counts[i].len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    for node in snap.nodes() {
        if !values(node, &ids.keys, &mut vals) {
            continue;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if !eligible(c, pod, node, &mut affinity) {
                continue;
            }
            if let Some(e) = counts[i].get_mut(&vals[i]) {
                *e += count(node, &ids.sels[i], ids.ns);
            }
        }
    }
    let raw: Vec<Option<i64>> = nodes
        .iter()
        .zip(&node_vals)
        .map(|(n, v)| {
            let v = v.as_ref()?;
            let mut s = 0.0;
            for (i, c) in cs.iter().enumerate() {
                let cnt = if c.key == HOSTNAME {
                    count(n, &ids.sels[i], ids.ns)
                } else {
                    counts[i][&v[i]]
                };
                s += cnt as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            Some(s.round() as i64)
        })
        .collect();
    let (mut min, mut max) = (i64::MAX, 0);
    for s in raw.iter().flatten() {
        min = min.min(*s);
        max = max.max(*s);
    }
    Some(
        raw.iter()
            .map(|s| match (s, max) {
                (None, _) => 0,
                (Some(_), 0) => 100,
                (Some(s), _) => 100 * (max + min - s) / max,
            })
            .collect(),
    )
}
