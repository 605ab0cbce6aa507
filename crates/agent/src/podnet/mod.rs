//! The pod network across nodes. `routes.rs` is the pure core; this is its edge: list+watch
//! of Nodes, and after each change (debounced, and every 10 s) this network namespace's
//! addresses (`ip -4 -o addr show`) and the routes it made (`ip -4 route show proto 143`) →
//! the plan → `ip route replace|del` for the difference. Peers not on a connected subnet are
//! reached through a VXLAN device (made when the first such peer appears; its MAC published in
//! the Node annotation `capstan.io/vxlan-mac`; a permanent neighbour + FDB entry per peer and
//! an `onlink` route via the peer's overlay address). Nodes that get no route are logged once
//! per reason. The masquerade table (`ip <table>`:
//! pod traffic leaving the cluster CIDR takes the node's address) is applied at start and
//! re-applied when missing. A clean stop deletes the routes and the table.

pub mod routes;

use crate::api::Api;
use capstan_validation::cidr::Cidr;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The periodic pass (routes someone else removed come back; the table too).
const PERIOD: Duration = Duration::from_secs(10);

/// How long a pass waits after a Node change for more.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The masquerade table of a node whose proxy owns `proxy_table` (`capstan` → `capstan-net`).
pub fn table_for(proxy_table: &str) -> String {
    format!("{proxy_table}-net")
}

async fn ip(args: &[String]) -> Result<String, String> {
    run_cmd("ip", args).await
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

async fn installed(cluster: &Cidr) -> Result<BTreeMap<String, routes::Hop>, String> {
    let text = ip(&strings(&[
        "-4",
        "route",
        "show",
        "table",
        "main",
        "proto",
        routes::ROUTE_PROTO,
    ]))
    .await?;
    Ok(routes::parse_routes(&text, cluster))
}

async fn table_exists(table: &str) -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn run_cmd(bin: &str, args: &[String]) -> Result<String, String> {
    let out = tokio::process::Command::new(bin)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running {bin}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// VXLAN's IANA port is 4789; 8472 is the Linux default and flannel's.
const VXLAN_PORT: &str = "8472";

/// The node's VXLAN device exists, is up and carries the podCIDR's network address; its MAC.
async fn ensure_vxlan(dev: &str, node_ip: &str, pod_cidr: &str) -> Result<String, String> {
    let show = strings(&["-o", "link", "show", "dev", dev]);
    if ip(&show).await.is_err() {
        ip(&strings(&[
            "link",
            "add",
            dev,
            "type",
            "vxlan",
            "id",
            "1",
            "local",
            node_ip,
            "dstport",
            VXLAN_PORT,
            "nolearning",
        ]))
        .await
        .map_err(|e| format!("creating {dev}: {e}"))?;
        tracing::info!(dev, local = node_ip, "pod network: VXLAN device created");
    }
    ip(&strings(&["link", "set", dev, "mtu", "1450", "up"])).await?;
    let base = Cidr::parse(pod_cidr)?;
    let addr = format!("{}/32", Ipv4Addr::from(base.base));
    ip(&strings(&["addr", "replace", &addr, "dev", dev])).await?;
    let text = ip(&show).await?;
    routes::parse_mac(&text).ok_or_else(|| format!("no MAC for {dev} in {text:?}"))
}

/// How the pod network reaches other nodes.
pub struct Settings {
    pub node: String,
    pub node_ip: String,
    pub pod_cidr: String,
    pub cluster_cidr: String,
    /// The masquerade table ([`table_for`]).
    pub table: String,
    /// The VXLAN device for nodes not on a connected subnet ([`routes::vxlan_device`]).
    pub vxlan_dev: String,
}

/// Run until `stop` resolves, then delete the routes, the VXLAN device and the table.
pub async fn run(api: Api, settings: Settings, stop: impl std::future::Future<Output = ()>) {
    let Settings {
        node,
        node_ip,
        pod_cidr,
        cluster_cidr,
        table,
        vxlan_dev,
    } = settings;
    let cluster = match Cidr::parse(&cluster_cidr) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "pod network: bad cluster CIDR; no routes to other nodes");
            return;
        }
    };
    if !crate::proxy::valid_table(&table) {
        tracing::error!(table = %table, "pod network: invalid nftables table name; no masquerade");
    }
    let changed = Arc::new(Notify::new());
    let (nodes, watcher) =
        crate::proxy::mirror::mirror(api.clone(), "/api/v1/nodes", changed.clone());
    let vxlan_made = std::sync::atomic::AtomicBool::new(false);
    let sync = async {
        let mut masquerading = false;
        let mut reported: BTreeMap<String, String> = BTreeMap::new();
        let mut last_pass = None;
        let mut last_key = None;
        loop {
            let all: Vec<serde_json::Value> = nodes
                .objects
                .lock()
                .expect("node objects")
                .values()
                .map(|v| serde_json::Value::clone(v))
                .collect();
            // Heartbeats change Nodes every 10 s each: the host is only asked again when a
            // podCIDR or InternalIP changed, or on the periodic pass.
            let key = routes::relevant(&all);
            let due = last_pass.is_none_or(|t: std::time::Instant| t.elapsed() >= PERIOD)
                || last_key.as_ref() != Some(&key);
            if due
                && crate::proxy::valid_table(&table)
                && !(masquerading && table_exists(&table).await)
            {
                match crate::proxy::nft(&routes::masquerade_script(&table, &cluster)).await {
                    Ok(()) => {
                        tracing::info!(table = %table, cluster = %cluster, "pod network: masquerade for traffic leaving the cluster CIDR");
                        masquerading = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, table = %table, "pod network: applying the masquerade table failed");
                        masquerading = false;
                    }
                }
            }
            if due && nodes.listed.load(std::sync::atomic::Ordering::SeqCst) {
                last_pass = Some(std::time::Instant::now());
                last_key = Some(key);
                let addrs = ip(&strings(&["-4", "-o", "addr", "show"])).await;
                let current = installed(&cluster).await;
                match (addrs, current) {
                    (Ok(addrs), Ok(current)) => {
                        let (own_ips, connected) = routes::parse_addrs(&addrs, &cluster);
                        let local = routes::Local {
                            node: node.clone(),
                            pod_cidr: pod_cidr.clone(),
                            own_ips,
                            connected,
                        };
                        let plan = routes::plan(&all, &local, &cluster);
                        for (n, why) in &plan.skipped {
                            let text = why.to_string();
                            if reported.get(n) != Some(&text) {
                                match why {
                                    routes::Skip::NotConnected(_) | routes::Skip::Overlaps(_) => {
                                        tracing::warn!(node = %n, "pod network: no route: {text}")
                                    }
                                    _ => {
                                        tracing::debug!(node = %n, "pod network: no route: {text}")
                                    }
                                }
                                reported.insert(n.clone(), text);
                            }
                        }
                        reported.retain(|n, _| plan.skipped.iter().any(|(s, _)| s == n));
                        if plan.wants_vxlan {
                            match ensure_vxlan(&vxlan_dev, &node_ip, &pod_cidr).await {
                                Ok(mac) => {
                                    vxlan_made.store(true, std::sync::atomic::Ordering::SeqCst);
                                    let own =
                                        all.iter().find(|n| n["metadata"]["name"] == node.as_str());
                                    let published = own
                                        .and_then(|n| n.pointer("/metadata/annotations"))
                                        .and_then(|a| a.get(routes::VXLAN_MAC_ANNOTATION))
                                        .and_then(serde_json::Value::as_str);
                                    if published != Some(mac.as_str()) {
                                        let patch = serde_json::json!({"metadata": {"annotations": {routes::VXLAN_MAC_ANNOTATION: mac}}});
                                        match api
                                            .call(
                                                "PATCH",
                                                &format!("/api/v1/nodes/{node}"),
                                                Some(&patch),
                                            )
                                            .await
                                        {
                                            Ok(a) if a.code == 200 => {
                                                tracing::info!(mac = %mac, "pod network: VXLAN MAC published")
                                            }
                                            Ok(a) => tracing::warn!(
                                                code = a.code,
                                                "pod network: publishing the VXLAN MAC"
                                            ),
                                            Err(e) => {
                                                tracing::warn!(error = %e, "pod network: publishing the VXLAN MAC")
                                            }
                                        }
                                    }
                                    for t in plan.tunnels.values() {
                                        for (bin, args) in routes::tunnel_calls(&vxlan_dev, t) {
                                            if let Err(e) = run_cmd(bin, &args).await {
                                                tracing::warn!(error = %e, ?args, "pod network: VXLAN peer");
                                            }
                                        }
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, dev = %vxlan_dev, "pod network: VXLAN device")
                                }
                            }
                        }
                        let want = routes::desired(&plan, &vxlan_dev);
                        for c in routes::diff(&want, &current) {
                            match ip(&c.args()).await {
                                Ok(_) => tracing::info!(change = ?c, "pod network: route"),
                                Err(e) => {
                                    tracing::warn!(change = ?c, error = %e, "pod network: route change failed")
                                }
                            }
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!(error = %e, "pod network: reading addresses or routes")
                    }
                }
            }
            let _ = tokio::time::timeout(PERIOD, changed.notified()).await;
            tokio::time::sleep(DEBOUNCE).await;
        }
    };
    tracing::info!(node = %node, pod_cidr = %pod_cidr, "pod network started (host-gateway routes)");
    tokio::select! {
        _ = sync => {}
        _ = stop => {}
    }
    watcher.abort();
    if let Ok(current) = installed(&cluster).await {
        for dst in current.into_keys() {
            let c = routes::Change::Delete { dst };
            if let Err(e) = ip(&c.args()).await {
                tracing::warn!(change = ?c, error = %e, "pod network: removing a route");
            }
        }
    }
    if vxlan_made.load(std::sync::atomic::Ordering::SeqCst) {
        if let Err(e) = ip(&strings(&["link", "del", &vxlan_dev])).await {
            tracing::warn!(error = %e, dev = %vxlan_dev, "pod network: removing the VXLAN device");
        }
    }
    if crate::proxy::valid_table(&table) {
        if let Err(e) =
            crate::proxy::nft(&format!("table ip {table} {{}}\ndelete table ip {table}\n")).await
        {
            tracing::warn!(error = %e, table = %table, "pod network: deleting the table");
        }
    }
    tracing::info!("pod network stopped (routes and masquerade table removed)");
}
