//! The per-node filters of kube-scheduler's default profile with its reason texts and status
//! codes: NodeUnschedulable, NodeName, TaintToleration (a node that is not ready counts as
//! tainted `node.kubernetes.io/not-ready:NoSchedule`, or `unreachable`), NodeAffinity,
//! NodePorts and NodeResourcesFit. PodTopologySpread and InterPodAffinity have their modules.

use crate::config::Profile;
use crate::node::NodeInfo;
use crate::podinfo::PodInfo;
use crate::resources::{is_extended, Amounts};
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub(crate) const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub(crate) const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub(crate) const ERR_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

/// Why a node was filtered out: kube's reasons and whether preemption could help
/// (Unschedulable) or not (UnschedulableAndUnresolvable). One static reason allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fail {
    first: Cow<'static, str>,
    more: Vec<Cow<'static, str>>,
    pub resolvable: bool,
}

impl Fail {
    pub fn unresolvable(r: impl Into<Cow<'static, str>>) -> Fail {
        Fail {
            first: r.into(),
            more: Vec::new(),
            resolvable: false,
        }
    }

    pub fn resolvable(r: impl Into<Cow<'static, str>>) -> Fail {
        Fail {
            resolvable: true,
            ..Fail::unresolvable(r)
        }
    }

    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.first.as_ref()).chain(self.more.iter().map(|r| r.as_ref()))
    }
}

/// A node as one filter run sees it: with pods added (nominated, or reprieved) and pods
/// removed (preemption victims; by index into `node.pods`).
pub(crate) struct View<'a> {
    pub node: &'a NodeInfo,
    pub added: &'a [Arc<PodInfo>],
    /// Empty, or one flag per `node.pods`.
    pub removed: &'a [bool],
}

impl View<'_> {
    fn removed_pods(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.node
            .pods
            .iter()
            .zip(self.removed)
            .filter(|(_, r)| **r)
            .map(|(p, _)| p)
    }

    fn pod_count(&self) -> i64 {
        (self.node.pods.len() + self.added.len() - self.removed_pods().count()) as i64
    }

    /// What the added and removed pods change, when any.
    fn delta(&self) -> Option<Amounts> {
        if self.added.is_empty() && self.removed.is_empty() {
            return None;
        }
        let mut d = Amounts::default();
        for p in self.added {
            d.add(&p.req, 1);
        }
        for p in self.removed_pods() {
            d.add(&p.req, -1);
        }
        Some(d)
    }
}

pub(crate) fn unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
    if node.unschedulable && !pod.tolerates("node.kubernetes.io/unschedulable", "", "NoSchedule") {
        return Err(Fail::unresolvable(ERR_UNSCHEDULABLE));
    }
    Ok(())
}

pub(crate) fn node_name(pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
    match &pod.node_name {
        Some(n) if *n != node.name => Err(Fail::unresolvable(ERR_NODE_NAME)),
        _ => Ok(()),
    }
}

/// The first NoSchedule / NoExecute taint the pod does not tolerate.
pub(crate) fn untolerated_taint(pod: &PodInfo, node: &NodeInfo) -> Option<(String, String)> {
    if let Some(key) = node.condition_taint() {
        if !pod.tolerates(key, "", "NoSchedule") {
            return Some((key.to_string(), String::new()));
        }
    }
    node.taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !pod.tolerates(&t.key, t.value.as_deref().unwrap_or(""), &t.effect))
        .map(|t| (t.key.clone(), t.value.clone().unwrap_or_default()))
}

pub(crate) fn taints(pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
    match untolerated_taint(pod, node) {
        Some((k, v)) => Err(Fail::unresolvable(format!(
            "node(s) had untolerated taint {{{k}: {v}}}"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Result<(), Fail> {
    if pod.node_affinity.matches(&node.name, &node.labels) {
        Ok(())
    } else {
        Err(Fail::unresolvable(ERR_NODE_AFFINITY))
    }
}

fn conflict(used: &(String, i32, String), want: &(String, i32, String)) -> bool {
    used.0 == want.0
        && used.1 == want.1
        && (want.2 == "0.0.0.0" || used.2 == "0.0.0.0" || used.2 == want.2)
}

pub(crate) fn node_ports(pod: &PodInfo, v: &View) -> Result<(), Fail> {
    if pod.host_ports.is_empty() {
        return Ok(());
    }
    let clash = |want: &(String, i32, String)| {
        let added = v.added.iter().flat_map(|p| &p.host_ports);
        if v.removed.is_empty() {
            v.node
                .host_ports
                .iter()
                .chain(added)
                .any(|u| conflict(u, want))
        } else {
            let kept = v.node.pods.iter().zip(v.removed).filter(|(_, r)| !**r);
            kept.flat_map(|(p, _)| &p.host_ports)
                .chain(added)
                .any(|u| conflict(u, want))
        }
    };
    if pod.host_ports.iter().any(clash) {
        return Err(Fail::resolvable(ERR_PORTS));
    }
    Ok(())
}

/// NodeResourcesFit: every insufficient resource is a reason ("Too many pods" first).
pub(crate) fn fit(pod: &PodInfo, v: &View, profile: &Profile) -> Result<(), Fail> {
    let node = v.node;
    let mut fail: Option<Fail> = None;
    let mut push = |r: Cow<'static, str>| match &mut fail {
        None => fail = Some(Fail::resolvable(r)),
        Some(f) => f.more.push(r),
    };
    if v.pod_count() + 1 > node.alloc_pods {
        push("Too many pods".into());
    }
    let r = &pod.req;
    if r.cpu != 0 || r.mem != 0 || r.eph != 0 || !r.scalar.is_empty() {
        let d = v.delta();
        let d = d.as_ref();
        let (a, u) = (&node.alloc, &node.req);
        if r.cpu > 0 && r.cpu > a.cpu - u.cpu - d.map_or(0, |d| d.cpu) {
            push("Insufficient cpu".into());
        }
        if r.mem > 0 && r.mem > a.mem - u.mem - d.map_or(0, |d| d.mem) {
            push("Insufficient memory".into());
        }
        if r.eph > 0 && r.eph > a.eph - u.eph - d.map_or(0, |d| d.eph) {
            push("Insufficient ephemeral-storage".into());
        }
        for (name, q) in &r.scalar {
            if *q == 0 {
                continue;
            }
            if is_extended(name) {
                let group = name.split('/').next().unwrap_or("");
                if profile.ignored_resources.contains(name)
                    || profile.ignored_resource_groups.contains(group)
                {
                    continue;
                }
            }
            let used = u.scalar(name) + d.map_or(0, |d| d.scalar(name));
            if *q > a.scalar(name) - used {
                push(format!("Insufficient {name}").into());
            }
        }
    }
    match fail {
        None => Ok(()),
        Some(f) => Err(f),
    }
}
