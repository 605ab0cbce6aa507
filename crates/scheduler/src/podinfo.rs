//! [`PodInfo`]: everything the decision reads from one pod, computed once per pod version
//! (requests, tolerations, node affinity, host ports, inter-pod (anti-)affinity terms, topology
//! spread constraints, images), so that filters and scores never touch or clone the Pod.

use crate::image::normalize_image;
use crate::resources::{spec_requests, Amounts, Resources};
use crate::selector::{Labels, NodeTerm, Req, RequiredNodeAffinity, Selector};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A toleration, as `v1.Toleration.ToleratesTaint` reads it.
#[derive(Debug, Clone)]
pub(crate) struct Toleration {
    key: String,
    exists: bool,
    /// An operator other than "", Equal or Exists tolerates nothing.
    valid: bool,
    value: String,
    effect: String,
}

impl Toleration {
    pub fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        (self.effect.is_empty() || self.effect == effect)
            && (self.key.is_empty() || self.key == key)
            && self.valid
            && (self.exists || self.value == value)
    }

    /// Whether it takes part in TaintToleration's score (effect empty or PreferNoSchedule).
    pub fn prefer_no_schedule(&self) -> bool {
        self.effect.is_empty() || self.effect == "PreferNoSchedule"
    }
}

/// One pod (anti-)affinity term, as kube's `framework.AffinityTerm`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AffinityTerm {
    /// The namespaces listed (the pod's own when neither namespaces nor namespaceSelector).
    pub namespaces: Vec<String>,
    /// Nothing when absent; `{}` selects every namespace.
    pub ns_selector: Selector,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(ns: &str, labels: &Labels, t: &PodAffinityTerm) -> AffinityTerm {
        let mut selector = Selector::from_label_selector(t.label_selector.as_ref());
        // matchLabelKeys / mismatchLabelKeys: the v1.32 API server merges them into the
        // labelSelector already; merging them again selects the same pods.
        if t.label_selector.is_some() {
            for k in t.match_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    selector.push(Req::is_in(k, v));
                }
            }
            for k in t.mismatch_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    selector.push(Req::not_in(k, v));
                }
            }
        }
        let listed = t.namespaces.clone().unwrap_or_default();
        let namespaces = if listed.is_empty() && t.namespace_selector.is_none() {
            vec![ns.to_string()]
        } else {
            listed
        };
        AffinityTerm {
            namespaces,
            ns_selector: Selector::from_label_selector(t.namespace_selector.as_ref()),
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether `pod` (whose namespace has `ns_labels`) is selected by this term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: &Labels) -> bool {
        (self.namespaces.contains(&pod.namespace) || self.ns_selector.matches(ns_labels))
            && self.selector.matches(&pod.labels)
    }
}

/// One topology spread constraint, as kube's `topologySpreadConstraint`.
#[derive(Debug, Clone)]
pub(crate) struct Spread {
    pub max_skew: i32,
    pub key: String,
    pub selector: Selector,
    pub min_domains: i32,
    pub honor_affinity: bool,
    pub honor_taints: bool,
    /// Whether the pod itself matches the selector.
    pub self_match: bool,
}

/// Everything the decision needs from one pod, computed once (the loop builds it once per pod
/// version and shares it with `Arc`). Keeps the Pod itself too.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// What the filters count ([`crate::pod_requests`]).
    pub requests: Resources,
    /// `status.startTime`, else `metadata.creationTimestamp`.
    pub start_time: Option<DateTime<Utc>>,
    pub(crate) req: Amounts,
    pub(crate) nonzero_cpu: i64,
    pub(crate) nonzero_mem: i64,
    pub(crate) node_name: Option<String>,
    pub(crate) nominated_node: Option<String>,
    pub(crate) tolerations: Vec<Toleration>,
    pub(crate) node_affinity: RequiredNodeAffinity,
    /// NodeAffinity's PreFilter: the nodes named by `metadata.name In` matchFields in every
    /// required term (empty = the terms conflict); None = any node.
    pub(crate) node_names: Option<BTreeSet<String>>,
    pub(crate) preferred_nodes: Vec<(i64, NodeTerm)>,
    /// (protocol, hostPort, hostIP), defaults filled in (TCP, 0.0.0.0).
    pub(crate) host_ports: Vec<(String, i32, String)>,
    pub(crate) affinity: Vec<AffinityTerm>,
    pub(crate) anti_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_affinity: Vec<(i64, AffinityTerm)>,
    pub(crate) preferred_anti_affinity: Vec<(i64, AffinityTerm)>,
    pub(crate) hard_spread: Vec<Spread>,
    pub(crate) soft_spread: Vec<Spread>,
    /// Normalized images of the init and app containers.
    pub(crate) images: Vec<String>,
    pub(crate) num_containers: usize,
    pub(crate) preempt_never: bool,
    pub(crate) terminating: bool,
    pub(crate) terminating_by_preemption: bool,
}

fn to_chrono(t: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

fn node_names(spec: &PodSpec) -> Option<BTreeSet<String>> {
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for t in terms {
        let mut term: Option<BTreeSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let s: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term = Some(match term {
                    None => s,
                    Some(t) => t.intersection(&s).cloned().collect(),
                });
            }
        }
        names.extend(term?);
    }
    Some(names)
}

fn spread(labels: &Labels, c: &k8s_openapi::api::core::v1::TopologySpreadConstraint) -> Spread {
    let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
    for k in c.match_label_keys.iter().flatten() {
        if let Some(v) = labels.get(k) {
            selector.push(Req::is_in(k, v));
        }
    }
    Spread {
        max_skew: c.max_skew,
        key: c.topology_key.clone(),
        self_match: selector.matches(labels),
        selector,
        min_domains: c.min_domains.unwrap_or(1),
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let empty = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&empty);
        let meta = &pod.metadata;
        let status = pod.status.as_ref();
        let namespace = meta.namespace.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let mut requests = spec_requests(spec, false);
        requests.insert("pods".into(), 1);
        let nonzero = spec_requests(spec, true);
        let get = |r: &Resources, k: &str| {
            r.get(k).copied().unwrap_or(0).clamp(0, i64::MAX as i128) as i64
        };
        let tolerations = spec
            .tolerations
            .iter()
            .flatten()
            .map(|t| {
                let op = t.operator.as_deref().unwrap_or("");
                Toleration {
                    key: t.key.clone().unwrap_or_default(),
                    exists: op == "Exists",
                    valid: matches!(op, "" | "Equal" | "Exists"),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone().unwrap_or_default(),
                }
            })
            .collect();
        let node_affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref());
        let preferred_nodes = node_affinity
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0)
            .filter_map(|t| NodeTerm::new(&t.preference).map(|n| (t.weight as i64, n)))
            .collect();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let host_ports = spec
            .containers
            .iter()
            .chain(sidecars)
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let port = p.host_port.filter(|h| *h > 0)?;
                let proto = p.protocol.clone().filter(|s| !s.is_empty());
                let ip = p.host_ip.clone().filter(|s| !s.is_empty());
                Some((
                    proto.unwrap_or_else(|| "TCP".into()),
                    port,
                    ip.unwrap_or_else(|| "0.0.0.0".into()),
                ))
            })
            .collect();
        let pa = spec.affinity.as_ref().and_then(|a| a.pod_affinity.as_ref());
        let paa = spec
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref());
        let term = |t: &PodAffinityTerm| AffinityTerm::new(&namespace, &labels, t);
        let required =
            |v: Option<&Vec<PodAffinityTerm>>| v.into_iter().flatten().map(term).collect();
        let preferred = |v: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            v.into_iter()
                .flatten()
                .map(|w| (w.weight as i64, term(&w.pod_affinity_term)))
                .collect()
        };
        let constraints = spec.topology_spread_constraints.iter().flatten();
        let hard_spread = constraints
            .clone()
            .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
            .map(|c| spread(&labels, c))
            .collect();
        let soft_spread = constraints
            .filter(|c| c.when_unsatisfiable == "ScheduleAnyway")
            .map(|c| spread(&labels, c))
            .collect();
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        let images = containers
            .clone()
            .filter_map(|c| c.image.as_deref())
            .map(normalize_image)
            .filter(|i| !i.is_empty())
            .collect();
        let terminating = meta.deletion_timestamp.is_some();
        // kube's podTerminatingByPreemption wants a DisruptionTarget condition with reason
        // PreemptionByScheduler; a loop that does not set one still gets the protection.
        let terminating_by_preemption = terminating
            && status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget"))
                .is_none_or(|c| {
                    c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler")
                });
        PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            req: Amounts::from_resources(&requests),
            nonzero_cpu: get(&nonzero, "cpu"),
            nonzero_mem: get(&nonzero, "memory"),
            requests,
            start_time: status
                .and_then(|s| s.start_time.as_ref())
                .or(meta.creation_timestamp.as_ref())
                .and_then(to_chrono),
            node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
            nominated_node: status
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty()),
            tolerations,
            node_affinity: RequiredNodeAffinity::from_spec(spec),
            node_names: node_names(spec),
            preferred_nodes,
            host_ports,
            affinity: required(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            anti_affinity: required(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            hard_spread,
            soft_spread,
            images,
            num_containers: containers.count(),
            preempt_never: spec.preemption_policy.as_deref() == Some("Never"),
            terminating,
            terminating_by_preemption,
            namespace,
            labels,
            pod,
        }
    }

    /// `spec.nodeName`, when set.
    pub fn node_name(&self) -> Option<&str> {
        self.node_name.as_deref()
    }

    /// `status.nominatedNodeName`, when set.
    pub fn nominated_node_name(&self) -> Option<&str> {
        self.nominated_node.as_deref()
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub fn is_terminating(&self) -> bool {
        self.terminating
    }

    /// Whether any toleration tolerates the taint.
    pub(crate) fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        self.tolerations
            .iter()
            .any(|t| t.tolerates(key, value, effect))
    }

    /// Whether it has terms InterPodAffinity's score reads from existing pods (required
    /// affinity, preferred affinity or anti-affinity).
    pub(crate) fn has_scoring_affinity(&self) -> bool {
        !self.affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    /// Whether it has required pod anti-affinity terms.
    pub(crate) fn has_required_anti(&self) -> bool {
        !self.anti_affinity.is_empty()
    }
}
