//! InterPodAffinity as kube-scheduler: required pod affinity / anti-affinity of the incoming
//! pod and, symmetrically, existing pods' required anti-affinity against it (a filter, over
//! topology-pair counts built once per attempt by walking the existing pods — kube's
//! PreFilter); preferred terms both ways and existing pods' hard affinity (at
//! hardPodAffinityWeight) as a score, normalized min-max.

use crate::config::Profile;
use crate::filters::Fail;
use crate::hash::FxMap;
use crate::intern::{value_of, IdTerm, Interner};
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

/// topology key → value → score for InterPodAffinity's score (entries kept at zero: kube
/// skips the score only when no term matched at all), borrowing the snapshot's node labels.
#[derive(Debug, Clone, Default)]
struct TopoScores<'a>(Vec<(&'a str, FxMap<&'a str, i64>)>);

impl<'a> TopoScores<'a> {
    fn add(&mut self, labels: &'a Labels, key: &str, delta: i64) {
        let Some((k, v)) = labels.get_key_value(key) else {
            return;
        };
        let map = match self.0.iter().position(|(x, _)| *x == key) {
            Some(i) => &mut self.0[i].1,
            None => {
                self.0.push((k, FxMap::default()));
                &mut self.0.last_mut().expect("just pushed").1
            }
        };
        *map.entry(v.as_str()).or_insert(0) += delta;
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// (topology key id, value id) → count, for the filter (kube's `topologyToMatchedTermCount`,
/// zero entries dropped).
#[derive(Debug, Clone, Default)]
struct IdCounts(Vec<(u32, FxMap<u32, i64>)>);

impl IdCounts {
    fn add(&mut self, key: u32, value: u32, delta: i64) {
        let map = match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut self.0[i].1,
            None => {
                self.0.push((key, FxMap::default()));
                &mut self.0.last_mut().expect("just pushed").1
            }
        };
        match map.entry(value) {
            Entry::Occupied(mut e) => {
                *e.get_mut() += delta;
                if *e.get() == 0 {
                    e.remove();
                }
            }
            Entry::Vacant(e) => {
                if delta != 0 {
                    e.insert(delta);
                }
            }
        }
    }

    /// Counts one more (or less) on the node's value of `key`, if it has one.
    fn add_on(&mut self, node: &NodeInfo, key: u32, delta: i64) {
        if let Some(v) = value_of(&node.label_ids, key) {
            self.add(key, v, delta);
        }
    }

    fn get(&self, key: u32, value: u32) -> i64 {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, m)| m.get(&value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, m)| m.is_empty())
    }

    /// Whether any of the node's topology values has a positive count.
    fn node_any(&self, node: &NodeInfo) -> bool {
        self.0.iter().any(|(k, m)| {
            value_of(&node.label_ids, *k)
                .and_then(|v| m.get(&v))
                .is_some_and(|c| *c > 0)
        })
    }
}

/// kube's PreFilter state.
#[derive(Debug, Clone)]
pub(crate) struct FilterState<'a> {
    affinity: Vec<Cow<'a, AffinityTerm>>,
    anti: Vec<Cow<'a, AffinityTerm>>,
    /// The same terms over the snapshot's ids.
    affinity_ids: Vec<IdTerm>,
    anti_ids: Vec<IdTerm>,
    ns_labels: &'a Labels,
    interner: &'a Interner,
    existing_anti: IdCounts,
    affinity_counts: IdCounts,
    anti_counts: IdCounts,
    /// The pod matches all its own affinity terms.
    self_match: bool,
}

fn matches_all(terms: &[Cow<AffinityTerm>], p: &PodInfo, ns_labels: &Labels) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(p, ns_labels))
}

/// None when kube would skip the plugin (no required terms, no existing anti-affinity).
pub(crate) fn pre_filter<'a>(pod: &'a PodInfo, snap: &'a Snapshot) -> Option<FilterState<'a>> {
    let interner = snap.interner();
    let ns_labels = snap.namespace_labels(&pod.namespace);
    let affinity: Vec<Cow<AffinityTerm>> = pod.affinity.iter().map(|t| resolve(t, snap)).collect();
    let anti: Vec<Cow<AffinityTerm>> = pod.anti_affinity.iter().map(|t| resolve(t, snap)).collect();
    let compile = |terms: &[Cow<AffinityTerm>]| -> Vec<IdTerm> {
        terms
            .iter()
            .map(|t| IdTerm::new(t, |s| interner.get(s)))
            .collect()
    };
    let mut s = FilterState {
        affinity_ids: compile(&affinity),
        anti_ids: compile(&anti),
        affinity,
        anti,
        ns_labels,
        interner,
        existing_anti: IdCounts::default(),
        affinity_counts: IdCounts::default(),
        anti_counts: IdCounts::default(),
        self_match: false,
    };
    // The incoming pod as the existing pods' terms see it.
    let ns = interner.get(&pod.namespace);
    let labels = interner.lookup_labels(&pod.labels);
    // Each distinct existing term is matched against the pod once.
    let table = snap.terms();
    let mut memo = vec![0u8; table.len()];
    let mut existing = |counts: &mut IdCounts, node: &NodeInfo, ids: &[u32]| {
        for &id in ids {
            let Some(t) = table.get(id) else { continue };
            let m = &mut memo[id as usize];
            if *m == 0 {
                *m = if t.matches(ns, ns_labels, &labels) {
                    2
                } else {
                    1
                };
            }
            if *m == 2 {
                counts.add_on(node, t.key, 1);
            }
        }
    };
    if s.affinity.is_empty() && s.anti.is_empty() {
        for node in snap.with_required_anti() {
            for k in node.keys.iter().filter(|k| !k.anti.is_empty()) {
                existing(&mut s.existing_anti, node, &k.anti);
            }
        }
    } else {
        // One pass over every pod for the incoming pod's terms and existing anti-affinity;
        // a node's topology values are looked up once, when a pod there matches.
        for node in snap.nodes().iter().filter(|n| !n.pods.is_empty()) {
            for k in &node.keys {
                if !k.anti.is_empty() {
                    existing(&mut s.existing_anti, node, &k.anti);
                }
                if !s.affinity_ids.is_empty()
                    && s.affinity_ids
                        .iter()
                        .all(|t| t.matches(k.ns, &NO_LABELS, k.labels()))
                {
                    for t in &s.affinity_ids {
                        s.affinity_counts.add_on(node, t.key, 1);
                    }
                }
                for t in &s.anti_ids {
                    if t.matches(k.ns, &NO_LABELS, k.labels()) {
                        s.anti_counts.add_on(node, t.key, 1);
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

impl FilterState<'_> {
    /// kube's AddPod / RemovePod extension: `p` (not the incoming pod) counted on `node`.
    pub fn update(&mut self, pod: &PodInfo, p: &PodInfo, node: &NodeInfo, delta: i64) {
        for t in &p.anti_affinity {
            if t.matches(pod, self.ns_labels) {
                let key = self.interner.get(&t.topology_key);
                self.existing_anti.add_on(node, key, delta);
            }
        }
        if matches_all(&self.affinity, p, &NO_LABELS) {
            for t in &self.affinity_ids {
                self.affinity_counts.add_on(node, t.key, delta);
            }
        }
        for (t, ids) in self.anti.iter().zip(&self.anti_ids) {
            if t.matches(p, &NO_LABELS) {
                self.anti_counts.add_on(node, ids.key, delta);
            }
        }
    }

    pub fn filter(&self, node: &NodeInfo) -> Result<(), Fail> {
        if !self.affinity_ids.is_empty() {
            let mut pods_exist = true;
            for t in &self.affinity_ids {
                match value_of(&node.label_ids, t.key) {
                    Some(v) => {
                        if self.affinity_counts.get(t.key, v) <= 0 {
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
            for t in &self.anti_ids {
                if let Some(v) = value_of(&node.label_ids, t.key) {
                    if self.anti_counts.get(t.key, v) > 0 {
                        return Err(Fail::resolvable(ERR_ANTI_AFFINITY));
                    }
                }
            }
        }
        if !self.existing_anti.is_empty() && self.existing_anti.node_any(node) {
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
    let mut topo = TopoScores::default();
    let mut process = |node: &'s NodeInfo, p: &PodInfo| {
        if node.labels.is_empty() {
            return;
        }
        let mut add = |t: &AffinityTerm, w: i64| topo.add(&node.labels, &t.topology_key, w);
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
    if topo.is_empty() {
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
