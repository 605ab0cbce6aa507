//! kube's scheduler_perf workloads as this benchmark runs them (pure): counts, namespaces, pod
//! templates and CI thresholds, mirrored from kubernetes/kubernetes
//! test/integration/scheduler_perf (`misc/performance-config.yaml`,
//! `affinity/performance-config.yaml` and `templates/`):
//!
//! | here | scheduler_perf workload | init pods | measured pods | threshold |
//! |---|---|---|---|---|
//! | basic | SchedulingBasic/5000Nodes_10000Pods | 1000 pod-default | 10000 pod-default | 680 |
//! | affinity | SchedulingNodeAffinity/5000Nodes_10000Pods | 5000 pod-with-node-affinity | 10000 pod-with-node-affinity | 220 |
//! | antiaffinity | SchedulingPodAntiAffinity/5000Nodes_2000Pods | 1000 pod-with-pod-anti-affinity (sched-0) | 2000 (sched-1) | 60 |
//! | preemption | PreemptionAsync/5000Nodes | 20000 pod-low-priority | 5000 pod-default, while a pod-high-priority is created every 200 ms | 570 |
//!
//! Nodes are node-default (4 CPU, 32Gi, 110 pods), all labelled
//! topology.kubernetes.io/zone=zone1 (SchedulingNodeAffinity's labelNodePrepareStrategy).
//! PreemptionBasic has no 5000-node workload any more (kubernetes#108308) and no threshold:
//! 570 is PreemptionAsync's, whose measured pods need no preemption while high-priority pods
//! that do keep arriving. Counts scale with the node count (`--quick`: 500 nodes, 1/10).

use serde_json::{json, Value};
use std::time::Duration;

/// Nodes the workloads were written for.
pub const FULL_NODES: usize = 5000;
/// The PriorityClass standing in for pod-high-priority's `priority: 10` (the priority admission
/// plugin refuses a literal priority; scheduler_perf runs without it).
pub const HIGH_PRIORITY_CLASS: &str = "sched-perf-high";
pub const HIGH_PRIORITY: i64 = 10;
/// The image of every template.
const PAUSE: &str = "registry.k8s.io/pause:3.10.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Basic,
    NodeAffinity,
    PodAntiAffinity,
    Preemption,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Basic,
        Kind::NodeAffinity,
        Kind::PodAntiAffinity,
        Kind::Preemption,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Kind::Basic => "basic",
            Kind::NodeAffinity => "affinity",
            Kind::PodAntiAffinity => "antiaffinity",
            Kind::Preemption => "preemption",
        }
    }

    /// `--sched-workloads`: comma-separated keys, each at most once, at least one.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let k = Kind::ALL
                .into_iter()
                .find(|k| k.key() == name)
                .ok_or_else(|| {
                    format!("unknown workload {name:?} (basic, affinity, antiaffinity, preemption)")
                })?;
            if out.contains(&k) {
                return Err(format!("workload {name:?} given twice"));
            }
            out.push(k);
        }
        if out.is_empty() {
            return Err("no workload given".into());
        }
        Ok(out)
    }
}

/// What a pod is for in a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Init,
    Measure,
    Churn,
}

/// One workload, sized for a node count.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub kind: Kind,
    /// scheduler_perf's name.
    pub name: &'static str,
    pub init_pods: usize,
    pub measure_pods: usize,
    /// kube CI's SchedulingThroughput Average threshold (pods/s, at 5000 nodes).
    pub threshold: f64,
    pub init_ns: String,
    pub measure_ns: String,
    /// A pod created in `churn_ns` this often while the measured pods are created.
    pub churn_every: Option<Duration>,
    pub churn_ns: String,
}

/// `full` scaled to `nodes` (at least 1).
fn scaled(full: usize, nodes: usize) -> usize {
    ((full as u128 * nodes as u128).div_ceil(FULL_NODES as u128) as usize).max(1)
}

impl Workload {
    pub fn new(kind: Kind, nodes: usize) -> Workload {
        let (name, init, measure, threshold) = match kind {
            Kind::Basic => ("SchedulingBasic/5000Nodes_10000Pods", 1000, 10_000, 680.0),
            Kind::NodeAffinity => (
                "SchedulingNodeAffinity/5000Nodes_10000Pods",
                5000,
                10_000,
                220.0,
            ),
            Kind::PodAntiAffinity => (
                "SchedulingPodAntiAffinity/5000Nodes_2000Pods",
                1000,
                2000,
                60.0,
            ),
            Kind::Preemption => ("PreemptionAsync/5000Nodes", 20_000, 5000, 570.0),
        };
        // PodAntiAffinity's template names its namespaces: sched-0 and sched-1.
        let (init_ns, measure_ns) = match kind {
            Kind::PodAntiAffinity => ("sched-0".to_string(), "sched-1".to_string()),
            k => (format!("{}-0", k.key()), format!("{}-1", k.key())),
        };
        Workload {
            kind,
            name,
            init_pods: scaled(init, nodes),
            measure_pods: scaled(measure, nodes),
            threshold,
            init_ns,
            measure_ns,
            churn_every: (kind == Kind::Preemption).then(|| Duration::from_millis(200)),
            churn_ns: format!("{}-churn", kind.key()),
        }
    }

    /// The namespaces the workload creates pods in.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.init_ns.clone(), self.measure_ns.clone()];
        if self.churn_every.is_some() {
            v.push(self.churn_ns.clone());
        }
        v
    }

    /// The pod `name` of `role`, from the scheduler_perf template the workload uses there.
    pub fn pod(&self, role: Role, name: &str) -> Value {
        let ns = match role {
            Role::Init => &self.init_ns,
            Role::Measure => &self.measure_ns,
            Role::Churn => &self.churn_ns,
        };
        match (self.kind, role) {
            (Kind::Basic, _) => pod_default(name, ns),
            (Kind::NodeAffinity, _) => pod_with_node_affinity(name, ns),
            (Kind::PodAntiAffinity, _) => pod_with_pod_anti_affinity(name, ns),
            (Kind::Preemption, Role::Init) => pod_low_priority(name, ns),
            (Kind::Preemption, Role::Measure) => pod_default(name, ns),
            (Kind::Preemption, Role::Churn) => pod_high_priority(name, ns),
        }
    }
}

fn pause(cpu: &str) -> Value {
    json!([{
        "image": PAUSE, "name": "pause",
        "ports": [{"containerPort": 80}],
        "resources": {
            "limits": {"cpu": cpu, "memory": "500Mi"},
            "requests": {"cpu": cpu, "memory": "500Mi"}
        }
    }])
}

fn meta(name: &str, ns: &str) -> Value {
    json!({"name": name, "namespace": ns})
}

/// templates/pod-default.yaml.
pub fn pod_default(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ns),
        "spec": {"containers": pause("100m")}})
}

/// templates/pod-with-node-affinity.yaml.
pub fn pod_with_node_affinity(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ns),
    "spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{
                "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone1", "zone2"]
            }]}]
        }}},
        "containers": pause("100m")
    }})
}

/// The label the anti-affinity pods carry and repel.
pub const ANTI_AFFINITY_LABEL: (&str, &str) = ("color", "green");

/// templates/pod-with-pod-anti-affinity.yaml.
pub fn pod_with_pod_anti_affinity(name: &str, ns: &str) -> Value {
    let mut m = meta(name, ns);
    m["labels"] = json!({ANTI_AFFINITY_LABEL.0: ANTI_AFFINITY_LABEL.1});
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": m,
    "spec": {
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {ANTI_AFFINITY_LABEL.0: ANTI_AFFINITY_LABEL.1}},
            "topologyKey": "kubernetes.io/hostname",
            "namespaces": ["sched-1", "sched-0"]
        }]}},
        "containers": pause("100m")
    }})
}

/// templates/pod-low-priority.yaml.
pub fn pod_low_priority(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ns),
        "spec": {"terminationGracePeriodSeconds": 0, "containers": pause("900m")}})
}

/// templates/pod-high-priority.yaml (priority 10 through [`HIGH_PRIORITY_CLASS`]).
pub fn pod_high_priority(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ns),
        "spec": {"priorityClassName": HIGH_PRIORITY_CLASS, "containers": pause("3000m")}})
}

/// The PriorityClass of the high-priority pods.
pub fn high_priority_class() -> Value {
    json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": HIGH_PRIORITY_CLASS}, "value": HIGH_PRIORITY,
        "description": "scheduler_perf's pod-high-priority (priority: 10)"})
}

/// The `--sim-*` flags that make simulated nodes node-default.yaml nodes, zone1.
pub fn node_flags() -> Vec<&'static str> {
    vec![
        "--sim-cpu",
        "4",
        "--sim-memory",
        "32Gi",
        "--sim-pods",
        "110",
        "--sim-labels",
        "topology.kubernetes.io/zone=zone1",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_lists() {
        use Kind::*;
        let cases: [(&str, Result<Vec<Kind>, ()>); 6] = [
            (
                "basic,affinity,antiaffinity,preemption",
                Ok(vec![Basic, NodeAffinity, PodAntiAffinity, Preemption]),
            ),
            (" preemption , basic", Ok(vec![Preemption, Basic])),
            ("basic,", Ok(vec![Basic])),
            ("", Err(())),
            ("affinity,affinity", Err(())),
            ("spread", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(Kind::parse_list(input).map_err(|_| ()), want, "{input:?}");
        }
    }

    #[test]
    fn counts_scale_with_nodes() {
        // (kind, nodes, init, measure)
        let cases = [
            (Kind::Basic, 5000, 1000, 10_000),
            (Kind::Basic, 500, 100, 1000),
            (Kind::NodeAffinity, 500, 500, 1000),
            (Kind::PodAntiAffinity, 5000, 1000, 2000),
            (Kind::PodAntiAffinity, 500, 100, 200),
            (Kind::Preemption, 5000, 20_000, 5000),
            (Kind::Preemption, 500, 2000, 500),
            (Kind::Preemption, 1, 4, 1),
            (Kind::Basic, 3, 1, 6),
        ];
        for (kind, nodes, init, measure) in cases {
            let w = Workload::new(kind, nodes);
            assert_eq!(
                (w.init_pods, w.measure_pods),
                (init, measure),
                "{kind:?} {nodes}"
            );
        }
        let p = Workload::new(Kind::Preemption, 500);
        assert_eq!(p.churn_every, Some(Duration::from_millis(200)));
        assert_eq!(p.namespaces().len(), 3);
        let a = Workload::new(Kind::PodAntiAffinity, 500);
        assert_eq!(
            (a.init_ns.as_str(), a.measure_ns.as_str()),
            ("sched-0", "sched-1")
        );
        assert_eq!(a.churn_every, None);
        assert_eq!(Workload::new(Kind::Basic, 5000).threshold, 680.0);
    }

    #[test]
    fn templates_mirror_scheduler_perf() {
        let w = Workload::new(Kind::Preemption, 500);
        let low = w.pod(Role::Init, "p-0");
        assert_eq!(low["metadata"]["namespace"], "preemption-0");
        assert_eq!(low["spec"]["terminationGracePeriodSeconds"], 0);
        assert_eq!(
            low["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "900m", "memory": "500Mi"})
        );
        let high = w.pod(Role::Churn, "c-0");
        assert_eq!(high["spec"]["priorityClassName"], HIGH_PRIORITY_CLASS);
        assert_eq!(
            high["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "3000m"
        );
        let m = w.pod(Role::Measure, "m-0");
        assert_eq!(
            m["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "100m"
        );
        assert_eq!(m["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
        // 4 low-priority pods fill 3.6 of a node-default's 4 CPUs; a high one needs 3 freed.
        let a = Workload::new(Kind::PodAntiAffinity, 500).pod(Role::Measure, "x");
        assert_eq!(a["metadata"]["labels"]["color"], "green");
        let term = &a["spec"]["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(term["namespaces"], json!(["sched-1", "sched-0"]));
        let n = Workload::new(Kind::NodeAffinity, 500).pod(Role::Init, "y");
        let expr = &n["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
            ["matchExpressions"][0];
        assert_eq!(expr["values"], json!(["zone1", "zone2"]));
        assert_eq!(high_priority_class()["value"], 10);
    }
}
