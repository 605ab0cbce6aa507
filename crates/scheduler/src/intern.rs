//! Interned label keys, values and namespaces: the snapshot turns those of its nodes and bound
//! pods into u32 ids (reference counted, reused once free), so that the per-attempt scans over
//! every pod (inter-pod affinity, topology spread) compare integers in compact per-node arrays
//! instead of chasing strings.

use crate::hash::FxMap;
use crate::podinfo::{AffinityTerm, PodInfo};
use crate::selector::{Labels, Op, Selector};
use std::sync::Arc;

/// The id of a string the interner does not know: equal to no interned one.
pub(crate) const UNKNOWN: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    ids: FxMap<Arc<str>, u32>,
    strs: Vec<Option<Arc<str>>>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Interner {
    /// The id of `s`, taking a reference.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            self.refs[id as usize] += 1;
            return id;
        }
        let s: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strs[id as usize] = Some(s.clone());
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.strs.push(Some(s.clone()));
                self.refs.push(1);
                (self.strs.len() - 1) as u32
            }
        };
        self.ids.insert(s, id);
        id
    }

    /// Drops a reference taken by `intern`.
    pub fn release(&mut self, id: u32) {
        let Some(r) = self.refs.get_mut(id as usize) else {
            return;
        };
        *r -= 1;
        if *r == 0 {
            if let Some(s) = self.strs[id as usize].take() {
                self.ids.remove(&s);
            }
            self.free.push(id);
        }
    }

    /// The id of `s` (no reference), or [`UNKNOWN`].
    pub fn get(&self, s: &str) -> u32 {
        self.ids.get(s).copied().unwrap_or(UNKNOWN)
    }

    /// Labels as (key, value) ids sorted by key, taking references.
    pub fn intern_labels(&mut self, labels: &Labels) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = labels
            .iter()
            .map(|(k, val)| (self.intern(k), self.intern(val)))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn release_labels(&mut self, labels: &[(u32, u32)]) {
        for (k, v) in labels {
            self.release(*k);
            self.release(*v);
        }
    }

    /// Labels as ids without references; keys not interned are left out (no interned
    /// selector names them), values not interned are [`UNKNOWN`].
    pub fn lookup_labels(&self, labels: &Labels) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = labels
            .iter()
            .map(|(k, val)| (self.get(k), self.get(val)))
            .filter(|(k, _)| *k != UNKNOWN)
            .collect();
        v.sort_unstable();
        v
    }
}

/// The value id of `key` in id labels.
pub(crate) fn value_of(labels: &[(u32, u32)], key: u32) -> Option<u32> {
    if key == UNKNOWN {
        return None;
    }
    labels
        .binary_search_by_key(&key, |(k, _)| *k)
        .ok()
        .map(|i| labels[i].1)
}

#[derive(Debug, Clone)]
pub(crate) struct IdReq {
    key: u32,
    op: Op,
    values: Vec<u32>,
}

/// A label selector over id labels.
#[derive(Debug, Clone)]
pub(crate) enum IdSelector {
    Nothing,
    All(Vec<IdReq>),
}

impl IdSelector {
    /// Compiles `sel` with `id` (interning or looking up); values without an id are left out.
    pub fn new(sel: &Selector, mut id: impl FnMut(&str) -> u32) -> IdSelector {
        match sel {
            Selector::Nothing => IdSelector::Nothing,
            Selector::All(reqs) => IdSelector::All(
                reqs.iter()
                    .map(|r| IdReq {
                        key: id(&r.key),
                        op: r.op,
                        values: r
                            .values
                            .iter()
                            .map(|v| id(v))
                            .filter(|v| *v != UNKNOWN)
                            .collect(),
                    })
                    .collect(),
            ),
        }
    }

    pub fn is_everything(&self) -> bool {
        matches!(self, IdSelector::All(r) if r.is_empty())
    }

    pub fn matches(&self, labels: &[(u32, u32)]) -> bool {
        let IdSelector::All(reqs) = self else {
            return false;
        };
        reqs.iter().all(|r| {
            let v = value_of(labels, r.key);
            match r.op {
                Op::In => v.is_some_and(|v| r.values.contains(&v)),
                Op::NotIn => v.is_none_or(|v| !r.values.contains(&v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                // Label selectors have no Gt / Lt.
                Op::Gt | Op::Lt => false,
            }
        })
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        let reqs = match self {
            IdSelector::Nothing => &[][..],
            IdSelector::All(r) => &r[..],
        };
        reqs.iter()
            .flat_map(|r| std::iter::once(r.key).chain(r.values.iter().copied()))
    }
}

/// A pod (anti-)affinity term over ids.
#[derive(Debug, Clone)]
pub(crate) struct IdTerm {
    namespaces: Vec<u32>,
    ns_selector: Selector,
    pub selector: IdSelector,
    pub key: u32,
}

impl IdTerm {
    pub fn new(t: &AffinityTerm, mut id: impl FnMut(&str) -> u32) -> IdTerm {
        IdTerm {
            namespaces: t
                .namespaces
                .iter()
                .map(|n| id(n))
                .filter(|n| *n != UNKNOWN)
                .collect(),
            ns_selector: t.ns_selector.clone(),
            selector: IdSelector::new(&t.selector, &mut id),
            key: id(&t.topology_key),
        }
    }

    /// Whether a pod of namespace `ns` (whose labels are `ns_labels`) with `labels` matches.
    pub fn matches(&self, ns: u32, ns_labels: &Labels, labels: &[(u32, u32)]) -> bool {
        (self.namespaces.contains(&ns) || self.ns_selector.matches(ns_labels))
            && self.selector.matches(labels)
    }

    fn release(&self, interner: &mut Interner) {
        for id in self
            .namespaces
            .iter()
            .copied()
            .chain(self.selector.ids())
            .chain([self.key])
        {
            if id != UNKNOWN {
                interner.release(id);
            }
        }
    }
}

const INLINE: usize = 6;

/// Id labels, inline when few (most pods), so that a scan does not leave the node's keys.
#[derive(Debug, Clone)]
pub(crate) enum IdLabels {
    Inline(u8, [(u32, u32); INLINE]),
    Heap(Vec<(u32, u32)>),
}

impl IdLabels {
    fn new(v: Vec<(u32, u32)>) -> IdLabels {
        if v.len() > INLINE {
            return IdLabels::Heap(v);
        }
        let mut a = [(0, 0); INLINE];
        a[..v.len()].copy_from_slice(&v);
        IdLabels::Inline(v.len() as u8, a)
    }

    pub fn as_slice(&self) -> &[(u32, u32)] {
        match self {
            IdLabels::Inline(n, a) => &a[..*n as usize],
            IdLabels::Heap(v) => v,
        }
    }
}

/// The distinct required anti-affinity terms of the bound pods (replicas share theirs), each
/// compiled once over ids and reference counted, so that an attempt matches each only once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Terms {
    ids: FxMap<AffinityTerm, u32>,
    terms: Vec<Option<(IdTerm, AffinityTerm, u32)>>,
    free: Vec<u32>,
}

impl Terms {
    fn add(&mut self, t: &AffinityTerm, interner: &mut Interner) -> u32 {
        if let Some(&id) = self.ids.get(t) {
            if let Some((_, _, refs)) = &mut self.terms[id as usize] {
                *refs += 1;
            }
            return id;
        }
        let entry = Some((IdTerm::new(t, |s| interner.intern(s)), t.clone(), 1));
        let id = match self.free.pop() {
            Some(id) => {
                self.terms[id as usize] = entry;
                id
            }
            None => {
                self.terms.push(entry);
                (self.terms.len() - 1) as u32
            }
        };
        self.ids.insert(t.clone(), id);
        id
    }

    fn release(&mut self, id: u32, interner: &mut Interner) {
        let Some(slot) = self.terms.get_mut(id as usize) else {
            return;
        };
        let Some((_, _, refs)) = slot else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            if let Some((term, source, _)) = slot.take() {
                term.release(interner);
                self.ids.remove(&source);
            }
            self.free.push(id);
        }
    }

    /// How many ids (some possibly free).
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn get(&self, id: u32) -> Option<&IdTerm> {
        self.terms.get(id as usize)?.as_ref().map(|(t, _, _)| t)
    }
}

/// A bound pod as the scans read it.
#[derive(Debug, Clone)]
pub(crate) struct PodKey {
    pub ns: u32,
    pub terminating: bool,
    labels: IdLabels,
    /// Its required anti-affinity terms (ids into [`Terms`]).
    pub anti: Vec<u32>,
}

impl PodKey {
    /// A key for a pod outside any snapshot (matches nothing).
    pub fn none() -> PodKey {
        PodKey {
            ns: UNKNOWN,
            terminating: false,
            labels: IdLabels::new(Vec::new()),
            anti: Vec::new(),
        }
    }

    pub fn new(p: &PodInfo, interner: &mut Interner, terms: &mut Terms) -> PodKey {
        PodKey {
            ns: interner.intern(&p.namespace),
            terminating: p.terminating,
            labels: IdLabels::new(interner.intern_labels(&p.labels)),
            anti: p
                .anti_affinity
                .iter()
                .map(|t| terms.add(t, interner))
                .collect(),
        }
    }

    pub fn labels(&self) -> &[(u32, u32)] {
        self.labels.as_slice()
    }

    pub fn release(&self, interner: &mut Interner, terms: &mut Terms) {
        if self.ns == UNKNOWN {
            return;
        }
        interner.release(self.ns);
        interner.release_labels(self.labels.as_slice());
        for t in &self.anti {
            terms.release(*t, interner);
        }
    }
}
