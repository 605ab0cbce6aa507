//! Label and node selectors compiled once per object, with apimachinery's semantics:
//! `metav1.LabelSelector` (In, NotIn, Exists, DoesNotExist; nil selects nothing, `{}`
//! everything; an invalid one nothing) and node selector terms (also Gt/Lt, and matchFields on
//! `metadata.name`; an empty term selects nothing, an invalid one never matches).

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

pub(crate) type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

/// One requirement on one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Req {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
    bound: i64,
}

impl Req {
    /// None when invalid (as `labels.NewRequirement`): In/NotIn need values, Exists and
    /// DoesNotExist none, Gt/Lt (node selectors only) one integer.
    pub fn new(key: &str, op: &str, values: &[String], numeric: bool) -> Option<Req> {
        let op = match op {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" if numeric => Op::Gt,
            "Lt" if numeric => Op::Lt,
            _ => return None,
        };
        let mut bound = 0;
        match op {
            Op::In | Op::NotIn if values.is_empty() => return None,
            Op::Exists | Op::DoesNotExist if !values.is_empty() => return None,
            Op::Gt | Op::Lt => {
                if values.len() != 1 {
                    return None;
                }
                bound = values[0].parse().ok()?;
            }
            _ => {}
        }
        Some(Req {
            key: key.to_string(),
            op,
            values: values.to_vec(),
            bound,
        })
    }

    pub fn is_in(key: &str, value: &str) -> Req {
        Req {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
            bound: 0,
        }
    }

    pub fn not_in(key: &str, value: &str) -> Req {
        Req {
            op: Op::NotIn,
            ..Req::is_in(key, value)
        }
    }

    pub fn matches(&self, v: Option<&str>) -> bool {
        match self.op {
            Op::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|n| n > self.bound),
            Op::Lt => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|n| n < self.bound),
        }
    }

    fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.key).map(String::as_str))
    }
}

/// A compiled label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Selector {
    /// Selects nothing (a nil selector, or an invalid one).
    Nothing,
    /// Every requirement must hold; none = everything.
    All(Vec<Req>),
}

impl Selector {
    pub fn from_label_selector(s: Option<&LabelSelector>) -> Selector {
        let Some(s) = s else {
            return Selector::Nothing;
        };
        let mut reqs = Vec::new();
        for (k, v) in s.match_labels.iter().flatten() {
            reqs.push(Req::is_in(k, v));
        }
        for e in s.match_expressions.iter().flatten() {
            let values = e.values.as_deref().unwrap_or(&[]);
            match Req::new(&e.key, &e.operator, values, false) {
                Some(r) => reqs.push(r),
                None => return Selector::Nothing,
            }
        }
        Selector::All(reqs)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::All(reqs) => reqs.iter().all(|r| r.matches_labels(labels)),
        }
    }

    /// `labels.Selector.Empty()`: no requirement (selects everything).
    pub fn is_everything(&self) -> bool {
        matches!(self, Selector::All(r) if r.is_empty())
    }

    pub fn is_nothing(&self) -> bool {
        matches!(self, Selector::Nothing)
    }

    /// Adds a requirement (a selector of nothing stays one).
    pub fn push(&mut self, r: Req) {
        if let Selector::All(v) = self {
            v.push(r);
        }
    }
}

/// One node selector term: label requirements and `metadata.name` field requirements, ANDed.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeTerm {
    labels: Vec<Req>,
    /// (equal?, field, value)
    fields: Vec<(bool, String, String)>,
    invalid: bool,
}

impl NodeTerm {
    /// None for an empty term (which selects nothing and is skipped, as kube does).
    pub fn new(t: &NodeSelectorTerm) -> Option<NodeTerm> {
        let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
        let fields = t.match_fields.as_deref().unwrap_or(&[]);
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let mut term = NodeTerm::default();
        for e in exprs {
            let values = e.values.as_deref().unwrap_or(&[]);
            match Req::new(&e.key, &e.operator, values, true) {
                Some(r) => term.labels.push(r),
                None => term.invalid = true,
            }
        }
        for e in fields {
            let values = e.values.as_deref().unwrap_or(&[]);
            match (e.operator.as_str(), values) {
                ("In", [v]) => term.fields.push((true, e.key.clone(), v.clone())),
                ("NotIn", [v]) => term.fields.push((false, e.key.clone(), v.clone())),
                _ => term.invalid = true,
            }
        }
        Some(term)
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        !self.invalid
            && self.labels.iter().all(|r| r.matches_labels(labels))
            && self.fields.iter().all(|(eq, k, v)| {
                let actual = if k == "metadata.name" { name } else { "" };
                (actual == v) == *eq
            })
    }
}

/// A pod's required node affinity: `spec.nodeSelector` AND the required node affinity terms
/// (ORed), as kube's `nodeaffinity.GetRequiredNodeAffinity`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequiredNodeAffinity {
    selector: Vec<(String, String)>,
    terms: Option<Vec<NodeTerm>>,
}

impl RequiredNodeAffinity {
    pub fn from_spec(spec: &PodSpec) -> RequiredNodeAffinity {
        let selector = spec
            .node_selector
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let terms = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| {
                r.node_selector_terms
                    .iter()
                    .filter_map(NodeTerm::new)
                    .collect()
            });
        RequiredNodeAffinity { selector, terms }
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.selector
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
            && self
                .terms
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| t.matches(name, labels)))
    }
}
