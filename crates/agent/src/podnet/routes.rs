//! Pure core of the pod network across nodes: which host-gateway routes this node wants
//! (every other node's podCIDR via that node's InternalIP, when that address is on a directly
//! connected subnet), which peers it tunnels to over VXLAN instead (the others, once they
//! published their device's MAC), how the routes differ from those installed, and the
//! masquerade table.
//! No I/O: the edge (`mod.rs`) feeds it Nodes, `ip -o addr` and `ip route` output.

use capstan_validation::cidr::Cidr;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The routing protocol number the agent tags its routes with (`ip route … proto 143`), so
/// it only ever lists, changes or deletes routes it made.
pub const ROUTE_PROTO: &str = "143";

/// The Node annotation where a node publishes the MAC address of its VXLAN device.
pub const VXLAN_MAC_ANNOTATION: &str = "capstan.io/vxlan-mac";

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
    /// Its InternalIP is not on a directly connected subnet, so host-gateway routing cannot
    /// reach it, and it publishes no VXLAN device (yet) to tunnel to.
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
                "InternalIP {ip} is not on a directly connected subnet (host-gateway routing cannot reach it) and the node publishes no VXLAN MAC ({VXLAN_MAC_ANNOTATION}) yet"
            ),
        }
    }
}

/// A peer reached through this node's VXLAN device: its InternalIP (the tunnel's far end),
/// its device's MAC and overlay address (its podCIDR's network address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub node_ip: Ipv4Addr,
    pub mac: String,
    pub gateway: Ipv4Addr,
}

/// The routes this node wants (podCIDR → gateway on a connected subnet), the peers it tunnels
/// to (podCIDR → tunnel), whether it needs a VXLAN device of its own (some peer is not
/// connected), and the nodes that got nothing, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub routes: BTreeMap<String, Ipv4Addr>,
    pub tunnels: BTreeMap<String, Tunnel>,
    pub wants_vxlan: bool,
    pub skipped: Vec<(String, Skip)>,
}

/// A MAC address as `ip` prints it (six lowercase hex pairs), or None.
pub fn normal_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    (parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())))
    .then(|| s.trim().to_ascii_lowercase())
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

/// What of the Nodes the plan depends on: name → (podCIDR, InternalIP, VXLAN MAC).
pub type Relevant = BTreeMap<String, (String, Option<Ipv4Addr>, String)>;

/// [`Relevant`] of the Nodes.
pub fn relevant(nodes: &[Value]) -> Relevant {
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
                    n.pointer("/metadata/annotations")
                        .and_then(|a| a.get(VXLAN_MAC_ANNOTATION))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
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
        // A loopback InternalIP (simulated nodes) is this host too.
        if local.own_ips.contains(&ip) || ip.is_loopback() {
            skip(Skip::SameHost);
            continue;
        }
        if taken.iter().any(|t| overlaps(t, &cidr)) {
            skip(Skip::Overlaps(cidr.to_string()));
            continue;
        }
        if !local.connected.iter().any(|s| s.contains(ip)) {
            out.wants_vxlan = true;
            let mac = n
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(VXLAN_MAC_ANNOTATION))
                .and_then(Value::as_str)
                .and_then(normal_mac);
            let Some(mac) = mac else {
                skip(Skip::NotConnected(ip));
                continue;
            };
            taken.push(cidr);
            let tunnel = Tunnel {
                node_ip: ip,
                mac,
                gateway: Ipv4Addr::from(cidr.base),
            };
            out.tunnels.insert(cidr.to_string(), tunnel);
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

/// A route's next hop: a gateway, on the VXLAN device (`dev D onlink`) or on a connected
/// subnet (`dev` None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub via: Ipv4Addr,
    pub dev: Option<String>,
}

/// Every route the plan wants, the tunnels' on `vxlan_dev`.
pub fn desired(plan: &Plan, vxlan_dev: &str) -> BTreeMap<String, Hop> {
    let gw = plan.routes.iter().map(|(d, via)| {
        let hop = Hop {
            via: *via,
            dev: None,
        };
        (d.clone(), hop)
    });
    let tun = plan.tunnels.iter().map(|(d, t)| {
        let hop = Hop {
            via: t.gateway,
            dev: Some(vxlan_dev.to_string()),
        };
        (d.clone(), hop)
    });
    gw.chain(tun).collect()
}

/// The routes installed with [`ROUTE_PROTO`] (`ip -4 route show proto 143`): dst → hop,
/// only those inside the cluster CIDR (another node of another cluster on this host may use
/// the same tag).
pub fn parse_routes(text: &str, cluster: &Cidr) -> BTreeMap<String, Hop> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let dst = Cidr::parse(words.first()?).ok()?;
            let i = words.iter().position(|w| *w == "via")?;
            let via: Ipv4Addr = words.get(i + 1)?.parse().ok()?;
            let dev = words
                .iter()
                .position(|w| *w == "dev")
                .and_then(|i| words.get(i + 1))
                .filter(|_| words.contains(&"onlink"))
                .map(|d| d.to_string());
            cluster
                .contains(Ipv4Addr::from(dst.base))
                .then(|| (dst.to_string(), Hop { via, dev }))
        })
        .collect()
}

/// One `ip route` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Replace { dst: String, hop: Hop },
    Delete { dst: String },
}

impl Change {
    /// The arguments of `ip`.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = match self {
            Change::Replace { dst, hop } => {
                let mut a: Vec<String> = ["route", "replace", dst, "via", &hop.via.to_string()]
                    .map(String::from)
                    .to_vec();
                if let Some(dev) = &hop.dev {
                    a.extend(["dev".into(), dev.clone(), "onlink".into()]);
                }
                a
            }
            Change::Delete { dst } => ["route", "del", dst].map(String::from).to_vec(),
        };
        a.extend(["proto".to_string(), ROUTE_PROTO.to_string()]);
        a
    }
}

/// The calls that turn `current` into `desired`: deletions first, then replacements.
pub fn diff(desired: &BTreeMap<String, Hop>, current: &BTreeMap<String, Hop>) -> Vec<Change> {
    let deletes = current
        .keys()
        .filter(|d| !desired.contains_key(*d))
        .map(|d| Change::Delete { dst: d.clone() });
    let replaces = desired
        .iter()
        .filter(|(d, hop)| current.get(*d) != Some(hop))
        .map(|(d, hop)| Change::Replace {
            dst: d.clone(),
            hop: hop.clone(),
        });
    deletes.chain(replaces).collect()
}

/// The `ip`/`bridge` calls that make `dev` reach a tunnel's peer (idempotent): the peer's
/// overlay address → its MAC, its MAC → its InternalIP.
pub fn tunnel_calls(dev: &str, t: &Tunnel) -> [(&'static str, Vec<String>); 2] {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let gw = t.gateway.to_string();
    let ip = t.node_ip.to_string();
    [
        (
            "ip",
            own(&[
                "neigh",
                "replace",
                &gw,
                "lladdr",
                &t.mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ]),
        ),
        (
            "bridge",
            own(&[
                "fdb",
                "replace",
                &t.mac,
                "dev",
                dev,
                "dst",
                &ip,
                "self",
                "permanent",
            ]),
        ),
    ]
}

/// The VXLAN device of a node whose pods use `bridge` (`capstan0` → `capstan0-vx`; at most
/// 15 characters).
pub fn vxlan_device(bridge: &str) -> String {
    let mut base: String = bridge.chars().take(12).collect();
    base.push_str("-vx");
    base
}

/// The VXLAN device's MAC from `ip -o link show dev D`.
pub fn parse_mac(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "link/ether")?;
    normal_mac(words.get(i + 1)?)
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
