//! The node lifecycle controller's I/O edge (kube's nodelifecycle + tainteviction
//! controllers): every `--node-monitor-period` it reads the node and Lease caches, notes when
//! each node's Lease renewal or heartbeat last changed (by this process's clock, as kube does,
//! so clock skew between hosts does not matter), sets the conditions of a node silent for
//! `--node-monitor-grace-period` Unknown (NodeNotReady event, its pods' Ready False), and
//! keeps the condition taints; NoExecute `not-ready`/`unreachable` taints are rate-limited per
//! zone and withheld when every zone is fully disrupted (the control plane is then the likelier
//! one cut off). Every second the taint manager evicts pods from nodes with NoExecute taints
//! they do not tolerate (at once, or after their tolerationSeconds): DisruptionTarget
//! condition, graceful delete, TaintManagerEviction event.

use super::cache::{Cache, Caches};
use super::{cache::resource, writes};
use capstan_agent::api::Api;
use capstan_controllers::nodelifecycle::{self as nl, Eviction, Health, Rates, ZoneState};
use capstan_controllers::{deleting, name, namespace, str_at, uid};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct NodeLifecycleFlags {
    /// How long a node may go without a Lease renewal or status update before it is marked
    /// Unknown (and tainted unreachable).
    #[arg(long, default_value = "40s", value_parser = go_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = go_duration)]
    pub node_monitor_period: Duration,
    /// How long a node that never reported Ready is given after the controller first sees it.
    #[arg(long, default_value = "1m", value_parser = go_duration)]
    pub node_startup_grace_period: Duration,
    /// Nodes per second NoExecute-tainted in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// Nodes per second NoExecute-tainted in a partially disrupted large zone.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// Fraction of not-ready nodes (at least 3) that makes a zone partially disrupted.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Zones with at most this many nodes stop NoExecute tainting when partially disrupted.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
}

impl Default for NodeLifecycleFlags {
    fn default() -> Self {
        NodeLifecycleFlags {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_size_threshold: 50,
        }
    }
}

/// A Go duration as kube's flags take them: "40s", "1m30s", "500ms", "2h".
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (want e.g. 40s, 1m30s, 500ms)");
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += v * match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "nodes"));
    caches.want(resource("coordination.k8s.io", "v1", "leases"));
    caches.want(resource("", "v1", "pods"));
}

/// What was last seen of a node's heartbeats, and when (by this process's clock).
struct Probe {
    lease: String,
    heartbeat: String,
    seen: Instant,
    ever_ready: bool,
}

struct Controller {
    api: Api,
    flags: NodeLifecycleFlags,
    nodes: Arc<Cache>,
    leases: Arc<Cache>,
    pods: Arc<Cache>,
    probes: HashMap<String, Probe>,
    /// Per zone: when the next NoExecute taint may be added (token bucket of one).
    next_taint: HashMap<String, Instant>,
    /// The pods already evicted (uid), and since when a pod has been on a tainted node.
    evicted: HashSet<String>,
    tainted_since: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

pub async fn run(api: Api, caches: &Caches, flags: NodeLifecycleFlags) {
    let get = |p: &str| caches.get(p).expect("registered").clone();
    let (nodes, leases, pods) = (get("nodes"), get("leases"), get("pods"));
    nodes.wait_synced().await;
    leases.wait_synced().await;
    pods.wait_synced().await;
    let mut c = Controller {
        api,
        flags,
        nodes,
        leases,
        pods,
        probes: HashMap::new(),
        next_taint: HashMap::new(),
        evicted: HashSet::new(),
        tainted_since: HashMap::new(),
    };
    let mut monitor =
        tokio::time::interval(c.flags.node_monitor_period.max(Duration::from_millis(100)));
    let mut evict = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = monitor.tick() => c.monitor().await,
            _ = evict.tick() => c.evict().await,
        }
    }
}

impl Controller {
    async fn monitor(&mut self) {
        let now = Instant::now();
        let wall = chrono::Utc::now();
        let mut nodes = self.nodes.list(|_| true);
        nodes.sort_by(|a, b| name(a).cmp(name(b)));
        let live: HashSet<&str> = nodes.iter().map(name).collect();
        self.probes.retain(|n, _| live.contains(n.as_str()));
        for node in nodes.iter_mut() {
            let n = name(node).to_string();
            let lease = self
                .leases
                .get(&format!("kube-node-lease/{n}"))
                .map(|l| str_at(&l, "/spec/renewTime").to_string())
                .unwrap_or_default();
            let heartbeat = node
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| str_at(c, "/lastHeartbeatTime").to_string())
                .unwrap_or_default();
            let health = nl::health(node);
            let p = self.probes.entry(n.clone()).or_insert(Probe {
                lease: lease.clone(),
                heartbeat: heartbeat.clone(),
                seen: now,
                ever_ready: false,
            });
            if p.lease != lease || p.heartbeat != heartbeat {
                (p.lease, p.heartbeat, p.seen) = (lease, heartbeat, now);
            }
            p.ever_ready |= health != Health::Unknown;
            let grace = if p.ever_ready {
                self.flags.node_monitor_grace_period
            } else {
                self.flags.node_startup_grace_period
            };
            if now.duration_since(p.seen) > grace {
                if let Some(conds) = nl::stale_conditions(node, wall) {
                    self.mark_unknown(node, conds, health).await;
                }
            }
        }
        self.taint(&nodes, now, wall).await;
    }

    /// A node gone silent: conditions Unknown, NodeNotReady event, its pods not Ready.
    async fn mark_unknown(&mut self, node: &mut Value, conds: Vec<Value>, was: Health) {
        let n = name(node).to_string();
        let path = format!("/api/v1/nodes/{n}/status");
        if !writes::merge(&self.api, &path, &json!({"status": {"conditions": conds}})).await {
            return;
        }
        tracing::info!(node = %n, "node stopped posting status; marked Unknown");
        node["status"]["conditions"] = json!(conds);
        if was == Health::Ready {
            self.node_event(
                node,
                "NodeNotReady",
                &format!("Node {n} status is now: NodeNotReady"),
            )
            .await;
        }
        let wall = chrono::Utc::now();
        for p in self
            .pods
            .list(|p| str_at(p, "/spec/nodeName") == n && !deleting(p))
        {
            if let Some(c) = nl::pod_not_ready(&p, wall) {
                let path = format!(
                    "/api/v1/namespaces/{}/pods/{}/status",
                    namespace(&p),
                    name(&p)
                );
                writes::merge(&self.api, &path, &json!({"status": {"conditions": c}})).await;
            }
        }
    }

    /// Keep every node's condition taints; add NoExecute ones at the zone's rate.
    async fn taint(&mut self, nodes: &[Value], now: Instant, wall: chrono::DateTime<chrono::Utc>) {
        let mut zones: HashMap<String, (usize, usize)> = HashMap::new();
        for n in nodes {
            let z = zones.entry(nl::zone(n)).or_default();
            match nl::health(n) {
                Health::Ready => z.0 += 1,
                _ => z.1 += 1,
            }
        }
        let t = self.flags.unhealthy_zone_threshold;
        let states: HashMap<&str, ZoneState> = zones
            .iter()
            .map(|(z, (r, nr))| (z.as_str(), nl::zone_state(*r, *nr, t)))
            .collect();
        let all_full =
            !states.is_empty() && states.values().all(|s| *s == ZoneState::FullDisruption);
        let rates = Rates {
            primary: self.flags.node_eviction_rate,
            secondary: self.flags.secondary_node_eviction_rate,
            large_cluster_size: self.flags.large_cluster_size_threshold,
        };
        for node in nodes {
            let zone = nl::zone(node);
            let no_schedule = nl::no_schedule_keys(node);
            let mut no_execute = if all_full {
                None
            } else {
                nl::no_execute_key(nl::health(node))
            };
            if let Some(k) = no_execute {
                let has_other = [nl::NOT_READY, nl::UNREACHABLE]
                    .iter()
                    .any(|o| *o != k && nl::has_taint(node, o, "NoExecute"));
                // A new NoExecute taint waits for the zone's limiter; a swap does not.
                if !nl::has_taint(node, k, "NoExecute") && !has_other {
                    let (r, nr) = zones[&zone];
                    let rate = nl::zone_rate(states[zone.as_str()], r + nr, rates);
                    let next = self.next_taint.get(&zone).copied();
                    if rate <= 0.0 || next.is_some_and(|t| now < t) {
                        no_execute = None;
                    } else {
                        self.next_taint
                            .insert(zone.clone(), now + Duration::from_secs_f64(1.0 / rate));
                    }
                }
            }
            if let Some(taints) = nl::desired_taints(node, &no_schedule, no_execute, wall) {
                let patch = json!({"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                    "spec": {"taints": taints}});
                let path = format!("/api/v1/nodes/{}", name(node));
                if writes::merge(&self.api, &path, &patch).await {
                    tracing::info!(node = %name(node), taints = %json!(taints), "node taints");
                }
            }
        }
    }

    /// The taint manager: evict pods from nodes with NoExecute taints they do not tolerate.
    async fn evict(&mut self) {
        let wall = chrono::Utc::now();
        let tainted: HashMap<String, Vec<Value>> = self
            .nodes
            .list(|n| nl::taints(n).iter().any(|t| t["effect"] == "NoExecute"))
            .into_iter()
            .map(|n| (name(&n).to_string(), nl::taints(&n).to_vec()))
            .collect();
        let mut still = HashSet::new();
        let pods = if tainted.is_empty() {
            Vec::new()
        } else {
            self.pods
                .list(|p| tainted.contains_key(str_at(p, "/spec/nodeName")) && !deleting(p))
        };
        for p in pods {
            let taints = &tainted[str_at(&p, "/spec/nodeName")];
            let u = uid(&p).to_string();
            let due = match nl::pod_eviction(&p, taints) {
                Eviction::Keep => continue,
                Eviction::Now => true,
                Eviction::After(secs) => {
                    still.insert(u.clone());
                    let since = *self
                        .tainted_since
                        .entry(u.clone())
                        .or_insert_with(|| nl::no_execute_since(taints).unwrap_or(wall));
                    wall >= since + chrono::Duration::seconds(secs)
                }
            };
            if due && !self.evicted.contains(&u) && self.evict_pod(&p).await {
                self.evicted.insert(u);
            }
        }
        self.tainted_since.retain(|u, _| still.contains(u));
        // Forget evictions of pods the cache no longer shows alive.
        if !self.evicted.is_empty() {
            let alive: HashSet<String> = self
                .pods
                .list(|p| !deleting(p))
                .iter()
                .map(|p| uid(p).to_string())
                .collect();
            self.evicted.retain(|u| alive.contains(u));
        }
    }

    async fn evict_pod(&self, p: &Value) -> bool {
        let (ns, n) = (namespace(p), name(p));
        let path = format!("/api/v1/namespaces/{ns}/pods/{n}");
        let conds = nl::eviction_conditions(p, chrono::Utc::now());
        writes::merge(
            &self.api,
            &format!("{path}/status"),
            &json!({"status": {"conditions": conds}}),
        )
        .await;
        writes::event(
            &self.api,
            p,
            ("Pod", "v1"),
            "taint-eviction-controller",
            false,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{n}"),
        )
        .await;
        tracing::info!(pod = %format!("{ns}/{n}"), node = %str_at(p, "/spec/nodeName"), "taint manager eviction");
        writes::delete(&self.api, &path, uid(p), None).await
    }

    async fn node_event(&self, node: &Value, reason: &str, msg: &str) {
        writes::event(
            &self.api,
            node,
            ("Node", "v1"),
            "node-controller",
            false,
            reason,
            msg,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        for (s, want) in [
            ("40s", Some(40_000)),
            ("1m30s", Some(90_000)),
            ("500ms", Some(500)),
            ("2h", Some(7_200_000)),
            ("0", Some(0)),
            ("1.5s", Some(1500)),
            ("", None),
            ("40", None),
            ("5x", None),
        ] {
            assert_eq!(
                go_duration(s).ok(),
                want.map(Duration::from_millis),
                "{s:?}"
            );
        }
    }
}
