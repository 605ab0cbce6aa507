//! [`Snapshot`]: the scheduler's cache, kept incrementally by the loop on every watch event
//! (nodes, bound / assumed pods, namespaces, PodDisruptionBudgets, nominations), each update
//! touching only what changed, plus the cluster-wide indexes the plugins read (image spread,
//! nodes holding pods with affinity).

use crate::intern::{Interner, PodKey, Terms};
use crate::node::NodeInfo;
use crate::podinfo::PodInfo;
use crate::selector::{Labels, Selector};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A PodDisruptionBudget as preemption reads it.
#[derive(Debug, Clone, Default)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    /// A PDB with no (or an empty) selector protects nothing, as in kube.
    pub selector: Option<LabelSelector>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
}

static NO_LABELS: Labels = Labels::new();

/// The scheduler's cache. Nodes keep the order in which they were first added (the order
/// `schedule`'s round-robin `start` indexes).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// uid → the node it is bound / assumed to (known or not).
    pod_node: HashMap<String, String>,
    /// Pods of nodes not known (yet), by node name.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    namespaces: HashMap<String, Labels>,
    pdbs: Vec<(Pdb, Selector)>,
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_at: HashMap<String, String>,
    /// Image name → how many nodes have it.
    images: HashMap<String, usize>,
    with_affinity: BTreeSet<usize>,
    with_required_anti: BTreeSet<usize>,
    interner: Interner,
    terms: Terms,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Adds the node or updates it (keeping its pods).
    pub fn upsert_node(&mut self, node: &Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let idx = match self.index.get(&name) {
            Some(&i) => {
                self.count_images(i, -1);
                let n = &mut self.nodes[i];
                self.interner.release_labels(&n.label_ids);
                n.set_node(node);
                n.label_ids = self.interner.intern_labels(&n.labels);
                i
            }
            None => {
                let mut info = NodeInfo::from_node(node);
                info.label_ids = self.interner.intern_labels(&info.labels);
                for p in self.orphans.remove(&name).into_iter().flatten() {
                    let key = PodKey::new(&p, &mut self.interner, &mut self.terms);
                    info.add_pod_keyed(p, key);
                }
                self.nodes.push(info);
                self.index.insert(name, self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        self.count_images(idx, 1);
        self.reindex_affinity(idx);
    }

    /// Forgets the node; its pods are kept aside and come back if it does.
    pub fn remove_node(&mut self, name: &str) {
        let Some(idx) = self.index.remove(name) else {
            return;
        };
        self.count_images(idx, -1);
        let info = self.nodes.remove(idx);
        self.interner.release_labels(&info.label_ids);
        for k in &info.keys {
            k.release(&mut self.interner, &mut self.terms);
        }
        if !info.pods.is_empty() {
            self.orphans.insert(info.name, info.pods);
        }
        for i in self.index.values_mut() {
            if *i > idx {
                *i -= 1;
            }
        }
        let shift = |s: &BTreeSet<usize>| -> BTreeSet<usize> {
            s.iter()
                .filter(|i| **i != idx)
                .map(|i| if *i > idx { i - 1 } else { *i })
                .collect()
        };
        self.with_affinity = shift(&self.with_affinity);
        self.with_required_anti = shift(&self.with_required_anti);
    }

    /// A pod bound (or assumed) to `node` and not finished; replaces an earlier version of it
    /// (by uid), and ends its nomination (an assigned pod is no longer nominated). Kept aside
    /// until the node is known.
    pub fn add_pod(&mut self, node: &str, pod: Arc<PodInfo>) {
        self.remove_pod(&pod.uid);
        self.pod_node.insert(pod.uid.clone(), node.to_string());
        match self.index.get(node) {
            Some(&i) => {
                let key = PodKey::new(&pod, &mut self.interner, &mut self.terms);
                self.nodes[i].add_pod_keyed(pod, key);
                self.reindex_affinity(i);
            }
            None => self.orphans.entry(node.to_string()).or_default().push(pod),
        }
    }

    /// Forgets the pod, wherever it is (bound, assumed, kept aside, nominated).
    pub fn remove_pod(&mut self, uid: &str) {
        self.unnominate(uid);
        let Some(node) = self.pod_node.remove(uid) else {
            return;
        };
        if let Some(&i) = self.index.get(&node) {
            if let Some(key) = self.nodes[i].remove_pod_keyed(uid) {
                key.release(&mut self.interner, &mut self.terms);
            }
            self.reindex_affinity(i);
        } else if let Some(list) = self.orphans.get_mut(&node) {
            list.retain(|p| p.uid != uid);
            if list.is_empty() {
                self.orphans.remove(&node);
            }
        }
    }

    /// A namespace's labels (for namespaceSelector).
    pub fn set_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        self.namespaces.insert(name.to_string(), labels);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// Replaces every PodDisruptionBudget.
    pub fn set_pdbs(&mut self, pdbs: Vec<Pdb>) {
        self.pdbs = pdbs
            .into_iter()
            .map(|p| {
                let s = match &p.selector {
                    Some(s) => Selector::from_label_selector(Some(s)),
                    None => Selector::Nothing,
                };
                (p, s)
            })
            .collect();
    }

    /// `status.nominatedNodeName` of a pending pod (replaces its earlier nomination).
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.unnominate(&pod.uid);
        self.nominated_at.insert(pod.uid.clone(), node.to_string());
        self.nominated
            .entry(node.to_string())
            .or_default()
            .push(pod);
    }

    pub fn unnominate(&mut self, uid: &str) {
        let Some(node) = self.nominated_at.remove(uid) else {
            return;
        };
        if let Some(list) = self.nominated.get_mut(&node) {
            list.retain(|p| p.uid != uid);
            if list.is_empty() {
                self.nominated.remove(&node);
            }
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// The nodes, in a stable order (first added first).
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node a pod is bound / assumed to.
    pub fn pod_node(&self, uid: &str) -> Option<&str> {
        self.pod_node.get(uid).map(String::as_str)
    }

    /// The pods nominated to a node.
    pub fn nominated_pods(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub(crate) fn interner(&self) -> &Interner {
        &self.interner
    }

    pub(crate) fn terms(&self) -> &Terms {
        &self.terms
    }

    pub(crate) fn has_nominations(&self) -> bool {
        !self.nominated.is_empty()
    }

    pub(crate) fn namespace_labels(&self, ns: &str) -> &Labels {
        self.namespaces.get(ns).unwrap_or(&NO_LABELS)
    }

    pub(crate) fn namespaces(&self) -> impl Iterator<Item = (&String, &Labels)> {
        self.namespaces.iter()
    }

    pub(crate) fn pdbs(&self) -> &[(Pdb, Selector)] {
        &self.pdbs
    }

    /// How many nodes have the (normalized) image.
    pub(crate) fn image_nodes(&self, image: &str) -> usize {
        self.images.get(image).copied().unwrap_or(0)
    }

    /// Indexes of the nodes holding pods with pod (anti-)affinity.
    pub(crate) fn with_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_affinity.iter().map(|&i| &self.nodes[i])
    }

    /// Indexes of the nodes holding pods with required pod anti-affinity.
    pub(crate) fn with_required_anti(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_required_anti.iter().map(|&i| &self.nodes[i])
    }

    fn count_images(&mut self, idx: usize, delta: isize) {
        for name in self.nodes[idx].images.keys() {
            if delta > 0 {
                *self.images.entry(name.clone()).or_default() += 1;
            } else if let Some(c) = self.images.get_mut(name) {
                *c -= 1;
                if *c == 0 {
                    self.images.remove(name);
                }
            }
        }
    }

    fn reindex_affinity(&mut self, idx: usize) {
        let n = &self.nodes[idx];
        for (set, on) in [
            (&mut self.with_affinity, n.with_affinity > 0),
            (&mut self.with_required_anti, n.with_required_anti > 0),
        ] {
            if on {
                set.insert(idx);
            } else {
                set.remove(&idx);
            }
        }
    }
}
