//! Simulated nodes: addresses and podCIDRs (pure), the Node object and its status (pure, from
//! the real agent's `capstan_agent::node` builders), registration, and the heartbeats — a Lease
//! per node renewed every 10 s and the status re-posted every 5 min, both spread evenly over
//! their period with bounded concurrency.

use super::flags::Template;
use anyhow::{bail, Result};
use capstan_agent::api::Api;
use capstan_agent::node::{self as agent_node, HostFacts};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

/// Label every simulated node carries (value: the prefix), so tools can find them.
pub const SIMULATED_LABEL: &str = "sim.capstan.io/simulated";
/// The port advertised as the kubelet's. Nothing serves it: the InternalIP is a loopback
/// address of its own, so the API server's dial (logs, exec) fails on this machine.
pub const KUBELET_PORT: u16 = 10250;
/// Node InternalIPs: 127.1.0.0/16 + slot (loopback: a dial never leaves the machine).
const LOOPBACK_BASE: u32 = 0x7f01_0000;

/// One simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct SimNode {
    pub index: usize,
    pub name: String,
    pub internal_ip: String,
    pub pod_cidr: String,
    /// First address of the podCIDR (pod IPs are base+2 … base+254).
    pub pod_base: u32,
    /// When Ready last became True (kept across restarts from the stored node).
    pub since: Option<String>,
    /// Whether the API already has this node.
    pub exists: bool,
}

/// What a node looks like on this host (gathered once for all nodes).
#[derive(Debug, Clone)]
pub struct Host {
    pub kernel: String,
    pub arch: &'static str,
    pub boot_id: String,
}

impl Host {
    pub fn gather() -> Host {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let boot_id = format!("{:032x}", rand::random::<u128>());
        Host {
            kernel,
            arch: capstan_images::archive::oci_arch(),
            boot_id,
        }
    }
}

/// The fields of a stored Node the simulator reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeLite {
    pub metadata: LiteMeta,
    pub spec: LiteNodeSpec,
    pub status: LiteNodeStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LiteMeta {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LiteNodeSpec {
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LiteNodeStatus {
    pub addresses: Vec<LiteAddress>,
    pub conditions: Vec<LiteCondition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LiteAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LiteCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub last_transition_time: String,
}

fn ip(v: u32) -> String {
    Ipv4Addr::from(v).to_string()
}

/// The network address of an IPv4 CIDR.
fn cidr_base(cidr: &str) -> Option<u32> {
    let (a, _) = cidr.split_once('/')?;
    a.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// Addresses and podCIDRs for the template's nodes: a node the API already has keeps its
/// podCIDR and InternalIP; new ones take the lowest /24s of the range no node uses yet.
pub fn plan(t: &Template, existing: &[NodeLite]) -> Result<Vec<SimNode>, String> {
    let (range, len) = t.pod_range;
    let slots = t.pod_cidr_slots();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let slot_of = |cidr: &str| {
        cidr_base(cidr)
            .filter(|b| b & mask == range)
            .map(|b| (b - range) >> 8)
    };
    let by_name: HashMap<&str, &NodeLite> = existing
        .iter()
        .map(|n| (n.metadata.name.as_str(), n))
        .collect();
    let mut used: HashSet<u32> = existing
        .iter()
        .filter_map(|n| slot_of(&n.spec.pod_cidr))
        .collect();
    let mut next = 0u32;
    let mut out = Vec::with_capacity(t.count);
    for i in 0..t.count {
        let name = t.node_name(i);
        let old = by_name.get(name.as_str());
        let kept_cidr = old
            .map(|n| n.spec.pod_cidr.clone())
            .filter(|c| cidr_base(c).is_some());
        let (pod_cidr, slot) = match kept_cidr {
            Some(c) => {
                let s = slot_of(&c);
                (c, s)
            }
            None => {
                while used.contains(&next) {
                    next += 1;
                }
                if next >= slots {
                    return Err(format!(
                        "the simulated podCIDR range has no free /24 left for {name}"
                    ));
                }
                used.insert(next);
                let c = format!("{}/24", ip(range + (next << 8)));
                next += 1;
                (c, Some(next - 1))
            }
        };
        let pod_base = cidr_base(&pod_cidr).unwrap_or(range);
        let old_ip = old.and_then(|n| {
            n.status
                .addresses
                .iter()
                .find(|a| a.kind == "InternalIP" && !a.address.is_empty())
                .map(|a| a.address.clone())
        });
        let internal_ip = old_ip.unwrap_or_else(|| {
            let k = slot.unwrap_or(i as u32);
            ip(LOOPBACK_BASE + 1 + k)
        });
        let since = old.and_then(|n| {
            n.status
                .conditions
                .iter()
                .find(|c| c.kind == "Ready" && c.status == "True")
                .map(|c| c.last_transition_time.clone())
                .filter(|s| !s.is_empty())
        });
        out.push(SimNode {
            index: i,
            name,
            internal_ip,
            pod_cidr,
            pod_base,
            since,
            exists: old.is_some(),
        });
    }
    Ok(out)
}

/// A stable machine ID for a node name (32 hex digits).
fn machine_id(name: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("capstan-sim/{name}").as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn facts(n: &SimNode, host: &Host) -> HostFacts {
    HostFacts {
        name: n.name.clone(),
        cpus: 0,
        memory_kib: 0,
        ephemeral_kib: 0,
        internal_ip: n.internal_ip.clone(),
        hostname: n.name.clone(),
        kernel: host.kernel.clone(),
        os_image: "Capstan simulated node".into(),
        arch: host.arch,
        machine_id: machine_id(&n.name),
        boot_id: host.boot_id.clone(),
        runtime_version: format!("capstan-sim://{}", env!("CARGO_PKG_VERSION")),
        pod_cidr: n.pod_cidr.clone(),
        control_plane: false,
        kubelet_port: KUBELET_PORT,
        reserved_cpu_milli: 0,
        reserved_memory: 0,
        eviction_memory: 0,
        memory_pressure: false,
        disk_pressure: false,
    }
}

/// The node's status at `now`: the real agent's conditions (Ready/KubeletReady, no pressure),
/// addresses and nodeInfo, with the template's capacity = allocatable and no images.
pub fn node_status(t: &Template, n: &SimNode, host: &Host, now: &str) -> Value {
    let since = n.since.as_deref().unwrap_or(now);
    let transitions = json!({
        "Ready": {"status": "True", "lastTransitionTime": since},
        "MemoryPressure": {"status": "False", "lastTransitionTime": since},
        "DiskPressure": {"status": "False", "lastTransitionTime": since},
        "PIDPressure": {"status": "False", "lastTransitionTime": since},
    });
    let mut s = agent_node::node_status(&facts(n, host), true, "", now, &transitions);
    s["capacity"] = t.capacity();
    s["allocatable"] = t.capacity();
    s["images"] = json!([]);
    s
}

/// The Node as registered: the real agent's labels and podCIDR plus the template's labels and
/// taints, and its status.
pub fn node_object(t: &Template, n: &SimNode, host: &Host, now: &str) -> Value {
    let mut obj = agent_node::node_object(&facts(n, host));
    let labels = &mut obj["metadata"]["labels"];
    labels["node.kubernetes.io/instance-type"] = json!("simulated");
    labels[SIMULATED_LABEL] = json!(t.prefix);
    for (k, v) in t.labels_of(n.index) {
        labels[k] = json!(v);
    }
    if !t.taints.is_empty() {
        obj["spec"]["taints"] = json!(t.taints);
    }
    obj["status"] = node_status(t, n, host, now);
    obj
}

/// The labels and taints of the template as a merge patch (for nodes that already exist).
fn metadata_patch(t: &Template, n: &SimNode, host: &Host) -> Value {
    let obj = node_object(t, n, host, "");
    // Taints are the registering agent's only at creation (as the kubelet's
    // --register-with-taints): the node lifecycle controller's and kubectl's stay.
    json!({"metadata": {"labels": obj["metadata"]["labels"]}})
}

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeList {
    metadata: ListMeta,
    items: Vec<NodeLite>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListMeta {
    #[serde(rename = "resourceVersion")]
    pub resource_version: String,
    #[serde(rename = "continue")]
    pub cont: String,
}

/// Every node the API has (paged), decoded to the fields the simulator reads.
pub async fn list_nodes(api: &Api) -> Result<Vec<NodeLite>> {
    let mut out = Vec::new();
    let mut cont = String::new();
    loop {
        let path = if cont.is_empty() {
            "/api/v1/nodes?limit=500".to_string()
        } else {
            format!("/api/v1/nodes?limit=500&continue={cont}")
        };
        let (code, body) = api.call_raw("GET", &path, None).await?;
        if code != 200 {
            bail!(
                "listing nodes: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: NodeList = serde_json::from_slice(&body)?;
        out.extend(page.items);
        if page.metadata.cont.is_empty() {
            return Ok(out);
        }
        cont = page.metadata.cont;
    }
}

/// Create (or, when it exists, bring labels and status up to date) one node.
async fn register_one(api: &Api, t: &Template, n: &SimNode, host: &Host) -> Result<()> {
    if !n.exists {
        let a = api
            .call(
                "POST",
                "/api/v1/nodes",
                Some(&node_object(t, n, host, &now())),
            )
            .await?;
        match a.code {
            201 => return Ok(()),
            409 => {}
            code => bail!("registering node {}: HTTP {code}: {}", n.name, a.body),
        }
    }
    let path = format!("/api/v1/nodes/{}", n.name);
    let a = api
        .call("PATCH", &path, Some(&metadata_patch(t, n, host)))
        .await?;
    if a.code != 200 {
        bail!("updating node {}: HTTP {}: {}", n.name, a.code, a.body);
    }
    post_status(api, t, n, host).await
}

/// PATCH the node's status (re-registering it when it was deleted).
async fn post_status(api: &Api, t: &Template, n: &SimNode, host: &Host) -> Result<()> {
    let path = format!("/api/v1/nodes/{}/status", n.name);
    let body = json!({"status": node_status(t, n, host, &now())});
    let a = api.call("PATCH", &path, Some(&body)).await?;
    match a.code {
        200 => Ok(()),
        404 => {
            let c = api
                .call(
                    "POST",
                    "/api/v1/nodes",
                    Some(&node_object(t, n, host, &now())),
                )
                .await?;
            if c.code != 201 && c.code != 409 {
                bail!(
                    "re-registering node {}: HTTP {}: {}",
                    n.name,
                    c.code,
                    c.body
                );
            }
            Ok(())
        }
        code => bail!("node {} status: HTTP {code}: {}", n.name, a.body),
    }
}

/// Register every node (bounded concurrency, a few retries each).
pub async fn register_all(
    api: &Api,
    t: &Template,
    nodes: &[SimNode],
    host: &Host,
    concurrency: usize,
) -> Result<()> {
    let results: Vec<Result<()>> = futures::stream::iter(nodes.iter())
        .map(|n| async move {
            let mut wait = Duration::from_millis(200);
            let mut tries = 0;
            loop {
                match register_one(api, t, n, host).await {
                    Ok(()) => return Ok(()),
                    Err(e) if tries < 5 => {
                        tracing::debug!(node = %n.name, error = format!("{e:#}"), "registering; retrying");
                        tries += 1;
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if let Some(first) = failed.first() {
        bail!(
            "{} of {} nodes not registered: {first}",
            failed.len(),
            nodes.len()
        );
    }
    Ok(())
}

/// Heartbeat slices per lease period: node i renews in slice i mod SLICES.
pub const SLICES: usize = 100;

/// Which nodes renew their Lease in `slice` of round `round`, and whether each also posts its
/// status: every node once per lease period, status once per `status_rounds` rounds, both
/// spread evenly (pure).
pub fn due(
    count: usize,
    round: u64,
    slice: usize,
    status_rounds: u64,
) -> impl Iterator<Item = (usize, bool)> {
    let status_rounds = status_rounds.max(1);
    (slice..count).step_by(SLICES).map(move |i| {
        let post = ((i / SLICES) as u64 + round).is_multiple_of(status_rounds);
        (i, post)
    })
}

/// Renew leases and post statuses forever.
pub async fn heartbeat(
    api: Api,
    t: std::sync::Arc<Template>,
    nodes: std::sync::Arc<Vec<SimNode>>,
    host: std::sync::Arc<Host>,
    lease_period: Duration,
    status_period: Duration,
    concurrency: usize,
) {
    let status_rounds = (status_period.as_secs_f64() / lease_period.as_secs_f64().max(0.001))
        .round()
        .max(1.0) as u64;
    // Every Lease was just renewed by [`first_leases`]: the spread renewals start a period on.
    tokio::time::sleep(lease_period).await;
    let mut tick = tokio::time::interval(lease_period / SLICES as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 1u64;
    loop {
        for slice in 0..SLICES {
            tick.tick().await;
            let work: Vec<(usize, bool)> = due(nodes.len(), round, slice, status_rounds).collect();
            futures::stream::iter(work)
                .for_each_concurrent(concurrency.max(1), |(i, post)| {
                    let (api, t, nodes, host) = (&api, &t, &nodes, &host);
                    async move {
                        let n = &nodes[i];
                        if post {
                            if let Err(e) = post_status(api, t, n, host).await {
                                tracing::warn!(node = %n.name, error = format!("{e:#}"), "node status");
                            }
                        }
                        if let Err(e) = agent_node::renew_lease(api, &n.name, &now_micro()).await {
                            tracing::warn!(node = %n.name, error = format!("{e:#}"), "lease renewal");
                        }
                    }
                })
                .await;
        }
        round += 1;
    }
}

/// Create every node's Lease at once (before the spread-out renewals start).
pub async fn first_leases(api: &Api, nodes: &[SimNode], concurrency: usize) {
    futures::stream::iter(nodes.iter())
        .for_each_concurrent(concurrency.max(1), |n| async move {
            if let Err(e) = agent_node::renew_lease(api, &n.name, &now_micro()).await {
                tracing::warn!(node = %n.name, error = format!("{e:#}"), "lease");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::flags::{SimFlags, Template};

    fn template(n: usize, cidr: &str) -> Template {
        Template::from_flags(&SimFlags {
            simulate: Some(n),
            node_name_prefix: "sim".into(),
            sim_cpu: "4".into(),
            sim_memory: "32Gi".into(),
            sim_pods: "110".into(),
            sim_extended: vec!["example.com/dongle=4".into()],
            sim_labels: "tier=sim".into(),
            sim_zones: 3,
            sim_taints: "sim=true:NoSchedule".into(),
            sim_pod_cidr: cidr.into(),
            ..Default::default()
        })
        .unwrap()
    }

    fn existing(name: &str, cidr: &str, ip: &str) -> NodeLite {
        NodeLite {
            metadata: LiteMeta { name: name.into() },
            spec: LiteNodeSpec {
                pod_cidr: cidr.into(),
            },
            status: LiteNodeStatus {
                addresses: vec![LiteAddress {
                    kind: "InternalIP".into(),
                    address: ip.into(),
                }],
                conditions: vec![LiteCondition {
                    kind: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: "2026-01-01T00:00:00Z".into(),
                }],
            },
        }
    }

    #[test]
    fn plans_addresses_and_cidrs() {
        let t = template(4, "100.64.0.0/10");
        // A real node inside the range and one of ours already registered.
        let have = [
            existing("real", "100.64.0.0/24", "10.0.0.5"),
            existing("sim-1", "100.64.7.0/24", "127.1.0.8"),
            existing("other", "10.42.0.0/24", "10.0.0.6"),
        ];
        let p = plan(&t, &have).unwrap();
        let got: Vec<(&str, &str, &str, bool)> = p
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.pod_cidr.as_str(),
                    n.internal_ip.as_str(),
                    n.exists,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("sim-0", "100.64.1.0/24", "127.1.0.2", false),
                ("sim-1", "100.64.7.0/24", "127.1.0.8", true),
                ("sim-2", "100.64.2.0/24", "127.1.0.3", false),
                ("sim-3", "100.64.3.0/24", "127.1.0.4", false),
            ]
        );
        assert_eq!(p[1].since.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(p[0].since, None);
        assert_eq!(p[2].pod_base, u32::from(Ipv4Addr::new(100, 64, 2, 0)));
        // Full range.
        let one = template(1, "10.9.0.0/24");
        assert!(plan(&one, &[existing("x", "10.9.0.0/24", "")]).is_err());
        assert_eq!(plan(&one, &[]).unwrap()[0].pod_cidr, "10.9.0.0/24");
    }

    #[test]
    fn node_object_has_what_a_kubelet_reports() {
        let t = template(3, "100.64.0.0/10");
        let p = plan(&t, &[]).unwrap();
        let host = Host {
            kernel: "6.1".into(),
            arch: "amd64",
            boot_id: "b".into(),
        };
        let n = node_object(&t, &p[2], &host, "2026-01-02T03:04:05Z");
        let labels = &n["metadata"]["labels"];
        for (k, v) in [
            ("kubernetes.io/hostname", "sim-2"),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("node.kubernetes.io/instance-type", "simulated"),
            ("topology.kubernetes.io/zone", "zone-2"),
            ("tier", "sim"),
            (SIMULATED_LABEL, "sim"),
        ] {
            assert_eq!(labels[k], v, "label {k}");
        }
        assert!(labels
            .get("node-role.kubernetes.io/control-plane")
            .is_none());
        assert_eq!(n["spec"]["podCIDR"], "100.64.2.0/24");
        assert_eq!(n["spec"]["podCIDRs"], json!(["100.64.2.0/24"]));
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "sim", "value": "true", "effect": "NoSchedule"}])
        );
        let s = &n["status"];
        let want = json!({"cpu": "4", "memory": "32Gi", "pods": "110", "example.com/dongle": "4"});
        assert_eq!(s["capacity"], want);
        assert_eq!(s["allocatable"], want);
        let conds: Vec<(&str, &str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap(),
                    c["status"].as_str().unwrap(),
                    c["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            conds,
            vec![
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
                ("Ready", "True", "KubeletReady"),
            ]
        );
        assert_eq!(
            s["addresses"],
            json!([{"type": "InternalIP", "address": "127.1.0.3"}, {"type": "Hostname", "address": "sim-2"}])
        );
        assert_eq!(
            s["nodeInfo"]["kubeletVersion"],
            capstan_agent::KUBELET_VERSION
        );
        assert_eq!(s["nodeInfo"]["machineID"].as_str().unwrap().len(), 32);
        assert_eq!(s["images"], json!([]));
        assert_eq!(s["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        // A re-post keeps the transition time and moves the heartbeat.
        let mut kept = p[2].clone();
        kept.since = Some("2026-01-01T00:00:00Z".into());
        let later = node_status(&t, &kept, &host, "2026-01-02T03:09:05Z");
        assert_eq!(
            later["conditions"][3]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            later["conditions"][3]["lastHeartbeatTime"],
            "2026-01-02T03:09:05Z"
        );
    }

    #[test]
    fn heartbeats_cover_every_node_once_per_period() {
        // (nodes, status rounds)
        for (count, rounds) in [(5000usize, 30u64), (3, 30), (250, 1), (1, 5)] {
            let mut leases = vec![0u32; count];
            let mut posts = vec![0u32; count];
            for round in 0..rounds {
                for slice in 0..SLICES {
                    for (i, post) in due(count, round, slice, rounds) {
                        assert_eq!(i % SLICES, slice);
                        leases[i] += 1;
                        posts[i] += post as u32;
                    }
                }
            }
            assert!(leases.iter().all(|n| *n == rounds as u32), "{count}");
            assert!(posts.iter().all(|n| *n == 1), "{count}: {posts:?}");
        }
        // Status posts are spread: at 5000 nodes no slice posts more than 2.
        let most = (0..SLICES)
            .map(|s| due(5000, 7, s, 30).filter(|(_, p)| *p).count())
            .max();
        assert!(most <= Some(2), "{most:?}");
    }
}
