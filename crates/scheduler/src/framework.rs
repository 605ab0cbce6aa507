//! One scheduling attempt as kube-scheduler's framework runs it: PreFilter (NodeAffinity's
//! node names, inter-pod affinity and topology spread counts), the filters in kube's order
//! (with nominated pods of equal or higher priority counted, kube's
//! RunFilterPluginsWithNominatedPods), [`schedule`]'s round-robin search for
//! numFeasibleNodesToFind feasible nodes, and the scores.

use crate::config::Profile;
use crate::filters::{self, Fail, View};
use crate::message::FitError;
use crate::node::NodeInfo;
use crate::podinfo::PodInfo;
use crate::snapshot::Snapshot;
use crate::{interpod, scores, spread};
use std::sync::Arc;

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub node: String,
    /// Nodes looked at: advance the round-robin `start` by this much.
    pub evaluated: usize,
    /// Feasible nodes found (and scored).
    pub feasible: usize,
}

/// kube's numFeasibleNodesToFind: every node under 100; else `percentage` of them (0 / None =
/// adaptive, max(5, 50 - n/125)), at least 100.
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, n: usize) -> usize {
    if n < 100 {
        return n;
    }
    let mut p = percentage.unwrap_or(0) as usize;
    if p == 0 {
        p = 50usize.saturating_sub(n / 125).max(5);
    }
    (n * p.min(100) / 100).max(100)
}

#[derive(Debug, Clone, Copy)]
struct Enabled {
    unschedulable: bool,
    node_name: bool,
    taints: bool,
    node_affinity: bool,
    ports: bool,
    fit: bool,
}

/// A scheduling attempt's state: kube's CycleState.
pub(crate) struct Cycle<'a> {
    pub pod: &'a PodInfo,
    pub snap: &'a Snapshot,
    pub profile: &'a Profile,
    en: Enabled,
    /// NodeAffinity's PreFilter result: the only nodes to look at (snapshot indexes).
    pub subset: Option<Vec<usize>>,
    ipa: Option<interpod::FilterState<'a>>,
    spread: Option<spread::FilterState>,
}

/// The status of the nodes NodeAffinity's PreFilter left out.
pub(crate) fn subset_fail() -> Fail {
    Fail::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]")
}

impl<'a> Cycle<'a> {
    /// PreFilter; Err = a PreFilter rejection (kube's message for it).
    pub fn new(
        pod: &'a PodInfo,
        snap: &'a Snapshot,
        profile: &'a Profile,
    ) -> Result<Cycle<'a>, String> {
        let on = |p| profile.filter_enabled(p);
        let en = Enabled {
            unschedulable: on("NodeUnschedulable"),
            node_name: on("NodeName"),
            taints: on("TaintToleration"),
            node_affinity: on("NodeAffinity"),
            ports: on("NodePorts"),
            fit: on("NodeResourcesFit"),
        };
        let mut subset = None;
        if en.node_affinity {
            if let Some(names) = &pod.node_names {
                if names.is_empty() {
                    return Err("pod affinity terms conflict".into());
                }
                let mut idx: Vec<usize> = names.iter().filter_map(|n| snap.index_of(n)).collect();
                idx.sort_unstable();
                subset = Some(idx);
            }
        }
        Ok(Cycle {
            pod,
            snap,
            profile,
            en,
            subset,
            ipa: on("InterPodAffinity")
                .then(|| interpod::pre_filter(pod, snap))
                .flatten(),
            spread: on("PodTopologySpread")
                .then(|| spread::pre_filter(pod, snap))
                .flatten(),
        })
    }

    /// kube's RunFilterPlugins: the first failing filter's status.
    fn filter_once(&self, v: &View) -> Result<(), Fail> {
        let (pod, node, en) = (self.pod, v.node, self.en);
        if en.unschedulable {
            filters::unschedulable(pod, node)?;
        }
        if en.node_name {
            filters::node_name(pod, node)?;
        }
        if en.taints {
            filters::taints(pod, node)?;
        }
        if en.node_affinity {
            filters::node_affinity(pod, node)?;
        }
        if en.ports {
            filters::node_ports(pod, v)?;
        }
        if en.fit {
            filters::fit(pod, v, self.profile)?;
        }
        if let Some(s) = &self.spread {
            s.filter(pod, node)?;
        }
        if let Some(s) = &self.ipa {
            s.filter(node)?;
        }
        Ok(())
    }

    /// kube's AddPod / RemovePod PreFilter extensions: `p` counted (or not) on `node`.
    pub fn update(&mut self, p: &PodInfo, node: &'a NodeInfo, delta: i64) {
        if let Some(s) = &mut self.ipa {
            s.update(self.pod, p, node, delta);
        }
        if let Some(s) = &mut self.spread {
            s.update(self.pod, p, node, delta);
        }
    }

    /// kube's RunFilterPluginsWithNominatedPods: first with the pods nominated to the node at
    /// the pod's priority or higher counted there, then (if that passed) without them.
    pub fn filter(&mut self, node: &'a NodeInfo, removed: &[bool]) -> Result<(), Fail> {
        let nominated: Vec<Arc<PodInfo>> = if self.snap.has_nominations() {
            self.snap
                .nominated_pods(&node.name)
                .iter()
                .filter(|p| p.priority >= self.pod.priority && p.uid != self.pod.uid)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if !nominated.is_empty() {
            for p in &nominated {
                self.update(p, node, 1);
            }
            let first = self.filter_once(&View {
                node,
                added: &nominated,
                removed,
            });
            for p in &nominated {
                self.update(p, node, -1);
            }
            first?;
        }
        self.filter_once(&View {
            node,
            added: &[],
            removed,
        })
    }
}

/// The node for `pod`: filters from `start` (a round-robin index into the nodes, mod their
/// number) until numFeasibleNodesToFind nodes pass (`profile.percentage_of_nodes_to_score`),
/// scores those and returns the best. Ties go to the first in evaluation order (kube picks one
/// at random), so advancing `start` by `evaluated` spreads equal nodes. A pod whose
/// `status.nominatedNodeName` still fits goes there first, as in kube.
pub fn schedule(
    pod: &PodInfo,
    snap: &Snapshot,
    profile: &Profile,
    start: usize,
) -> Result<Decision, FitError> {
    let n = snap.len();
    if n == 0 {
        return Err(FitError::new(0));
    }
    let mut cycle = Cycle::new(pod, snap, profile).map_err(|m| FitError::pre_filter(n, m))?;
    if let Some(idx) = pod.nominated_node.as_deref().and_then(|m| snap.index_of(m)) {
        let node = &snap.nodes()[idx];
        if cycle.filter(node, &[]).is_ok() {
            return Ok(Decision {
                node: node.name.clone(),
                evaluated: 1,
                feasible: 1,
            });
        }
    }
    let subset = cycle.subset.take();
    let len = subset.as_ref().map_or(n, Vec::len);
    let want = num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, len);
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(len));
    let mut failures: Vec<(&str, Fail)> = Vec::new();
    let mut evaluated = 0;
    for i in 0..len {
        let k = (start + i) % len;
        let node = &snap.nodes()[subset.as_ref().map_or(k, |s| s[k])];
        evaluated += 1;
        match cycle.filter(node, &[]) {
            Ok(()) => {
                feasible.push(node);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(f) if feasible.is_empty() => failures.push((&node.name, f)),
            Err(_) => {}
        }
    }
    if feasible.is_empty() {
        let absent = subset.is_some().then(subset_fail);
        return Err(FitError::from_failures(n, failures, absent));
    }
    let node = if feasible.len() == 1 {
        feasible[0]
    } else {
        let totals = scores::total(pod, snap, profile, &feasible);
        let mut best = 0;
        for (i, t) in totals.iter().enumerate() {
            if *t > totals[best] {
                best = i;
            }
        }
        feasible[best]
    };
    Ok(Decision {
        node: node.name.clone(),
        evaluated,
        feasible: feasible.len(),
    })
}

/// Every enabled score plugin's weighted total for `pod` on each of `nodes` (which should
/// have passed the filters), for tests and tools.
pub fn score_nodes(pod: &PodInfo, snap: &Snapshot, profile: &Profile, nodes: &[&str]) -> Vec<i64> {
    let infos: Vec<&NodeInfo> = nodes.iter().filter_map(|n| snap.node(n)).collect();
    scores::total(pod, snap, profile, &infos)
}
