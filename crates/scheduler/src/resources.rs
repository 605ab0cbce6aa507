//! Resource amounts: what a pod requests (kube's `resourcehelper.PodRequests`: the larger of
//! the app containers' sum and any init container, sidecars added to both, plus overhead) and
//! the compact amounts ([`Amounts`]) the filters and scores read on the hot path.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Resource amounts in milli-units (cpu) or units (everything else).
pub type Resources = BTreeMap<String, i128>;

/// What kube-scheduler counts, when scoring, for a container without a cpu request.
pub(crate) const DEFAULT_MILLI_CPU: i64 = 100;
/// … and without a memory request (200 MB).
pub(crate) const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// A quantity in milli-units for cpu, in units (rounded up, as `Quantity.Value()`) otherwise.
pub(crate) fn qty(q: &Quantity, name: &str) -> i128 {
    let v = capstan_validation::quantity::Quantity::parse(&q.0)
        .map(|q| q.milli_value())
        .unwrap_or(0);
    if name == "cpu" {
        v
    } else if v >= 0 {
        (v + 999) / 1000
    } else {
        v / 1000
    }
}

fn add(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn max_into(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
}

fn container_requests(c: &Container, non_missing: bool) -> Resources {
    let mut r: Resources = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|m| m.iter().map(|(k, q)| (k.clone(), qty(q, k))).collect())
        .unwrap_or_default();
    if non_missing {
        r.entry("cpu".into()).or_insert(DEFAULT_MILLI_CPU as i128);
        r.entry("memory".into()).or_insert(DEFAULT_MEMORY as i128);
    }
    r
}

/// kube's `PodRequests`; with `non_missing`, a container lacking a cpu / memory request counts
/// 100m / 200MB (`NonMissingContainerRequests`, what the scores use).
pub(crate) fn spec_requests(spec: &PodSpec, non_missing: bool) -> Resources {
    let mut reqs = Resources::new();
    for c in &spec.containers {
        add(&mut reqs, &container_requests(c, non_missing));
    }
    let mut sidecars = Resources::new();
    let mut init = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_missing);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut reqs, &r);
            add(&mut sidecars, &r);
            max_into(&mut init, &sidecars);
        } else {
            let mut with_sidecars = r;
            add(&mut with_sidecars, &sidecars);
            max_into(&mut init, &with_sidecars);
        }
    }
    max_into(&mut reqs, &init);
    for (k, q) in spec.overhead.iter().flatten() {
        *reqs.entry(k.clone()).or_default() += qty(q, k);
    }
    reqs
}

/// What a pod requests: the larger of its app containers' sum and any init container (a
/// sidecar init container adds to both), plus overhead; `pods` is 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut r = pod
        .spec
        .as_ref()
        .map(|s| spec_requests(s, false))
        .unwrap_or_default();
    r.insert("pods".into(), 1);
    r
}

/// Names kube-scheduler accounts as scalar resources: extended (`example.com/x`), prefixed
/// native (`kubernetes.io/x`), hugepages and attachable volumes.
pub(crate) fn is_scalar(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-") || name.starts_with("attachable-volumes-")
}

/// An extended resource (not native): what `ignoredResources` may name.
pub(crate) fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// cpu (milli), memory, ephemeral-storage and scalar resources as plain integers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub cpu: i64,
    pub mem: i64,
    pub eph: i64,
    pub scalar: Vec<(String, i64)>,
}

impl Amounts {
    /// The accounted part of `r` (other names, `pods` included, are left out).
    pub fn from_resources(r: &Resources) -> Amounts {
        let mut a = Amounts::default();
        for (k, v) in r {
            let v = clamp(*v);
            match k.as_str() {
                "cpu" => a.cpu = v,
                "memory" => a.mem = v,
                "ephemeral-storage" => a.eph = v,
                n if is_scalar(n) => a.scalar.push((k.clone(), v)),
                _ => {}
            }
        }
        a
    }

    pub fn scalar_opt(&self, name: &str) -> Option<i64> {
        self.scalar.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar_opt(name).unwrap_or(0)
    }

    /// `self += sign * o`.
    pub fn add(&mut self, o: &Amounts, sign: i64) {
        self.cpu += sign * o.cpu;
        self.mem += sign * o.mem;
        self.eph += sign * o.eph;
        for (k, v) in &o.scalar {
            match self.scalar.iter_mut().find(|(n, _)| n == k) {
                Some(e) => e.1 += sign * v,
                None => self.scalar.push((k.clone(), sign * v)),
            }
        }
    }
}
