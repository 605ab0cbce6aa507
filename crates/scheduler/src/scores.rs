//! The score plugins, each normalized to 0–100 as kube-scheduler does, then weighted and
//! summed: NodeResourcesFit (LeastAllocated / MostAllocated / RequestedToCapacityRatio),
//! NodeResourcesBalancedAllocation, TaintToleration, NodeAffinity, ImageLocality; the
//! InterPodAffinity and PodTopologySpread scores live in their modules.

use crate::config::{Profile, StrategyType};
use crate::node::NodeInfo;
use crate::podinfo::PodInfo;
use crate::resources::is_scalar;
use crate::snapshot::Snapshot;
use crate::{interpod, spread};

pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";
pub const BALANCED_ALLOCATION: &str = "NodeResourcesBalancedAllocation";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const INTER_POD_AFFINITY: &str = "InterPodAffinity";
pub const POD_TOPOLOGY_SPREAD: &str = "PodTopologySpread";
pub const IMAGE_LOCALITY: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// A resource the resource scorers read.
enum Res {
    Cpu,
    Mem,
    Eph,
    Scalar(String),
    Other,
}

fn res(name: &str) -> Res {
    match name {
        "cpu" => Res::Cpu,
        "memory" => Res::Mem,
        "ephemeral-storage" => Res::Eph,
        n if is_scalar(n) => Res::Scalar(n.to_string()),
        _ => Res::Other,
    }
}

/// (allocatable, requested with the pod) as kube's calculateResourceAllocatableRequest;
/// `use_requested` = the real requests (BalancedAllocation) rather than the non-zero ones.
fn alloc_req(pod: &PodInfo, node: &NodeInfo, r: &Res, use_requested: bool) -> (i64, i64) {
    match r {
        Res::Cpu if use_requested => (node.alloc.cpu, node.req.cpu + pod.req.cpu),
        Res::Cpu => (node.alloc.cpu, node.nonzero_cpu + pod.nonzero_cpu),
        Res::Mem if use_requested => (node.alloc.mem, node.req.mem + pod.req.mem),
        Res::Mem => (node.alloc.mem, node.nonzero_mem + pod.nonzero_mem),
        Res::Eph => (node.alloc.eph, node.req.eph + pod.req.eph),
        Res::Scalar(n) => {
            let want = pod.req.scalar(n);
            match node.alloc.scalar_opt(n) {
                Some(a) if want != 0 => (a, node.req.scalar(n) + want),
                _ => (0, 0),
            }
        }
        Res::Other => (0, 0),
    }
}

fn least(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * 100 / capacity
}

fn most(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * 100 / capacity
}

/// kube's BuildBrokenLinearFunction over (utilization, score 0–100) points.
fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return s;
            }
            let (pu, ps) = shape[i - 1];
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map_or(0, |l| l.1)
}

fn fit_scores(pod: &PodInfo, nodes: &[&NodeInfo], profile: &Profile) -> Vec<i64> {
    let st = &profile.scoring_strategy;
    let rs: Vec<(Res, i64)> = st.resources.iter().map(|(n, w)| (res(n), *w)).collect();
    let shape: Vec<(i64, i64)> = st.shape.iter().map(|(u, s)| (*u, s * 10)).collect();
    nodes
        .iter()
        .map(|node| {
            let (mut sum, mut weights) = (0i64, 0i64);
            for (r, w) in &rs {
                let (alloc, req) = alloc_req(pod, node, r, false);
                if alloc == 0 {
                    continue;
                }
                let s = match st.kind {
                    StrategyType::LeastAllocated => least(req, alloc),
                    StrategyType::MostAllocated => most(req, alloc),
                    StrategyType::RequestedToCapacityRatio => {
                        let s = if req > alloc {
                            broken_linear(&shape, 100)
                        } else {
                            broken_linear(&shape, req * 100 / alloc)
                        };
                        if s <= 0 {
                            continue;
                        }
                        s
                    }
                };
                sum += s * w;
                weights += w;
            }
            match (weights, st.kind) {
                (0, _) => 0,
                (_, StrategyType::RequestedToCapacityRatio) => {
                    (sum as f64 / weights as f64).round() as i64
                }
                _ => sum / weights,
            }
        })
        .collect()
}

fn balanced_scores(pod: &PodInfo, nodes: &[&NodeInfo], profile: &Profile) -> Vec<i64> {
    let rs: Vec<Res> = profile.balanced_resources.iter().map(|n| res(n)).collect();
    nodes
        .iter()
        .map(|node| {
            let mut buf = [0f64; 8];
            let mut spill = Vec::new();
            let mut n = 0;
            for r in &rs {
                let (alloc, req) = alloc_req(pod, node, r, true);
                if alloc == 0 {
                    continue;
                }
                let f = (req as f64 / alloc as f64).min(1.0);
                if n < buf.len() {
                    buf[n] = f;
                } else {
                    if spill.is_empty() {
                        spill.extend_from_slice(&buf);
                    }
                    spill.push(f);
                }
                n += 1;
            }
            let all: &[f64] = if spill.is_empty() { &buf[..n] } else { &spill };
            let std = match all.len() {
                2 => ((all[0] - all[1]) / 2.0).abs(),
                k if k > 2 => {
                    let mean = all.iter().sum::<f64>() / k as f64;
                    (all.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / k as f64).sqrt()
                }
                _ => 0.0,
            };
            ((1.0 - std) * 100.0) as i64
        })
        .collect()
}

/// kube's DefaultNormalizeScore.
fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = 100);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = 100 * *s / max;
        if reverse {
            *s = 100 - *s;
        }
    }
}

fn taint_scores(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let mut scores: Vec<i64> = nodes
        .iter()
        .map(|node| {
            node.taints
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule")
                .filter(|t| {
                    !pod.tolerations.iter().any(|tol| {
                        tol.prefer_no_schedule()
                            && tol.tolerates(&t.key, t.value.as_deref().unwrap_or(""), &t.effect)
                    })
                })
                .count() as i64
        })
        .collect();
    default_normalize(&mut scores, true);
    scores
}

fn node_affinity_scores(pod: &PodInfo, nodes: &[&NodeInfo]) -> Option<Vec<i64>> {
    if pod.preferred_nodes.is_empty() {
        return None;
    }
    let mut scores: Vec<i64> = nodes
        .iter()
        .map(|node| {
            pod.preferred_nodes
                .iter()
                .filter(|(_, t)| t.matches(&node.name, &node.labels))
                .map(|(w, _)| *w)
                .sum()
        })
        .collect();
    default_normalize(&mut scores, false);
    Some(scores)
}

fn image_scores(pod: &PodInfo, snap: &Snapshot, nodes: &[&NodeInfo]) -> Vec<i64> {
    let total = snap.len().max(1) as f64;
    let present: Vec<(&str, f64)> = pod
        .images
        .iter()
        .map(|i| (i.as_str(), snap.image_nodes(i) as f64 / total))
        .filter(|(_, spread)| *spread > 0.0)
        .collect();
    let max = MAX_CONTAINER_THRESHOLD * pod.num_containers as i64;
    nodes
        .iter()
        .map(|node| {
            let sum: i64 = present
                .iter()
                .filter_map(|(i, spread)| {
                    node.images
                        .get(*i)
                        .map(|size| (*size as f64 * spread) as i64)
                })
                .sum();
            if max <= MIN_THRESHOLD {
                return 0;
            }
            let sum = sum.clamp(MIN_THRESHOLD, max);
            100 * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
        })
        .collect()
}

/// The weighted sum of every enabled score plugin, per node of `nodes`.
pub(crate) fn total(
    pod: &PodInfo,
    snap: &Snapshot,
    profile: &Profile,
    nodes: &[&NodeInfo],
) -> Vec<i64> {
    let mut totals = vec![0i64; nodes.len()];
    let mut add = |name: &str, scores: &dyn Fn() -> Option<Vec<i64>>| {
        let w = profile.score_weight(name);
        if w == 0 {
            return;
        }
        if let Some(s) = scores() {
            for (t, s) in totals.iter_mut().zip(s) {
                *t += s * w;
            }
        }
    };
    add(TAINT_TOLERATION, &|| Some(taint_scores(pod, nodes)));
    add(NODE_AFFINITY, &|| node_affinity_scores(pod, nodes));
    add(NODE_RESOURCES_FIT, &|| {
        Some(fit_scores(pod, nodes, profile))
    });
    add(POD_TOPOLOGY_SPREAD, &|| spread::score(pod, snap, nodes));
    add(INTER_POD_AFFINITY, &|| {
        interpod::score(pod, snap, profile, nodes)
    });
    add(BALANCED_ALLOCATION, &|| {
        Some(balanced_scores(pod, nodes, profile))
    });
    add(IMAGE_LOCALITY, &|| Some(image_scores(pod, snap, nodes)));
    totals
}
