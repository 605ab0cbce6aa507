//! The service proxy's ruleset: Services and EndpointSlices (as the API serves them) → the
//! text of one nftables table, as an `nft -f` script that replaces the table in one
//! transaction (`table ip T {}` + `delete table ip T` + the table).
//!
//! Layout (kube-proxy's nftables mode, simplified):
//! - `service-ips` (`ip daddr . l4proto . dport` → verdict): cluster IPs → `svc-…`,
//!   externalIPs and LoadBalancer ingress IPs → `ext-…`; `service-nodeports`
//!   (`l4proto . dport` → `ext-…`) for destinations in `nodeport-ips` (the node's addresses).
//!   Both are consulted from `nat-prerouting` (dstnat) and `nat-output` (host traffic).
//! - `svc-…`: ClientIP affinity (`ip saddr @aff-<ep>` → that endpoint) then
//!   `numgen random mod N vmap` over the `ep-…` chains; `ext-…` marks for masquerade first.
//!   Without affinity the service chain DNATs itself (`dnat ip to numgen random mod N map
//!   { 0 : ip . port, … }`): one chain per service port keeps `nft` fast at 10,000 services.
//! - `ep-…` (affinity only): records affinity, DNATs.
//! - `nat-postrouting` masquerades marked packets and hairpin traffic (a DNATed packet whose
//!   source is its destination: `ip saddr . ip daddr @hairpin`, every endpoint `ip . ip`).
//! - Services without a ready endpoint are in `no-endpoint-services`/`no-endpoint-nodeports`,
//!   checked from filter chains at priority -110 (before DNAT) on input, forward and output,
//!   which `reject` (a TCP reset, ICMP port unreachable otherwise) new connections.
//!
//! Only IPv4. Endpoints count when `conditions.ready` is not false; a service port takes the
//! slice port of the same name and protocol. `externalTrafficPolicy: Local` sends external
//! traffic only to endpoints on this node (dropped when there is none), without masquerade.
//! Everything is sorted, so equal inputs give equal text.

use serde_json::Value;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// The packet mark bit that asks `nat-postrouting` to masquerade.
pub const MASQUERADE_MARK: u32 = 0x4000;

/// One ready endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub local: bool,
}

/// A service port with what it is reachable on and where it goes.
#[derive(Debug)]
pub(super) struct SvcPort {
    /// `<ns>/<name>/<proto>/<port name or number>`, unique per service port.
    pub id: String,
    pub proto: &'static str,
    pub port: u16,
    pub node_port: Option<u16>,
    pub cluster_ips: Vec<Ipv4Addr>,
    /// externalIPs and LoadBalancer ingress IPs.
    pub external_ips: Vec<Ipv4Addr>,
    /// ClientIP affinity timeout in seconds.
    pub affinity: Option<u64>,
    pub local_external: bool,
    pub endpoints: Vec<Endpoint>,
}

/// Whether `s` is safe inside an nft identifier (names of API objects always are).
fn ident_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn proto_of(v: &Value) -> Option<&'static str> {
    match v.as_str().unwrap_or("TCP") {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

pub(super) fn ipv4s<'a>(it: impl IntoIterator<Item = &'a Value>) -> Vec<Ipv4Addr> {
    let set: BTreeSet<Ipv4Addr> = it
        .into_iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    set.into_iter().collect()
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The ready endpoints the slices of `ns/name` give the port named `port_name` of `proto`.
fn endpoints_for(slices: &[&Value], port_name: &str, proto: &str, node: &str) -> Vec<Endpoint> {
    let mut out = BTreeSet::new();
    for sl in slices {
        if sl["addressType"].as_str() != Some("IPv4") {
            continue;
        }
        let Some(port) = arr(&sl["ports"]).iter().find_map(|p| {
            let named = p["name"].as_str().unwrap_or("") == port_name;
            (named && proto_of(&p["protocol"]) == Some(proto))
                .then(|| p["port"].as_u64().and_then(|n| u16::try_from(n).ok()))
                .flatten()
                .filter(|n| *n != 0)
        }) else {
            continue;
        };
        for ep in arr(&sl["endpoints"]) {
            if ep["conditions"]["ready"] == Value::Bool(false) {
                continue;
            }
            let Some(ip) = arr(&ep["addresses"])
                .first()
                .and_then(|a| a.as_str()?.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            out.insert(Endpoint {
                ip,
                port,
                local: ep["nodeName"].as_str() == Some(node),
            });
        }
    }
    // One entry per address:port (two slices may list the same endpoint).
    let mut seen = BTreeSet::new();
    out.into_iter()
        .filter(|e| seen.insert((e.ip, e.port)))
        .collect()
}

pub(super) fn service_ports<S: Borrow<Value>>(
    services: &[S],
    by_service: &HashMap<(&str, &str), Vec<&Value>>,
    node: &str,
) -> Vec<SvcPort> {
    let mut out = Vec::new();
    for svc in services {
        let svc = svc.borrow();
        let (md, spec) = (&svc["metadata"], &svc["spec"]);
        let (Some(ns), Some(name)) = (md["namespace"].as_str(), md["name"].as_str()) else {
            continue;
        };
        let kind = spec["type"].as_str().unwrap_or("ClusterIP");
        if !ident_safe(ns) || !ident_safe(name) || kind == "ExternalName" {
            continue;
        }
        let mut cluster_ips = ipv4s(arr(&spec["clusterIPs"]));
        if cluster_ips.is_empty() {
            cluster_ips = ipv4s(std::iter::once(&spec["clusterIP"]));
        }
        if cluster_ips.is_empty() {
            // Headless ("None") or not allocated: nothing to proxy.
            continue;
        }
        let mut external: Vec<&Value> = arr(&spec["externalIPs"]).iter().collect();
        if kind == "LoadBalancer" {
            external.extend(
                arr(&svc["status"]["loadBalancer"]["ingress"])
                    .iter()
                    .map(|i| &i["ip"]),
            );
        }
        let external_ips = ipv4s(external);
        let affinity = (spec["sessionAffinity"].as_str() == Some("ClientIP")).then(|| {
            spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]
                .as_u64()
                .filter(|t| *t > 0)
                .unwrap_or(10800)
        });
        let local_external = spec["externalTrafficPolicy"].as_str() == Some("Local");
        let slices = by_service
            .get(&(ns, name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for p in arr(&spec["ports"]) {
            let (Some(proto), Some(port)) = (
                proto_of(&p["protocol"]),
                p["port"].as_u64().and_then(|n| u16::try_from(n).ok()),
            ) else {
                continue;
            };
            let port_name = p["name"].as_str().unwrap_or("");
            if !port_name.is_empty() && !ident_safe(port_name) {
                continue;
            }
            let node_port = match kind {
                "NodePort" | "LoadBalancer" => p["nodePort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0),
                _ => None,
            };
            let key = if port_name.is_empty() {
                port.to_string()
            } else {
                port_name.to_string()
            };
            out.push(SvcPort {
                id: format!("{ns}/{name}/{proto}/{key}"),
                proto,
                port,
                node_port,
                cluster_ips: cluster_ips.clone(),
                external_ips: external_ips.clone(),
                affinity,
                local_external,
                endpoints: endpoints_for(slices, port_name, proto, node),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn ep_chain(sp: &SvcPort, e: &Endpoint) -> String {
    format!("ep-{}/{}/{}", sp.id, e.ip, e.port)
}

fn aff_set(sp: &SvcPort, e: &Endpoint) -> String {
    format!("aff-{}/{}/{}", sp.id, e.ip, e.port)
}

/// Write a verdict map with its (sorted) elements.
fn write_map(out: &mut String, name: &str, ty: &str, elements: &[String]) {
    let _ = writeln!(out, "\tmap {name} {{\n\t\ttype {ty} : verdict");
    if !elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(",\n\t\t\t"));
    }
    out.push_str("\t}\n");
}

fn write_chain(out: &mut String, name: &str, rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}

/// The chain a set of endpoints balances over, or None when there is none.
fn balance_rules(sp: &SvcPort, eps: &[&Endpoint]) -> Vec<String> {
    if sp.affinity.is_none() {
        // No per-endpoint state: the DNAT is inline (fewer chains keep nft fast at 10,000
        // services); hairpin traffic is masqueraded from the `hairpin` set.
        return vec![match eps {
            [e] => format!("meta l4proto {} dnat to {}:{}", sp.proto, e.ip, e.port),
            _ => {
                let arms: Vec<String> = eps
                    .iter()
                    .enumerate()
                    .map(|(i, e)| format!("{i} : {} . {}", e.ip, e.port))
                    .collect();
                format!(
                    "meta l4proto {} dnat ip to numgen random mod {} map {{ {} }}",
                    sp.proto,
                    eps.len(),
                    arms.join(", ")
                )
            }
        }];
    }
    let mut rules = Vec::new();
    for e in eps {
        rules.push(format!(
            "ip saddr @{} goto {}",
            aff_set(sp, e),
            ep_chain(sp, e)
        ));
    }
    let arms: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i} : goto {}", ep_chain(sp, e)))
        .collect();
    rules.push(format!(
        "numgen random mod {} vmap {{ {} }}",
        eps.len(),
        arms.join(", ")
    ));
    rules
}

/// Map keys of `service-ips` / `no-endpoint-services`: destination, protocol, port.
pub type AddrKey = (Ipv4Addr, &'static str, u16);
/// Map keys of `service-nodeports` / `no-endpoint-nodeports`: protocol, port.
pub type PortKey = (&'static str, u16);

/// The verdict of a key whose service has no ready endpoint; such keys live in the
/// `no-endpoint-*` maps, every other key in `service-ips` / `service-nodeports`.
pub const REJECT: &str = "goto reject-chain";

/// A UDP service port as the conntrack flushes need it (see [`conntrack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPort {
    pub id: String,
    /// Cluster, external and LoadBalancer ingress IPs.
    pub vips: Vec<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Ready endpoints (address, port).
    pub endpoints: BTreeSet<(Ipv4Addr, u16)>,
}

/// Everything the table holds besides its fixed chains, computed by [`state`]: the input of
/// [`full_script`] and, between two states, of [`delta::delta_script`] and
/// [`conntrack::udp_flushes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The node's addresses (sorted), the elements of `nodeport-ips`.
    pub node_ips: Vec<Ipv4Addr>,
    /// Every address key → its verdict (`goto svc-…`, `goto ext-…` or [`REJECT`]).
    pub service_ips: BTreeMap<AddrKey, String>,
    /// Every node port key → its verdict.
    pub nodeports: BTreeMap<PortKey, String>,
    /// ClientIP affinity sets and their timeouts (seconds), in service order.
    pub sets: Vec<(String, u64)>,
    /// The per-service chains (`svc-`, `ext-`, `ep-`) and their rules, in service order.
    pub chains: Vec<Chain>,
    /// The UDP service ports, in id order.
    pub udp: Vec<UdpPort>,
    /// Every ready endpoint's address: a DNATed packet from one of them to itself (a pod
    /// reaching itself through its service) is masqueraded (`hairpin` set, `ip . ip`).
    pub hairpin: BTreeSet<Ipv4Addr>,
}

/// The slices of each `(namespace, service name)`, so each service port reads only its own.
pub(super) fn slices_by_service<E: Borrow<Value>>(
    slices: &[E],
) -> HashMap<(&str, &str), Vec<&Value>> {
    let mut by: HashMap<(&str, &str), Vec<&Value>> = HashMap::new();
    for sl in slices {
        let sl = sl.borrow();
        let md = &sl["metadata"];
        if let (Some(ns), Some(name)) = (
            md["namespace"].as_str(),
            md["labels"]["kubernetes.io/service-name"].as_str(),
        ) {
            by.entry((ns, name)).or_default().push(sl);
        }
    }
    by
}

/// The table's content for these services and slices. `node_ips` are the addresses NodePorts
/// answer on; `node` is this node's name (for `externalTrafficPolicy: Local`). Invalid
/// addresses and names are skipped. [`memo::Memo::state`] computes the same from `Arc`ed
/// objects, reusing the parts of services whose objects did not change.
pub fn state<S: Borrow<Value>, E: Borrow<Value>>(
    node: &str,
    node_ips: &[String],
    services: &[S],
    slices: &[E],
) -> State {
    let by_service = slices_by_service(slices);
    let whole = part(&service_ports(services, &by_service, node));
    assemble(std::iter::once(&whole), node_ips)
}

/// A chain of the table and its rules, shared between the states (and the memo) that hold it.
pub type Chain = std::sync::Arc<(String, Vec<String>)>;

/// What some service ports put into a [`State`], in their order, before the claims of other
/// services on the same map keys are settled (by [`assemble`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Part {
    pub addrs: Vec<(AddrKey, String)>,
    pub nodeports: Vec<(PortKey, String)>,
    pub sets: Vec<(String, u64)>,
    pub chains: Vec<Chain>,
    pub udp: Vec<UdpPort>,
    /// Endpoint addresses (elements `ip . ip` of the `hairpin` set).
    pub hairpin: Vec<Ipv4Addr>,
}

/// The part of these service ports.
pub(super) fn part(ports: &[SvcPort]) -> Part {
    let mut out = Part::default();
    for sp in ports {
        let svc = format!("svc-{}", sp.id);
        let ext = format!("ext-{}", sp.id);
        let none = sp.endpoints.is_empty();
        let verdict = |chain: &str| {
            if none {
                REJECT.to_string()
            } else {
                format!("goto {chain}")
            }
        };
        for ip in &sp.cluster_ips {
            out.addrs.push(((*ip, sp.proto, sp.port), verdict(&svc)));
        }
        for ip in &sp.external_ips {
            out.addrs.push(((*ip, sp.proto, sp.port), verdict(&ext)));
        }
        if let Some(np) = sp.node_port {
            out.nodeports.push(((sp.proto, np), verdict(&ext)));
        }
        if sp.proto == "udp" {
            out.udp.push(UdpPort {
                id: sp.id.clone(),
                vips: sp
                    .cluster_ips
                    .iter()
                    .chain(&sp.external_ips)
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                port: sp.port,
                node_port: sp.node_port,
                endpoints: sp.endpoints.iter().map(|e| (e.ip, e.port)).collect(),
            });
        }
        if none {
            continue;
        }
        let all: Vec<&Endpoint> = sp.endpoints.iter().collect();
        out.chains
            .push(Chain::new((svc.clone(), balance_rules(sp, &all))));
        if !sp.external_ips.is_empty() || sp.node_port.is_some() {
            let rules = if sp.local_external {
                let local: Vec<&Endpoint> = sp.endpoints.iter().filter(|e| e.local).collect();
                if local.is_empty() {
                    vec!["drop".to_string()]
                } else {
                    balance_rules(sp, &local)
                }
            } else {
                vec!["jump mark-for-masquerade".into(), format!("goto {svc}")]
            };
            out.chains.push(Chain::new((ext, rules)));
        }
        out.hairpin.extend(sp.endpoints.iter().map(|e| e.ip));
        let Some(t) = sp.affinity else { continue };
        for e in &sp.endpoints {
            let rules = vec![
                format!("update @{} {{ ip saddr }}", aff_set(sp, e)),
                format!("meta l4proto {} dnat to {}:{}", sp.proto, e.ip, e.port),
            ];
            out.sets.push((aff_set(sp, e), t));
            out.chains.push(Chain::new((ep_chain(sp, e), rules)));
        }
    }
    out
}

/// The State of these parts (in service order: the first part claiming a map key keeps it)
/// and node addresses.
pub(super) fn assemble<'a>(parts: impl Iterator<Item = &'a Part>, node_ips: &[String]) -> State {
    let mut st = State::default();
    for p in parts {
        for (k, v) in &p.addrs {
            st.service_ips.entry(*k).or_insert_with(|| v.clone());
        }
        for (k, v) in &p.nodeports {
            st.nodeports.entry(*k).or_insert_with(|| v.clone());
        }
        st.sets.extend(p.sets.iter().cloned());
        st.chains.extend(p.chains.iter().cloned());
        st.udp.extend(p.udp.iter().cloned());
        st.hairpin.extend(p.hairpin.iter().copied());
    }
    st.node_ips = node_ips
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect::<BTreeSet<Ipv4Addr>>()
        .into_iter()
        .collect();
    st
}

/// `ip . proto . port : verdict` elements of the address map of `reject` (or the other).
fn addr_elements(st: &State, reject: bool) -> Vec<String> {
    st.service_ips
        .iter()
        .filter(|(_, v)| (v.as_str() == REJECT) == reject)
        .map(|(k, v)| format!("{} : {v}", addr_key(k)))
        .collect()
}

fn port_elements(st: &State, reject: bool) -> Vec<String> {
    st.nodeports
        .iter()
        .filter(|(_, v)| (v.as_str() == REJECT) == reject)
        .map(|(k, v)| format!("{} : {v}", port_key(k)))
        .collect()
}

/// An address map key as nft writes it.
pub fn addr_key((ip, p, port): &AddrKey) -> String {
    format!("{ip} . {p} . {port}")
}

/// A `hairpin` set element as nft writes it (the endpoint's address twice).
pub fn hairpin_element(ip: &Ipv4Addr) -> String {
    format!("{ip} . {ip}")
}

/// A node port map key as nft writes it.
pub fn port_key((p, port): &PortKey) -> String {
    format!("{p} . {port}")
}

/// The `nft -f` script that (re)creates table `ip <table>` for these services and slices
/// ([`full_script`] of [`state`]).
pub fn ruleset(
    table: &str,
    node: &str,
    node_ips: &[String],
    services: &[Value],
    slices: &[Value],
) -> String {
    full_script(table, node, &state(node, node_ips, services, slices))
}

/// The `nft -f` script that replaces table `ip <table>` with `st` in one transaction.
pub fn full_script(table: &str, node: &str, st: &State) -> String {
    let mark = format!("0x{MASQUERADE_MARK:08x}");
    let mut out = format!("table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n");
    if ident_safe(node) {
        let _ = writeln!(out, "\tcomment \"capstan service proxy of node {node}\"");
    }
    let ips: Vec<String> = st.node_ips.iter().map(|i| i.to_string()).collect();
    out.push_str("\tset nodeport-ips {\n\t\ttype ipv4_addr\n");
    if !ips.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", ips.join(", "));
    }
    out.push_str("\t}\n");
    out.push_str("\tset hairpin {\n\t\ttype ipv4_addr . ipv4_addr\n");
    if !st.hairpin.is_empty() {
        let pairs: Vec<String> = st.hairpin.iter().map(hairpin_element).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", pairs.join(", "));
    }
    out.push_str("\t}\n");
    for (name, timeout) in &st.sets {
        let _ = writeln!(
            out,
            "\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
        );
    }
    const ADDR: &str = "ipv4_addr . inet_proto . inet_service";
    const PORT: &str = "inet_proto . inet_service";
    write_map(&mut out, "service-ips", ADDR, &addr_elements(st, false));
    write_map(
        &mut out,
        "service-nodeports",
        PORT,
        &port_elements(st, false),
    );
    write_map(
        &mut out,
        "no-endpoint-services",
        ADDR,
        &addr_elements(st, true),
    );
    write_map(
        &mut out,
        "no-endpoint-nodeports",
        PORT,
        &port_elements(st, true),
    );
    let check_svc = "ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services";
    let check_np =
        "ct state new ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports";
    let base = |hook: &str, ty: &str, prio: &str| {
        format!("type {ty} hook {hook} priority {prio}; policy accept;")
    };
    let fixed: Vec<(&str, Vec<String>)> = vec![
        (
            "filter-input",
            vec![base("input", "filter", "-110"), check_svc.into(), check_np.into()],
        ),
        (
            "filter-forward",
            vec![base("forward", "filter", "-110"), check_svc.into()],
        ),
        (
            "filter-output",
            vec![base("output", "filter", "-110"), check_svc.into(), check_np.into()],
        ),
        (
            "nat-prerouting",
            vec![base("prerouting", "nat", "dstnat"), "jump services".into()],
        ),
        (
            "nat-output",
            vec![base("output", "nat", "-100"), "jump services".into()],
        ),
        (
            "nat-postrouting",
            vec![
                base("postrouting", "nat", "srcnat"),
                format!("meta mark & {mark} == {mark} meta mark set meta mark ^ {mark} masquerade fully-random"),
                "ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random".into(),
            ],
        ),
        (
            "mark-for-masquerade",
            vec![format!("meta mark set meta mark | {mark}")],
        ),
        (
            "reject-chain",
            vec!["meta l4proto tcp reject with tcp reset".into(), "reject".into()],
        ),
        (
            "services",
            vec![
                "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
                "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports".into(),
            ],
        ),
    ];
    for (name, rules) in &fixed {
        write_chain(&mut out, name, rules);
    }
    for c in &st.chains {
        write_chain(&mut out, &c.0, &c.1);
    }
    out.push_str("}\n");
    out
}

pub mod conntrack;
pub mod delta;
pub mod memo;

#[cfg(test)]
mod tests;
