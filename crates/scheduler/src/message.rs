//! [`FitError`]: why a pod fits nowhere — each node's reasons and whether preemption could
//! help there — and kube-scheduler's message for it ("0/3 nodes are available: 1 Insufficient
//! cpu, 2 node(s) didn't match Pod's node affinity/selector."), preemption's part included.

use crate::filters::Fail;
use crate::hash::FxMap;
use std::collections::BTreeMap;
use std::fmt;

/// One node's status after the filters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeStatus {
    pub reasons: Vec<String>,
    /// Unschedulable (preemption may help) rather than UnschedulableAndUnresolvable.
    pub resolvable: bool,
}

/// Why a pod fits nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// The nodes in the snapshot.
    pub num_nodes: usize,
    /// Reason text → how many nodes gave it (nodes without a status of their own counted
    /// with `absent`'s reasons).
    pub reasons: BTreeMap<String, usize>,
    /// The distinct statuses.
    pub statuses: Vec<NodeStatus>,
    /// Node name → index into `statuses`, for the nodes the filters ran on.
    pub nodes: Vec<(String, usize)>,
    /// The status of the nodes not in `nodes` (index into `statuses`), when any.
    pub absent: Option<usize>,
    /// A PreFilter rejection (then the message is this, not the per-node reasons).
    pub pre_filter_msg: Option<String>,
}

impl FitError {
    pub(crate) fn new(num_nodes: usize) -> FitError {
        FitError {
            num_nodes,
            reasons: BTreeMap::new(),
            statuses: Vec::new(),
            nodes: Vec::new(),
            absent: None,
            pre_filter_msg: None,
        }
    }

    /// Builds one from the failures of the filtered nodes and the status of the others.
    pub(crate) fn from_failures<'a>(
        num_nodes: usize,
        failures: impl IntoIterator<Item = (&'a str, Fail)>,
        absent: Option<Fail>,
    ) -> FitError {
        let mut e = FitError::new(num_nodes);
        let mut interned: FxMap<Fail, usize> = FxMap::default();
        let mut last: Option<(Fail, usize)> = None;
        let mut intern = |e: &mut FitError, f: Fail| -> usize {
            if let Some((l, i)) = &last {
                if *l == f {
                    return *i;
                }
            }
            if let Some(i) = interned.get(&f) {
                last = Some((f, *i));
                return *i;
            }
            e.statuses.push(NodeStatus {
                reasons: f.reasons().map(str::to_string).collect(),
                resolvable: f.resolvable,
            });
            interned.insert(f.clone(), e.statuses.len() - 1);
            last = Some((f, e.statuses.len() - 1));
            e.statuses.len() - 1
        };
        for (node, f) in failures {
            let s = intern(&mut e, f);
            e.nodes.push((node.to_string(), s));
        }
        let mut counts = vec![0usize; e.statuses.len()];
        for (_, s) in &e.nodes {
            counts[*s] += 1;
        }
        if let Some(f) = absent {
            let s = intern(&mut e, f);
            counts.resize(e.statuses.len(), 0);
            counts[s] += num_nodes.saturating_sub(e.nodes.len());
            e.absent = Some(s);
        }
        for (s, n) in e.statuses.iter().zip(counts) {
            for r in &s.reasons {
                *e.reasons.entry(r.clone()).or_default() += n;
            }
        }
        e.reasons.retain(|_, n| *n > 0);
        e
    }

    /// A PreFilter rejection: every node gets the (unresolvable) status.
    pub(crate) fn pre_filter(num_nodes: usize, msg: String) -> FitError {
        let mut e = FitError::from_failures(num_nodes, [], Some(Fail::unresolvable(msg.clone())));
        e.pre_filter_msg = Some(msg);
        e
    }

    /// The status of one node (that of the absent nodes when it has none of its own).
    pub fn status(&self, node: &str) -> Option<&NodeStatus> {
        match self.nodes.iter().find(|(n, _)| n == node) {
            Some((_, s)) => Some(&self.statuses[*s]),
            None => self.absent.map(|s| &self.statuses[s]),
        }
    }

    /// The nodes where preemption could help (status Unschedulable), in filter order.
    pub fn resolvable_nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|(_, s)| self.statuses[*s].resolvable)
            .map(|(n, _)| n.as_str())
    }

    /// kube-scheduler's message: "0/N nodes are available: " and the "count reason" strings
    /// sorted (as Go's sort.Strings, count included) and joined with ", ", then ".".
    pub fn message(&self) -> String {
        if self.num_nodes == 0 {
            return "no nodes available to schedule pods".into();
        }
        let mut m = format!("0/{} nodes are available:", self.num_nodes);
        if let Some(p) = &self.pre_filter_msg {
            m.push_str(&format!(" {p}."));
            return m;
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        if !parts.is_empty() {
            m.push_str(&format!(" {}.", parts.join(", ")));
        }
        m
    }

    /// The message with preemption's part (`preempt`'s error), as the FailedScheduling event
    /// and PodScheduled condition say it: "… preemption: 0/3 nodes are available: …..";
    /// an empty part (preemption did not run) adds nothing.
    pub fn message_with_preemption(&self, preemption: &str) -> String {
        let mut m = self.message();
        if !preemption.is_empty() {
            m.push_str(&format!(" preemption: {preemption}."));
        }
        m
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FitError {}
