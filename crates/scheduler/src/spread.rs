//! PodTopologySpread as kube-scheduler: DoNotSchedule constraints as a filter (matching pods
//! per domain of the eligible nodes — nodeAffinityPolicy / nodeTaintsPolicy — and skew against
//! the global minimum, minDomains), ScheduleAnyway constraints as a score. kube's system
//! default constraints (for pods of Services / ReplicaSets / StatefulSets) are not applied.

use crate::filters::{untolerated_taint, Fail};
use crate::hash::FxMap;
use crate::node::NodeInfo;
use crate::podinfo::{PodInfo, Spread};
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;

pub(crate) const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub(crate) const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

fn has_keys(node: &NodeInfo, cs: &[Spread]) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.key))
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

/// Pods on the node (of `ns`, not terminating) the selector matches; an empty selector
/// counts none, as kube's countPodsMatchSelector.
fn count(node: &NodeInfo, c: &Spread, ns: &str) -> i64 {
    if c.selector.is_everything() {
        return 0;
    }
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == ns && c.selector.matches(&p.labels))
        .count() as i64
}

/// kube's PreFilter state: matching pods per domain, per constraint.
#[derive(Debug, Clone)]
pub(crate) struct FilterState<'a> {
    counts: Vec<FxMap<&'a str, i64>>,
    /// count → how many domains have it (the first key is the global minimum).
    hist: Vec<BTreeMap<i64, usize>>,
    domains: Vec<usize>,
}

pub(crate) fn pre_filter<'a>(pod: &PodInfo, snap: &'a Snapshot) -> Option<FilterState<'a>> {
    let cs = &pod.hard_spread;
    if cs.is_empty() {
        return None;
    }
    let mut counts = vec![FxMap::<&str, i64>::default(); cs.len()];
    for node in snap.nodes() {
        if !has_keys(node, cs) {
            continue;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if !eligible(c, pod, node, &mut affinity) {
                continue;
            }
            let v = node.labels[&c.key].as_str();
            *counts[i].entry(v).or_insert(0) += count(node, c, &pod.namespace);
        }
    }
    let mut hist = vec![BTreeMap::new(); cs.len()];
    for (i, m) in counts.iter().enumerate() {
        for n in m.values() {
            *hist[i].entry(*n).or_insert(0) += 1;
        }
    }
    Some(FilterState {
        domains: counts.iter().map(|m| m.len()).collect(),
        counts,
        hist,
    })
}

impl<'a> FilterState<'a> {
    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
        for (i, c) in pod.hard_spread.iter().enumerate() {
            let Some(v) = node.labels.get(&c.key) else {
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
            let n = self.counts[i].get(v.as_str()).copied().unwrap_or(0);
            if n + c.self_match as i64 - min > c.max_skew as i64 {
                return Err(Fail::resolvable(ERR_SPREAD));
            }
        }
        Ok(())
    }

    /// kube's AddPod / RemovePod extension: `p` counted on `node`.
    pub fn update(&mut self, pod: &PodInfo, p: &PodInfo, node: &'a NodeInfo, delta: i64) {
        let cs = &pod.hard_spread;
        if p.namespace != pod.namespace || !has_keys(node, cs) {
            return;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if !c.selector.matches(&p.labels) || !eligible(c, pod, node, &mut affinity) {
                continue;
            }
            let v = node.labels[&c.key].as_str();
            let old = self.counts[i].get(v).copied();
            let new = old.unwrap_or(0) + delta;
            if let Some(old) = old {
                let h = self.hist[i].get_mut(&old).expect("counted");
                *h -= 1;
                if *h == 0 {
                    self.hist[i].remove(&old);
                }
            }
            *self.hist[i].entry(new).or_insert(0) += 1;
            self.counts[i].insert(v, new);
        }
    }
}

/// The ScheduleAnyway score over `nodes` (normalized 0–100), or None when kube skips it.
pub(crate) fn score(pod: &PodInfo, snap: &Snapshot, nodes: &[&NodeInfo]) -> Option<Vec<i64>> {
    let cs = &pod.soft_spread;
    if cs.is_empty() || snap.is_empty() {
        return None;
    }
    let ignored: Vec<bool> = nodes.iter().map(|n| !has_keys(n, cs)).collect();
    let mut counts = vec![FxMap::<&str, i64>::default(); cs.len()];
    for (n, _) in nodes.iter().zip(&ignored).filter(|(_, i)| !**i) {
        for (i, c) in cs.iter().enumerate() {
            if c.key != HOSTNAME {
                counts[i].entry(n.labels[&c.key].as_str()).or_insert(0);
            }
        }
    }
    let kept = ignored.iter().filter(|i| !**i).count();
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
        if !has_keys(node, cs) {
            continue;
        }
        let mut affinity = None;
        for (i, c) in cs.iter().enumerate() {
            if !eligible(c, pod, node, &mut affinity) {
                continue;
            }
            if let Some(e) = counts[i].get_mut(node.labels[&c.key].as_str()) {
                *e += count(node, c, &pod.namespace);
            }
        }
    }
    let raw: Vec<i64> = nodes
        .iter()
        .zip(&ignored)
        .map(|(n, ignored)| {
            if *ignored {
                return 0;
            }
            let mut s = 0.0;
            for (i, c) in cs.iter().enumerate() {
                let cnt = if c.key == HOSTNAME {
                    count(n, c, &pod.namespace)
                } else {
                    counts[i][n.labels[&c.key].as_str()]
                };
                s += cnt as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            s.round() as i64
        })
        .collect();
    let (mut min, mut max) = (i64::MAX, 0);
    for (s, _) in raw.iter().zip(&ignored).filter(|(_, i)| !**i) {
        min = min.min(*s);
        max = max.max(*s);
    }
    Some(
        raw.iter()
            .zip(&ignored)
            .map(|(s, ignored)| match (*ignored, max) {
                (true, _) => 0,
                (false, 0) => 100,
                (false, _) => 100 * (max + min - s) / max,
            })
            .collect(),
    )
}
