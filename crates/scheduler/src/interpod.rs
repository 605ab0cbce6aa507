//! InterPodAffinity as kube-scheduler: required pod affinity / anti-affinity of the incoming
//! pod and, symmetrically, existing pods' required anti-affinity against it (a filter, over
//! topology-pair counts built once per attempt by walking the existing pods — kube's
//! PreFilter); preferred terms both ways and existing pods' hard affinity (at
//! hardPodAffinityWeight) as a score, normalized min-max.

use crate::config::Profile;
use crate::filters::Fail;
use crate::hash::FxMap;
use crate::node::NodeInfo;
use crate::podinfo::{AffinityTerm, PodInfo};
use crate::selector::{Labels, Selector};
use crate::snapshot::Snapshot;
use std::borrow::Cow;
use std::collections::hash_map::Entry;

pub(crate) const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub(crate) const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub(crate) const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

static NO_LABELS: Labels = Labels::new();

/// topology key → value → count (kube's `topologyToMatchedTermCount`, zero entries dropped),
/// borrowing the keys and values from the snapshot's node labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopoCounts<'a>(Vec<(&'a str, FxMap<&'a str, i64>)>);

impl<'a> TopoCounts<'a> {
    fn update(&mut self, labels: &'a Labels, key: &str, delta: i64, keep_zero: bool) {
        if let Some((k, v)) = labels.get_key_value(key) {
            self.add(k, v, delta, keep_zero);
        }
    }

    fn add(&mut self, key: &'a str, value: &'a str, delta: i64, keep_zero: bool) {
        let map = match self.0.iter().position(|(x, _)| *x == key) {
            Some(i) => &mut self.0[i].1,
            None => {
                self.0.push((key, FxMap::default()));
                &mut self.0.last_mut().expect("just pushed").1
            }
        };
        match map.entry(value) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += delta;
                if *e.get() == 0 && !keep_zero {
                    e.remove();
                }
            }
            Entry::Vacant(e) => {
                if delta != 0 || keep_zero {
                    e.insert(delta);
                }
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, m)| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, m)| m.is_empty())
    }

    /// Whether any of the node's topology values has a positive count.
    fn node_any(&self, labels: &Labels) -> bool {
        self.0.iter().any(|(k, m)| {
            labels
                .get(*k)
                .and_then(|v| m.get(v.as_str()))
                .is_some_and(|c| *c > 0)
        })
    }

    /// The sum over the node's topology values.
    fn node_sum(&self, labels: &Labels) -> i64 {
        self.0
            .iter()
            .filter_map(|(k, m)| labels.get(*k).and_then(|v| m.get(v.as_str())))
            .sum()
    }
}

/// The incoming pod's term with its namespaceSelector resolved into namespaces (kube's
/// `mergeAffinityTermNamespacesIfNotEmpty`; `{}` stays "every namespace").
fn resolve<'a>(t: &'a AffinityTerm, snap: &Snapshot) -> Cow<'a, AffinityTerm> {
    if t.ns_selector.is_nothing() || t.ns_selector.is_everything() {
        return Cow::Borrowed(t);
    }
    let mut t = t.clone();
    for (name, labels) in snap.namespaces() {
        if t.ns_selector.matches(labels) && !t.namespaces.contains(name) {
            t.namespaces.push(name.clone());
        }
    }
    t.ns_selector = Selector::Nothing;
    Cow::Owned(t)
}

/// kube's PreFilter state.
#[derive(Debug, Clone)]
pub(crate) struct FilterState<'a> {
    affinity: Vec<Cow<'a, AffinityTerm>>,
    anti: Vec<Cow<'a, AffinityTerm>>,
    ns_labels: &'a Labels,
    existing_anti: TopoCounts<'a>,
    affinity_counts: TopoCounts<'a>,
    anti_counts: TopoCounts<'a>,
    /// The pod matches all its own affinity terms.
    self_match: bool,
}

fn matches_all(terms: &[Cow<AffinityTerm>], p: &PodInfo, ns_labels: &Labels) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(p, ns_labels))
}

/// None when kube would skip the plugin (no required terms, no existing anti-affinity).
pub(crate) fn pre_filter<'a>(pod: &'a PodInfo, snap: &'a Snapshot) -> Option<FilterState<'a>> {
    let ns_labels = snap.namespace_labels(&pod.namespace);
    let mut s = FilterState {
        affinity: pod.affinity.iter().map(|t| resolve(t, snap)).collect(),
        anti: pod.anti_affinity.iter().map(|t| resolve(t, snap)).collect(),
        ns_labels,
        existing_anti: TopoCounts::default(),
        affinity_counts: TopoCounts::default(),
        anti_counts: TopoCounts::default(),
        self_match: false,
    };
    let existing = |counts: &mut TopoCounts<'a>, node: &'a NodeInfo, p: &PodInfo| {
        for t in &p.anti_affinity {
            if t.matches(pod, ns_labels) {
                counts.update(&node.labels, &t.topology_key, 1, false);
            }
        }
    };
    if s.affinity.is_empty() && s.anti.is_empty() {
        for node in snap.with_required_anti() {
            for p in node.pods.iter().filter(|p| p.has_required_anti()) {
                existing(&mut s.existing_anti, node, p);
            }
        }
    } else {
        // One pass over every pod for the incoming pod's terms and existing anti-affinity,
        // each node's topology values looked up once.
        let mut aff: Vec<(&str, &str)> = Vec::new();
        let mut anti: Vec<Option<(&str, &str)>> = Vec::new();
        let kv = |node: &'a NodeInfo, t: &AffinityTerm| {
            node.labels
                .get_key_value(&t.topology_key)
                .map(|(k, v)| (k.as_str(), v.as_str()))
        };
        for node in snap.nodes().iter().filter(|n| !n.pods.is_empty()) {
            aff.clear();
            aff.extend(s.affinity.iter().filter_map(|t| kv(node, t)));
            anti.clear();
            anti.extend(s.anti.iter().map(|t| kv(node, t)));
            for p in &node.pods {
                if p.has_required_anti() {
                    existing(&mut s.existing_anti, node, p);
                }
                if !aff.is_empty() && matches_all(&s.affinity, p, &NO_LABELS) {
                    for (k, v) in &aff {
                        s.affinity_counts.add(k, v, 1, false);
                    }
                }
                for (t, kv) in s.anti.iter().zip(&anti) {
                    if let Some((k, v)) = kv {
                        if t.matches(p, &NO_LABELS) {
                            s.anti_counts.add(k, v, 1, false);
                        }
                    }
                }
            }
        }
    }
    if s.existing_anti.is_empty() && s.affinity.is_empty() && s.anti.is_empty() {
        return None;
    }
    s.self_match = matches_all(&s.affinity, pod, ns_labels);
    Some(s)
}

impl<'a> FilterState<'a> {
    /// The incoming pod's terms against `p` on `node`.
    fn count(&mut self, p: &PodInfo, node: &'a NodeInfo, delta: i64) {
        if matches_all(&self.affinity, p, &NO_LABELS) {
            for t in &self.affinity {
                self.affinity_counts
                    .update(&node.labels, &t.topology_key, delta, false);
            }
        }
        for t in &self.anti {
            if t.matches(p, &NO_LABELS) {
                self.anti_counts
                    .update(&node.labels, &t.topology_key, delta, false);
            }
        }
    }

    /// kube's AddPod / RemovePod extension: `p` (not the incoming pod) counted on `node`.
    pub fn update(&mut self, pod: &PodInfo, p: &PodInfo, node: &'a NodeInfo, delta: i64) {
        for t in &p.anti_affinity {
            if t.matches(pod, self.ns_labels) {
                self.existing_anti
                    .update(&node.labels, &t.topology_key, delta, false);
            }
        }
        self.count(p, node, delta);
    }

    pub fn filter(&self, node: &NodeInfo) -> Result<(), Fail> {
        if !self.affinity.is_empty() {
            let mut pods_exist = true;
            for t in &self.affinity {
                match node.labels.get(&t.topology_key) {
                    Some(v) => {
                        if self.affinity_counts.get(&t.topology_key, v) <= 0 {
                            pods_exist = false;
                        }
                    }
                    None => return Err(Fail::unresolvable(ERR_AFFINITY)),
                }
            }
            // The first of a group of pods with affinity to each other may go anywhere.
            if !(pods_exist || self.affinity_counts.is_empty() && self.self_match) {
                return Err(Fail::unresolvable(ERR_AFFINITY));
            }
        }
        if !self.anti_counts.is_empty() {
            for t in &self.anti {
                if let Some(v) = node.labels.get(&t.topology_key) {
                    if self.anti_counts.get(&t.topology_key, v) > 0 {
                        return Err(Fail::resolvable(ERR_ANTI_AFFINITY));
                    }
                }
            }
        }
        if !self.existing_anti.is_empty() && self.existing_anti.node_any(&node.labels) {
            return Err(Fail::resolvable(ERR_EXISTING_ANTI_AFFINITY));
        }
        Ok(())
    }
}

/// InterPodAffinity's score over `nodes` (normalized 0–100), or None when kube skips it.
pub(crate) fn score<'s>(
    pod: &PodInfo,
    snap: &'s Snapshot,
    profile: &Profile,
    nodes: &[&NodeInfo],
) -> Option<Vec<i64>> {
    let has_terms = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    if nodes.is_empty() || (profile.ignore_preferred_terms_of_existing_pods && !has_terms) {
        return None;
    }
    let ns_labels = snap.namespace_labels(&pod.namespace);
    let resolved = |v: &'_ [(i64, AffinityTerm)]| -> Vec<(i64, AffinityTerm)> {
        v.iter()
            .map(|(w, t)| (*w, resolve(t, snap).into_owned()))
            .collect()
    };
    let (pref, pref_anti) = if has_terms {
        (
            resolved(&pod.preferred_affinity),
            resolved(&pod.preferred_anti_affinity),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let hard = profile.hard_pod_affinity_weight;
    let mut topo = TopoCounts::default();
    let mut any = false;
    let mut process = |node: &'s NodeInfo, p: &PodInfo| {
        if node.labels.is_empty() {
            return;
        }
        let mut add = |t: &AffinityTerm, w: i64| {
            if node.labels.contains_key(&t.topology_key) {
                topo.update(&node.labels, &t.topology_key, w, true);
                any = true;
            }
        };
        for (w, t) in &pref {
            if t.matches(p, &NO_LABELS) {
                add(t, *w);
            }
        }
        for (w, t) in &pref_anti {
            if t.matches(p, &NO_LABELS) {
                add(t, -*w);
            }
        }
        if hard > 0 {
            for t in &p.affinity {
                if t.matches(pod, ns_labels) {
                    add(t, hard);
                }
            }
        }
        for (w, t) in &p.preferred_affinity {
            if t.matches(pod, ns_labels) {
                add(t, *w);
            }
        }
        for (w, t) in &p.preferred_anti_affinity {
            if t.matches(pod, ns_labels) {
                add(t, -*w);
            }
        }
    };
    if has_terms {
        for node in snap.nodes() {
            for p in &node.pods {
                process(node, p);
            }
        }
    } else {
        for node in snap.with_affinity() {
            for p in node.pods.iter().filter(|p| p.has_scoring_affinity()) {
                process(node, p);
            }
        }
    }
    if !any {
        return None;
    }
    let raw: Vec<i64> = nodes.iter().map(|n| topo.node_sum(&n.labels)).collect();
    let (min, max) = raw
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let diff = max - min;
    Some(
        raw.iter()
            .map(|s| {
                if diff > 0 {
                    (100.0 * ((s - min) as f64 / diff as f64)) as i64
                } else {
                    0
                }
            })
            .collect(),
    )
}
