//! Pure core of the pod network across nodes: which host-gateway routes this node wants
//! (every other node's podCIDR via that node's InternalIP, when that address is on a directly
//! connected subnet), how they differ from the routes installed, and the masquerade table.
//! No I/O: the edge (`mod.rs`) feeds it Nodes, `ip -o addr` and `ip route` output.

use capstan_validation::cidr::Cidr;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The routing protocol number the agent tags its routes with (`ip route … proto 143`), so
/// it only ever lists, changes or deletes routes it made.
pub const ROUTE_PROTO: &str = "143";

/// What this node knows about itself.
#[derive(Debug, Clone, Default)]
pub struct Local {
    pub node: String,
    pub pod_cidr: String,
    /// Every IPv4 address of this network namespace (loopback included).
    pub own_ips: Vec<Ipv4Addr>,
    /// Subnets of the global-scope addresses (the pod bridges' excluded).
    pub connected: Vec<Cidr>,
}

/// Why a node got no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// No spec.podCIDR yet.
    NoPodCidr,
    /// No InternalIP (or not IPv4).
    NoAddress,
    /// The podCIDR is not an IPv4 CIDR inside the cluster CIDR.
    OutsideCluster(String),
    /// The podCIDR overlaps this node's own or one routed to another node already.
    Overlaps(String),
    /// Its InternalIP is one of ours: the node shares this network namespace (its bridge's
    /// connected route already reaches its pods).
    SameHost,
    /// Its InternalIP is not on a directly connected subnet: host-gateway routing cannot
    /// reach it (an overlay such as VXLAN would be needed).
    NotConnected(Ipv4Addr),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NoPodCidr => write!(f, "no podCIDR yet"),
            Skip::NoAddress => write!(f, "no IPv4 InternalIP"),
            Skip::OutsideCluster(c) => write!(f, "podCIDR {c} is outside the cluster CIDR"),
            Skip::Overlaps(c) => write!(f, "podCIDR {c} overlaps another node's"),
            Skip::SameHost => write!(f, "same network namespace as this node"),
            Skip::NotConnected(ip) => write!(
                f,
                "InternalIP {ip} is not on a directly connected subnet (host-gateway routing cannot reach it; VXLAN would be needed)"
            ),
        }
    }
}

/// The routes this node wants (podCIDR → gateway) and the nodes that got none, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub routes: BTreeMap<String, Ipv4Addr>,
    pub skipped: Vec<(String, Skip)>,
}

fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    let p = a.prefix.min(b.prefix);
    let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    a.base & m == b.base & m
}

fn internal_ip(node: &Value) -> Option<Ipv4Addr> {
    node.pointer("/status/addresses")?
        .as_array()?
        .iter()
        .filter(|a| a["type"] == "InternalIP")
        .find_map(|a| a["address"].as_str()?.parse().ok())
}

/// What of the Nodes the plan depends on: name → (podCIDR, InternalIP).
pub fn relevant(nodes: &[Value]) -> BTreeMap<String, (String, Option<Ipv4Addr>)> {
    nodes
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                (
                    n.pointer("/spec/podCIDR")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    internal_ip(n),
                ),
            )
        })
        .collect()
}

/// The desired routes: nodes in name order, the first to claim a podCIDR keeps it.
pub fn plan(nodes: &[Value], local: &Local, cluster: &Cidr) -> Plan {
    let mut sorted: Vec<&Value> = nodes.iter().collect();
    sorted.sort_by_key(|n| {
        n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let own = Cidr::parse(&local.pod_cidr).ok();
    let mut taken: Vec<Cidr> = own.into_iter().collect();
    let mut out = Plan::default();
    for n in sorted {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name == local.node {
            continue;
        }
        let mut skip = |why| out.skipped.push((name.clone(), why));
        let Some(text) = n.pointer("/spec/podCIDR").and_then(Value::as_str) else {
            skip(Skip::NoPodCidr);
            continue;
        };
        let cidr = match Cidr::parse(text) {
            Ok(c) if c.prefix >= cluster.prefix && cluster.contains(Ipv4Addr::from(c.base)) => c,
            _ => {
                skip(Skip::OutsideCluster(text.to_string()));
                continue;
            }
        };
        let Some(ip) = internal_ip(n) else {
            skip(Skip::NoAddress);
            continue;
        };
        if local.own_ips.contains(&ip) {
            skip(Skip::SameHost);
            continue;
        }
        if taken.iter().any(|t| overlaps(t, &cidr)) {
            skip(Skip::Overlaps(cidr.to_string()));
            continue;
        }
        if !local.connected.iter().any(|s| s.contains(ip)) {
            skip(Skip::NotConnected(ip));
            continue;
        }
        taken.push(cidr);
        out.routes.insert(cidr.to_string(), ip);
    }
    out
}

/// (addresses, connected subnets) from `ip -4 -o addr show`: every address is ours; the
/// subnets of global-scope ones count as connected unless inside the cluster CIDR (the pod
/// bridges).
pub fn parse_addrs(text: &str, cluster: &Cidr) -> (Vec<Ipv4Addr>, Vec<Cidr>) {
    let (mut ips, mut nets) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "inet") else {
            continue;
        };
        let Some(addr) = words.get(i + 1) else {
            continue;
        };
        let Some(ip) = addr.split('/').next().and_then(|a| a.parse().ok()) else {
            continue;
        };
        ips.push(ip);
        let global = words
            .windows(2)
            .any(|w| w[0] == "scope" && w[1] == "global");
        match Cidr::parse(addr) {
            Ok(c) if global && !cluster.contains(ip) && c.prefix < 32 && !nets.contains(&c) => {
                nets.push(c)
            }
            _ => {}
        }
    }
    (ips, nets)
}

/// The routes installed with [`ROUTE_PROTO`] (`ip -4 route show proto 143`): dst → gateway,
/// only those inside the cluster CIDR (another node of another cluster on this host may use
/// the same tag).
pub fn parse_routes(text: &str, cluster: &Cidr) -> BTreeMap<String, Ipv4Addr> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let dst = Cidr::parse(words.first()?).ok()?;
            let i = words.iter().position(|w| *w == "via")?;
            let via: Ipv4Addr = words.get(i + 1)?.parse().ok()?;
            cluster
                .contains(Ipv4Addr::from(dst.base))
                .then(|| (dst.to_string(), via))
        })
        .collect()
}

/// One `ip route` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Replace { dst: String, via: Ipv4Addr },
    Delete { dst: String },
}

impl Change {
    /// The arguments of `ip`.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = match self {
            Change::Replace { dst, via } => ["route", "replace", dst, "via", &via.to_string()]
                .map(String::from)
                .to_vec(),
            Change::Delete { dst } => ["route", "del", dst].map(String::from).to_vec(),
        };
        a.extend(["proto".to_string(), ROUTE_PROTO.to_string()]);
        a
    }
}

/// The calls that turn `current` into `desired`: deletions first, then replacements.
pub fn diff(
    desired: &BTreeMap<String, Ipv4Addr>,
    current: &BTreeMap<String, Ipv4Addr>,
) -> Vec<Change> {
    let deletes = current
        .keys()
        .filter(|d| !desired.contains_key(*d))
        .map(|d| Change::Delete { dst: d.clone() });
    let replaces = desired
        .iter()
        .filter(|(d, via)| current.get(*d) != Some(via))
        .map(|(d, via)| Change::Replace {
            dst: d.clone(),
            via: *via,
        });
    deletes.chain(replaces).collect()
}

/// The masquerade table (`nft -f`, replaced atomically): traffic from the cluster's pods to
/// anywhere outside the cluster CIDR leaves with the node's address; pod-to-pod traffic,
/// across nodes too, keeps its source.
pub fn masquerade_script(table: &str, cluster: &Cidr) -> String {
    format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr {cluster} ip daddr != {{ {cluster}, 224.0.0.0/4 }} masquerade\n\t}}\n}}\n"
    )
}

#[cfg(test)]
mod tests;
