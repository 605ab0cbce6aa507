//! The scheduler's decision as a pure function: a pod and a snapshot of nodes (with what the
//! pods bound to them request) in, a node or kube-scheduler's "0/N nodes are available: …"
//! message out. Filters: unschedulable (cordon), NodeName, NodeResourcesFit (cpu, memory,
//! ephemeral-storage, pods, extended resources; init containers and overhead counted as
//! Kubernetes does), nodeSelector, required node affinity, taints/tolerations, host ports,
//! node readiness. Score: least allocated (cpu and memory) + balanced allocation. The loop
//! that watches, binds and reports lives in the binary; this crate does no I/O.
#![forbid(unsafe_code)]

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use std::collections::{BTreeMap, BTreeSet};

/// Resource amounts in milli-units (cpu) or units (everything else).
pub type Resources = BTreeMap<String, i128>;

fn qty(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity, name: &str) -> i128 {
    let v = capstan_validation::quantity::Quantity::parse(&q.0)
        .map(|q| q.milli_value())
        .unwrap_or(0);
    if name == "cpu" {
        v
    } else {
        v / 1000
    }
}

fn add(into: &mut Resources, from: &Resources) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// What a pod requests: the larger of its app containers' sum and any init container (a
/// sidecar init container adds to both), plus overhead; `pods` is 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let spec = pod.spec.clone().unwrap_or_default();
    let req = |c: &k8s_openapi::api::core::v1::Container| -> Resources {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map(|m| m.iter().map(|(k, q)| (k.clone(), qty(q, k))).collect())
            .unwrap_or_default()
    };
    let mut apps = Resources::new();
    for c in &spec.containers {
        add(&mut apps, &req(c));
    }
    let mut sidecars = Resources::new();
    let mut init_max = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let r = req(c);
        if c.restart_policy.as_deref() == Some("Always") {
            add(&mut sidecars, &r);
            continue;
        }
        let mut with_sidecars = sidecars.clone();
        add(&mut with_sidecars, &r);
        for (k, v) in with_sidecars {
            let e = init_max.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    add(&mut apps, &sidecars);
    for (k, v) in init_max {
        let e = apps.entry(k).or_default();
        *e = (*e).max(v);
    }
    for (k, q) in spec.overhead.iter().flatten() {
        *apps.entry(k.clone()).or_default() += qty(q, k);
    }
    apps.insert("pods".into(), 1);
    apps
}

/// One node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Resources,
    /// The sum of the requests of the pods bound here (not finished).
    pub requested: Resources,
    /// (protocol, port, hostIP) taken by bound pods.
    pub host_ports: BTreeSet<(String, i32, String)>,
}

impl NodeInfo {
    pub fn from_node(n: &Node) -> NodeInfo {
        let spec = n.spec.clone().unwrap_or_default();
        let status = n.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        NodeInfo {
            name: n.metadata.name.clone().unwrap_or_default(),
            labels: n.metadata.labels.clone().unwrap_or_default(),
            taints: spec.taints.unwrap_or_default(),
            unschedulable: spec.unschedulable.unwrap_or(false),
            ready,
            allocatable: status
                .allocatable
                .iter()
                .flatten()
                .map(|(k, q)| (k.clone(), qty(q, k)))
                .collect(),
            ..Default::default()
        }
    }

    /// Account for a pod bound here.
    pub fn add_pod(&mut self, pod: &Pod) {
        add(&mut self.requested, &pod_requests(pod));
        self.host_ports.extend(host_ports(pod));
    }
}

fn host_ports(pod: &Pod) -> Vec<(String, i32, String)> {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            p.host_port.filter(|h| *h > 0).map(|h| {
                (
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    h,
                    p.host_ip.clone().unwrap_or_default(),
                )
            })
        })
        .collect()
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key),
        _ => {
            t.key.as_deref() == Some(taint.key.as_str())
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

fn expr_matches(
    e: &k8s_openapi::api::core::v1::NodeSelectorRequirement,
    value: Option<&String>,
) -> bool {
    let values = e.values.clone().unwrap_or_default();
    match e.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if e.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn affinity_matches(pod: &Pod, node: &NodeInfo) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if sel.iter().any(|(k, v)| node.labels.get(k) != Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution);
    let Some(required) = required else {
        return true;
    };
    // Terms are ORed, expressions within a term ANDed.
    required.node_selector_terms.iter().any(|term| {
        let exprs_ok = term
            .match_expressions
            .iter()
            .flatten()
            .all(|e| expr_matches(e, node.labels.get(&e.key)));
        let fields_ok = term.match_fields.iter().flatten().all(|e| {
            let v = (e.key == "metadata.name").then(|| node.name.clone());
            expr_matches(e, v.as_ref())
        });
        let empty = term.match_expressions.as_ref().is_none_or(Vec::is_empty)
            && term.match_fields.as_ref().is_none_or(Vec::is_empty);
        !empty && exprs_ok && fields_ok
    })
}

/// Why `pod` cannot go to `node` (kube-scheduler's reason text), or Ok.
pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        if name != node.name {
            return Err("node(s) didn't match the requested node name".into());
        }
    }
    if node.unschedulable {
        let tolerated = tolerations.iter().any(|t| {
            tolerates(
                t,
                &Taint {
                    key: "node.kubernetes.io/unschedulable".into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                },
            )
        });
        if !tolerated {
            return Err("node(s) were unschedulable".into());
        }
    }
    if !node.ready {
        let taint = Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Err(format!("node(s) had untolerated taint {{{}: }}", taint.key));
        }
    }
    for taint in node
        .taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    {
        if !tolerations.iter().any(|t| tolerates(t, taint)) {
            return Err(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.clone().unwrap_or_default()
            ));
        }
    }
    if !affinity_matches(pod, node) {
        return Err("node(s) didn't match Pod's node affinity/selector".into());
    }
    for (proto, port, ip) in host_ports(pod) {
        let clash = node.host_ports.iter().any(|(p, n, i)| {
            *p == proto
                && *n == port
                && (i == &ip || i.is_empty() || ip.is_empty() || i == "0.0.0.0" || ip == "0.0.0.0")
        });
        if clash {
            return Err("node(s) didn't have free ports for the requested pod ports".into());
        }
    }
    let want = pod_requests(pod);
    for (name, amount) in &want {
        if *amount == 0 {
            continue;
        }
        let free = node.allocatable.get(name).copied().unwrap_or(0)
            - node.requested.get(name).copied().unwrap_or(0);
        if *amount > free {
            return Err(if name == "pods" {
                "Too many pods".into()
            } else {
                format!("Insufficient {name}")
            });
        }
    }
    Ok(())
}

/// NodeResourcesFit's LeastAllocated (cpu and memory, equal weights) plus
/// NodeResourcesBalancedAllocation, 0–200.
pub fn score(pod: &Pod, node: &NodeInfo) -> i64 {
    let want = pod_requests(pod);
    // kube-scheduler scores a pod without requests as if it asked for 100m cpu and 200 MB.
    let fraction = |name: &str, default: i128| {
        let cap = node.allocatable.get(name).copied().unwrap_or(0);
        if cap <= 0 {
            return 1.0;
        }
        let asked = want
            .get(name)
            .copied()
            .filter(|v| *v > 0)
            .unwrap_or(default);
        let used = node.requested.get(name).copied().unwrap_or(0) + asked;
        (used as f64 / cap as f64).min(1.0)
    };
    let (cpu, mem) = (fraction("cpu", 100), fraction("memory", 200 << 20));
    let least = ((1.0 - cpu) + (1.0 - mem)) / 2.0 * 100.0;
    let balanced = (1.0 - (cpu - mem).abs()) * 100.0;
    (least + balanced) as i64
}

/// The node for `pod`: the best-scoring node that passes every filter (ties: the first by
/// name), or kube-scheduler's message.
pub fn schedule(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, String> {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(i64, &str)> = None;
    for n in nodes {
        match filter(pod, n) {
            Ok(()) => {
                let s = score(pod, n);
                if best.is_none_or(|(b, name)| s > b || (s == b && n.name.as_str() < name)) {
                    best = Some((s, &n.name));
                }
            }
            Err(r) => *reasons.entry(r).or_default() += 1,
        }
    }
    if let Some((_, name)) = best {
        return Ok(name.to_string());
    }
    let detail: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".into());
    }
    Err(format!(
        "0/{} nodes are available: {}.",
        nodes.len(),
        detail.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn node(name: &str, cpu: i128, mem: i128) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ready: true,
            allocatable: [
                ("cpu".to_string(), cpu),
                ("memory".to_string(), mem),
                ("pods".to_string(), 110),
            ]
            .into(),
            labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn requests_count_init_sidecars_and_overhead() {
        let p = pod(json!({
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}}],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}, {"name": "b", "resources": {"requests": {"cpu": "250m"}}}],
            "overhead": {"cpu": "10m"},
        }));
        let r = pod_requests(&p);
        // max(2000 (init, before the sidecar), 500+250+100) + 10 overhead
        assert_eq!(r["cpu"], 2010);
        assert_eq!(r["memory"], (64 << 20) + (1 << 20));
        assert_eq!(r["pods"], 1);
    }

    #[test]
    fn filters_table() {
        let mut tainted = node("t", 4000, 8 << 30);
        tainted.taints = vec![serde_json::from_value(
            json!({"key": "gpu", "value": "yes", "effect": "NoSchedule"}),
        )
        .unwrap()];
        let mut cordoned = node("c", 4000, 8 << 30);
        cordoned.unschedulable = true;
        let mut labelled = node("l", 4000, 8 << 30);
        labelled.labels.insert("disktype".into(), "ssd".into());
        labelled.labels.insert("cores".into(), "8".into());
        let mut busy = node("b", 1000, 1 << 30);
        busy.requested.insert("cpu".into(), 900);
        busy.host_ports.insert(("TCP".into(), 8080, String::new()));
        let mut notready = node("n", 4000, 8 << 30);
        notready.ready = false;
        let cases: Vec<(&str, serde_json::Value, &NodeInfo, Result<(), &str>)> = vec![
            (
                "fits",
                json!({"containers": [{"name": "c"}]}),
                &labelled,
                Ok(()),
            ),
            (
                "taint",
                json!({"containers": [{"name": "c"}]}),
                &tainted,
                Err("node(s) had untolerated taint {gpu: yes}"),
            ),
            (
                "tolerated",
                json!({"containers": [{"name": "c"}], "tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]}),
                &tainted,
                Ok(()),
            ),
            (
                "tolerate all",
                json!({"containers": [{"name": "c"}], "tolerations": [{"operator": "Exists"}]}),
                &tainted,
                Ok(()),
            ),
            (
                "cordoned",
                json!({"containers": [{"name": "c"}]}),
                &cordoned,
                Err("node(s) were unschedulable"),
            ),
            (
                "not ready",
                json!({"containers": [{"name": "c"}]}),
                &notready,
                Err("node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            ),
            (
                "selector",
                json!({"containers": [{"name": "c"}], "nodeSelector": {"disktype": "ssd"}}),
                &busy,
                Err("node(s) didn't match Pod's node affinity/selector"),
            ),
            (
                "selector ok",
                json!({"containers": [{"name": "c"}], "nodeSelector": {"disktype": "ssd"}}),
                &labelled,
                Ok(()),
            ),
            (
                "affinity In + Gt",
                json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}, {"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}}}),
                &labelled,
                Ok(()),
            ),
            (
                "affinity terms ORed",
                json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}),
                &busy,
                Ok(()),
            ),
            (
                "affinity NotIn",
                json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disktype", "operator": "NotIn", "values": ["ssd"]}]}]}}}}),
                &labelled,
                Err("node(s) didn't match Pod's node affinity/selector"),
            ),
            (
                "cpu",
                json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}]}),
                &busy,
                Err("Insufficient cpu"),
            ),
            (
                "extended",
                json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/dongle": "1"}}}]}),
                &labelled,
                Err("Insufficient example.com/dongle"),
            ),
            (
                "host port",
                json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
                &busy,
                Err("node(s) didn't have free ports for the requested pod ports"),
            ),
            (
                "node name",
                json!({"nodeName": "x", "containers": [{"name": "c"}]}),
                &labelled,
                Err("node(s) didn't match the requested node name"),
            ),
        ];
        for (name, spec, n, want) in cases {
            assert_eq!(filter(&pod(spec), n), want.map_err(String::from), "{name}");
        }
    }

    #[test]
    fn schedule_prefers_the_least_allocated_and_explains_failures() {
        let mut a = node("a", 2000, 4 << 30);
        a.requested.insert("cpu".into(), 1500);
        let b = node("b", 2000, 4 << 30);
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}));
        assert_eq!(schedule(&p, &[a.clone(), b.clone()]), Ok("b".into()));
        let big = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}], "nodeSelector": {"kubernetes.io/hostname": "a"}}),
        );
        assert_eq!(
            schedule(&big, &[a, b]),
            Err("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector.".into())
        );
        assert_eq!(
            schedule(&p, &[]),
            Err("no nodes available to schedule pods".into())
        );
    }
}
