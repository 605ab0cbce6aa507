//! The Node object: host facts → Node (pure), registration, status heartbeats and the Lease in
//! kube-node-lease, as the kubelet keeps them.

use crate::api::Api;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// Facts about this host, gathered once (and the runtime's state, each heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    pub name: String,
    pub cpus: u64,
    pub memory_kib: u64,
    pub ephemeral_kib: u64,
    pub internal_ip: String,
    pub hostname: String,
    pub kernel: String,
    pub os_image: String,
    pub arch: &'static str,
    pub machine_id: String,
    pub boot_id: String,
    pub runtime_version: String,
    pub pod_cidr: String,
    pub control_plane: bool,
    /// Port of the kubelet server (status.daemonEndpoints.kubeletEndpoint.Port).
    pub kubelet_port: u16,
    /// `--system-reserved` (cpu millis, memory bytes) and the hard eviction memory threshold
    /// (bytes), taken off allocatable as the kubelet does.
    pub reserved_cpu_milli: u64,
    pub reserved_memory: u64,
    pub eviction_memory: u64,
    /// Node pressure seen by the eviction manager.
    pub memory_pressure: bool,
    pub disk_pressure: bool,
}

/// `--system-reserved` ("cpu=500m,memory=1Gi") as (cpu millis, memory bytes).
pub fn parse_reserved(s: &str) -> Result<(u64, u64), String> {
    let (mut cpu, mut mem) = (0u64, 0u64);
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid reservation {part:?}: want name=quantity"))?;
        let q = capstan_validation::quantity::Quantity::parse(v)
            .map_err(|_| format!("invalid quantity in {part:?}"))?;
        match k {
            "cpu" => cpu = q.milli_value().max(0) as u64,
            "memory" => mem = (q.milli_value() / 1000).max(0) as u64,
            "ephemeral-storage" | "pid" => {}
            other => return Err(format!("unknown reserved resource {other:?}")),
        }
    }
    Ok((cpu, mem))
}

/// The Node as first registered.
pub fn node_object(h: &HostFacts) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": h.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": h.arch,
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": h.arch,
    });
    if h.control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("true");
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": h.name, "labels": labels},
        "spec": {"podCIDR": h.pod_cidr, "podCIDRs": [h.pod_cidr]},
    })
}

/// The node's status at `now`: capacity, allocatable, conditions, addresses, nodeInfo.
pub fn node_status(
    h: &HostFacts,
    runtime_ready: bool,
    runtime_message: &str,
    now: &str,
    transitions: &Value,
) -> Value {
    let capacity = json!({
        "cpu": h.cpus.to_string(), "memory": format!("{}Ki", h.memory_kib), "pods": "110",
        "ephemeral-storage": format!("{}Ki", h.ephemeral_kib), "hugepages-2Mi": "0", "hugepages-1Gi": "0",
    });
    let cpu_alloc = (h.cpus * 1000).saturating_sub(h.reserved_cpu_milli);
    let cpu_alloc = if cpu_alloc.is_multiple_of(1000) {
        (cpu_alloc / 1000).to_string()
    } else {
        format!("{cpu_alloc}m")
    };
    let mem_alloc =
        (h.memory_kib * 1024).saturating_sub(h.reserved_memory + h.eviction_memory) / 1024;
    let mut allocatable = capacity.clone();
    allocatable["cpu"] = json!(cpu_alloc);
    allocatable["memory"] = json!(format!("{mem_alloc}Ki"));
    let cond = |t: &str, status: &str, reason: &str, message: &str| {
        let since = transitions
            .get(t)
            .filter(|p| p["status"] == status)
            .and_then(|p| p["lastTransitionTime"].as_str())
            .unwrap_or(now);
        json!({"type": t, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": since, "reason": reason, "message": message})
    };
    let ready = if runtime_ready {
        cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        )
    } else {
        cond(
            "Ready",
            "False",
            "KubeletNotReady",
            &format!("container runtime not ready: {runtime_message}"),
        )
    };
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            if h.memory_pressure {
                cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
            } else {
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
            },
            if h.disk_pressure {
                cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
            } else {
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
            },
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ready,
        ],
        "addresses": [{"type": "InternalIP", "address": h.internal_ip}, {"type": "Hostname", "address": h.hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": h.kubelet_port}},
        "nodeInfo": {
            "machineID": h.machine_id, "systemUUID": h.machine_id, "bootID": h.boot_id,
            "kernelVersion": h.kernel, "osImage": h.os_image, "containerRuntimeVersion": h.runtime_version,
            "kubeletVersion": crate::KUBELET_VERSION, "kubeProxyVersion": crate::KUBELET_VERSION,
            "operatingSystem": "linux", "architecture": h.arch,
        },
    })
}

/// Previous conditions by type, to keep lastTransitionTime across heartbeats.
pub fn conditions_by_type(node: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for c in node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = c["type"].as_str() {
            out.insert(t.to_string(), c.clone());
        }
    }
    Value::Object(out)
}

/// The first /24 of `cluster_cidr` (a.b.0.0/16) not used by another node.
pub fn pick_pod_cidr(cluster_cidr: &str, used: &[String]) -> Option<String> {
    let (base, _) = cluster_cidr.split_once('/')?;
    let octets: Vec<u8> = base.split('.').filter_map(|o| o.parse().ok()).collect();
    if octets.len() != 4 {
        return None;
    }
    (0..=255u8)
        .map(|i| format!("{}.{}.{}.0/24", octets[0], octets[1], i))
        .find(|c| !used.contains(c))
}

/// Create the Node if absent (keeping the podCIDR of an existing one) and return it.
pub async fn register(api: &Api, facts: &mut HostFacts, cluster_cidr: &str) -> Result<Value> {
    let path = format!("/api/v1/nodes/{}", facts.name);
    let got = api.call("GET", &path, None).await?;
    if got.code == 200 {
        if let Some(c) = got.body.pointer("/spec/podCIDR").and_then(Value::as_str) {
            facts.pod_cidr = c.to_string();
        }
        return Ok(got.body);
    }
    let nodes = api.call("GET", "/api/v1/nodes", None).await?;
    let used: Vec<String> = nodes.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            n.pointer("/spec/podCIDR")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    facts.pod_cidr = pick_pod_cidr(cluster_cidr, &used).unwrap_or_else(|| "10.42.0.0/24".into());
    let created = api
        .call("POST", "/api/v1/nodes", Some(&node_object(facts)))
        .await?;
    if created.code != 201 && created.code != 409 {
        bail!(
            "registering node {}: {} {}",
            facts.name,
            created.code,
            created.body
        );
    }
    Ok(created.body)
}

/// Renew (or create) the node's Lease in kube-node-lease.
pub async fn renew_lease(api: &Api, name: &str, now_micro: &str) -> Result<()> {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
    let patch = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro}});
    let r = api.call("PATCH", &path, Some(&patch)).await?;
    if r.code == 404 {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro}});
        let c = api
            .call(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                Some(&lease),
            )
            .await?;
        if c.code != 201 && c.code != 409 {
            bail!("creating lease: {} {}", c.code, c.body);
        }
    } else if r.code != 200 {
        bail!("renewing lease: {} {}", r.code, r.body);
    }
    Ok(())
}

/// Heartbeat period for node status and lease.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            name: "n1".into(),
            cpus: 2,
            memory_kib: 1024,
            ephemeral_kib: 2048,
            internal_ip: "10.0.0.5".into(),
            hostname: "n1".into(),
            kernel: "6.1".into(),
            os_image: "Debian".into(),
            arch: "amd64",
            machine_id: "m".into(),
            boot_id: "b".into(),
            runtime_version: "containerd://1.6.20".into(),
            pod_cidr: "10.42.0.0/24".into(),
            control_plane: true,
            kubelet_port: 10250,
            reserved_cpu_milli: 0,
            reserved_memory: 0,
            eviction_memory: 0,
            memory_pressure: false,
            disk_pressure: false,
        }
    }

    #[test]
    fn allocatable_subtracts_reservations_and_pressure_shows() {
        let (cpu, mem) = parse_reserved("cpu=500m,memory=256Ki").unwrap();
        let h = HostFacts {
            reserved_cpu_milli: cpu,
            reserved_memory: mem,
            eviction_memory: 512 * 1024,
            memory_pressure: true,
            ..facts()
        };
        let s = node_status(&h, true, "", "t", &json!({}));
        assert_eq!(s["allocatable"]["cpu"], "1500m");
        assert_eq!(s["allocatable"]["memory"], "256Ki");
        assert_eq!(s["capacity"]["cpu"], "2");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "KubeletHasInsufficientMemory");
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(
            node_status(&facts(), true, "", "t", &json!({}))["allocatable"]["cpu"],
            "2"
        );
        assert!(parse_reserved("gpu=1").is_err());
        assert!(parse_reserved("cpu").is_err());
        assert_eq!(parse_reserved("").unwrap(), (0, 0));
    }

    #[test]
    fn picks_the_first_free_pod_cidr() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("10.42.0.0/16", &[], Some("10.42.0.0/24")),
            (
                "10.42.0.0/16",
                &["10.42.0.0/24", "10.42.1.0/24"],
                Some("10.42.2.0/24"),
            ),
            ("bogus", &[], None),
        ];
        for (cidr, used, want) in cases {
            let used: Vec<String> = used.iter().map(|s| s.to_string()).collect();
            assert_eq!(pick_pod_cidr(cidr, &used).as_deref(), *want);
        }
    }

    #[test]
    fn status_advertises_the_kubelet_endpoint() {
        for (port, want) in [(10250u16, 10250u64), (34567, 34567)] {
            let h = HostFacts {
                kubelet_port: port,
                ..facts()
            };
            let s = node_status(&h, true, "", "2026-01-01T00:00:10Z", &json!({}));
            assert_eq!(
                s.pointer("/daemonEndpoints/kubeletEndpoint/Port"),
                Some(&json!(want))
            );
            assert_eq!(
                s["addresses"][0],
                json!({"type": "InternalIP", "address": "10.0.0.5"})
            );
        }
    }

    #[test]
    fn status_reports_readiness_and_keeps_transition_times() {
        let h = facts();
        let s = node_status(&h, true, "", "2026-01-01T00:00:10Z", &json!({}));
        let ready = &s["conditions"][3];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("True"))
        );
        assert_eq!(s["capacity"]["memory"], "1024Ki");
        let node = json!({"status": s});
        let later = node_status(
            &h,
            true,
            "",
            "2026-01-01T00:00:20Z",
            &conditions_by_type(&node),
        );
        assert_eq!(
            later["conditions"][3]["lastTransitionTime"],
            "2026-01-01T00:00:10Z"
        );
        assert_eq!(
            later["conditions"][3]["lastHeartbeatTime"],
            "2026-01-01T00:00:20Z"
        );
        let down = node_status(
            &h,
            false,
            "no runtime",
            "2026-01-01T00:00:30Z",
            &conditions_by_type(&json!({"status": later})),
        );
        assert_eq!(down["conditions"][3]["status"], "False");
        assert_eq!(
            down["conditions"][3]["lastTransitionTime"],
            "2026-01-01T00:00:30Z"
        );
        assert_eq!(
            node_object(&h)["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            "true"
        );
    }
}
