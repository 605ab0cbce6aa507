//! kube's DefaultPreemption (PostFilter): on the nodes where the failure is resolvable, remove
//! every pod of lower priority, check the pod fits, reprieve victims (PDB-violating first, then
//! the others, most important first) while it still does, then pick the node (fewest PDB
//! violations, lowest highest victim priority, smallest priority sum, fewest victims, latest
//! start of the highest-priority victims, first).

use crate::config::Profile;
use crate::filters::Fail;
use crate::framework::Cycle;
use crate::message::FitError;
use crate::node::NodeInfo;
use crate::podinfo::PodInfo;
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::sync::Arc;

/// What preemption decided: the node to nominate, the pods to evict from it (most important
/// first), and the lower-priority pods nominated there whose nomination is to be cleared.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
    /// Victims whose eviction violates a PodDisruptionBudget.
    pub pdb_violations: usize,
    /// Pods nominated to `node` with a lower priority than the preemptor (kube clears their
    /// nominatedNodeName).
    pub lower_nominated: Vec<Arc<PodInfo>>,
}

const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

fn start(p: &PodInfo) -> DateTime<Utc> {
    // kube takes "now" for a pod that has not started: later than any start.
    p.start_time.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// kube's MoreImportantPod as an ordering (more important first).
fn importance(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start(a).cmp(&start(b)))
}

/// kube's filterPodsWithPDBViolation over the (sorted) potential victims.
fn pdb_violating(snap: &Snapshot, victims: &[&Arc<PodInfo>]) -> Vec<bool> {
    let mut allowed: Vec<i64> = snap
        .pdbs()
        .iter()
        .map(|(p, _)| p.disruptions_allowed as i64)
        .collect();
    victims
        .iter()
        .map(|v| {
            let mut violated = false;
            if v.labels.is_empty() {
                return false;
            }
            for (i, (pdb, sel)) in snap.pdbs().iter().enumerate() {
                if pdb.namespace != v.namespace || sel.is_everything() || !sel.matches(&v.labels) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
            violated
        })
        .collect()
}

/// kube's SelectVictimsOnNode: the victims (most important first) and how many violate a PDB.
fn select_victims<'a>(
    cycle: &mut Cycle<'a>,
    node: &'a NodeInfo,
) -> Result<(Vec<Arc<PodInfo>>, usize), Fail> {
    let pod = cycle.pod;
    let mut removed = vec![false; node.pods.len()];
    let mut potential: Vec<usize> = (0..node.pods.len())
        .filter(|&i| node.pods[i].priority < pod.priority)
        .collect();
    if potential.is_empty() {
        return Err(Fail::unresolvable(NO_VICTIMS));
    }
    for &i in &potential {
        removed[i] = true;
        cycle.update(&node.pods[i], node, -1);
    }
    let restore = |cycle: &mut Cycle<'a>, removed: &[bool]| {
        for (i, r) in removed.iter().enumerate() {
            if *r {
                cycle.update(&node.pods[i], node, 1);
            }
        }
    };
    if let Err(f) = cycle.filter(node, &removed) {
        restore(cycle, &removed);
        return Err(f);
    }
    potential.sort_by(|a, b| importance(&node.pods[*a], &node.pods[*b]));
    let refs: Vec<&Arc<PodInfo>> = potential.iter().map(|&i| &node.pods[i]).collect();
    let violating = pdb_violating(cycle.snap, &refs);
    let order = potential
        .iter()
        .zip(&violating)
        .filter(|(_, v)| **v)
        .chain(potential.iter().zip(&violating).filter(|(_, v)| !**v));
    let mut victims = Vec::new();
    let mut violations = 0;
    for (&i, &is_violating) in order {
        removed[i] = false;
        cycle.update(&node.pods[i], node, 1);
        if cycle.filter(node, &removed).is_err() {
            removed[i] = true;
            cycle.update(&node.pods[i], node, -1);
            victims.push(node.pods[i].clone());
            violations += is_violating as usize;
        }
    }
    if violating.iter().any(|v| *v) && violating.iter().any(|v| !*v) {
        victims.sort_by(|a, b| importance(a, b));
    }
    restore(cycle, &removed);
    Ok((victims, violations))
}

struct Candidate<'a> {
    node: &'a NodeInfo,
    victims: Vec<Arc<PodInfo>>,
    violations: usize,
}

/// kube's pickOneNodeForPreemption.
fn pick<'c, 'a>(candidates: &'c [Candidate<'a>]) -> &'c Candidate<'a> {
    let keys: [&dyn Fn(&Candidate) -> i128; 5] = [
        &|c| -(c.violations as i128),
        &|c| -(c.victims[0].priority as i128),
        &|c| {
            -c.victims
                .iter()
                .map(|v| v.priority as i128 + (1i128 << 31))
                .sum::<i128>()
        },
        &|c| -(c.victims.len() as i128),
        &|c| {
            let top = c.victims[0].priority;
            c.victims
                .iter()
                .filter(|v| v.priority == top)
                .map(|v| start(v))
                .min()
                .map_or(i128::MIN, |t| {
                    t.timestamp_nanos_opt().map_or(i64::MAX as i128, i128::from)
                })
        },
    ];
    let mut left: Vec<&Candidate> = candidates.iter().collect();
    for key in keys {
        let best = left.iter().map(|c| key(c)).max().expect("candidates");
        left.retain(|c| key(c) == best);
        if left.len() == 1 {
            break;
        }
    }
    left[0]
}

fn not_helpful(num_nodes: usize, statuses: Vec<(&str, Fail)>) -> String {
    FitError::from_failures(num_nodes, statuses, Some(Fail::unresolvable(NOT_HELPFUL))).message()
}

/// kube's DefaultPreemption for a pod `schedule` could not place (`err`): the node to
/// nominate and the victims to evict, or Err with kube's text for the " preemption: …" part
/// (see [`FitError::message_with_preemption`]); Err("") when preemption does not run
/// (disabled in the profile, or no nodes at all).
pub fn preempt(
    pod: &PodInfo,
    snap: &Snapshot,
    profile: &Profile,
    err: &FitError,
) -> Result<Preemption, String> {
    if profile.disable_preemption || snap.is_empty() || err.num_nodes == 0 {
        return Err(String::new());
    }
    if pod.preempt_never {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    if let Some(nominated) = pod.nominated_node.as_deref() {
        let unresolvable = err.status(nominated).is_none_or(|s| !s.resolvable);
        if !unresolvable {
            if let Some(node) = snap.node(nominated) {
                if node
                    .pods
                    .iter()
                    .any(|p| p.priority < pod.priority && p.terminating_by_preemption)
                {
                    return Err(
                        "not eligible due to a terminating pod on the nominated node.".into(),
                    );
                }
            }
        }
    }
    let n = snap.len();
    let potential: Vec<&NodeInfo> = if err.pre_filter_msg.is_some() {
        Vec::new()
    } else {
        err.resolvable_nodes()
            .filter_map(|name| snap.node(name))
            .collect()
    };
    if potential.is_empty() {
        return Err(not_helpful(n, Vec::new()));
    }
    let mut cycle = match Cycle::new(pod, snap, profile) {
        Ok(c) => c,
        Err(_) => return Err(not_helpful(n, Vec::new())),
    };
    let wanted = ((potential.len() * profile.min_candidate_nodes_percentage as usize) / 100)
        .max(profile.min_candidate_nodes_absolute as usize)
        .min(potential.len());
    let (mut clean, mut violating) = (Vec::new(), Vec::new());
    let mut statuses: Vec<(&str, Fail)> = Vec::new();
    for node in potential {
        match select_victims(&mut cycle, node) {
            Ok((victims, violations)) if !victims.is_empty() => {
                let c = Candidate {
                    node,
                    victims,
                    violations,
                };
                if violations == 0 {
                    clean.push(c);
                } else {
                    violating.push(c);
                }
                if !clean.is_empty() && clean.len() + violating.len() >= wanted {
                    break;
                }
            }
            Ok(_) => statuses.push((&node.name, Fail::unresolvable(NO_VICTIMS))),
            Err(f) => statuses.push((&node.name, f)),
        }
    }
    clean.extend(violating);
    if clean.is_empty() {
        return Err(not_helpful(n, statuses));
    }
    let best = pick(&clean);
    Ok(Preemption {
        node: best.node.name.clone(),
        victims: best.victims.clone(),
        pdb_violations: best.violations,
        lower_nominated: snap
            .nominated_pods(&best.node.name)
            .iter()
            .filter(|p| p.priority < pod.priority && p.uid != pod.uid)
            .cloned()
            .collect(),
    })
}
