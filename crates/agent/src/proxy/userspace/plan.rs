//! Userspace mode's pure core: Services and EndpointSlices → the frontends the agent listens
//! for (one per TCP or UDP service port), and the `nft -f` script that DNATs their traffic to
//! the agent's listeners.
//!
//! The table (`ip <table>`, replaced in one transaction) has `service-ips`
//! (`ip daddr . l4proto . dport` → listener address `<node IP> . <port>`: cluster IPs,
//! externalIPs and LoadBalancer ingress IPs) and `service-nodeports` (`l4proto . dport` →
//! listener, for destinations in `nodeport-ips`, the node's addresses), consulted from
//! `nat-prerouting` (pods and other hosts) and `nat-output` (the host itself). The target is
//! the node's address rather than `redirect` (the incoming interface's first address): the
//! bridge carries several nodes' gateway addresses on one machine, and a UDP listener bound to
//! one address answers from that address, which conntrack then maps back to the VIP.
//! Services without endpoints are redirected too: their listener closes the connection.
//! SCTP ports are not proxied in this mode.

use super::super::rules::{ipv4s, service_ports, slices_by_service};
use serde_json::Value;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The protocols a frontend listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One service port as the userspace proxy serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// `<ns>/<name>/<proto>/<port name or number>`: a listener lives as long as its id.
    pub id: String,
    pub proto: Proto,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Cluster IPs, externalIPs and LoadBalancer ingress IPs (sorted, unique).
    pub ips: Vec<Ipv4Addr>,
    /// ClientIP affinity timeout in seconds.
    pub affinity: Option<u64>,
    /// Ready endpoints, sorted.
    pub endpoints: Vec<SocketAddrV4>,
}

/// The frontends of these services (sorted by id).
pub fn frontends<S: Borrow<Value>, E: Borrow<Value>>(
    services: &[S],
    slices: &[E],
    node: &str,
) -> Vec<Frontend> {
    service_ports(services, &slices_by_service(slices), node)
        .into_iter()
        .filter_map(|sp| {
            let proto = match sp.proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return None,
            };
            let mut ips = sp.cluster_ips.clone();
            ips.extend(&sp.external_ips);
            ips.sort();
            ips.dedup();
            Some(Frontend {
                id: sp.id,
                proto,
                port: sp.port,
                node_port: sp.node_port,
                ips,
                affinity: sp.affinity,
                endpoints: sp
                    .endpoints
                    .iter()
                    .map(|e| SocketAddrV4::new(e.ip, e.port))
                    .collect(),
            })
        })
        .collect()
}

fn write_map(out: &mut String, name: &str, ty: &str, elements: &[String]) {
    let _ = writeln!(
        out,
        "\tmap {name} {{\n\t\ttype {ty} : ipv4_addr . inet_service"
    );
    if !elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(",\n\t\t\t"));
    }
    out.push_str("\t}\n");
}

/// The `nft -f` script that (re)creates table `ip <table>` redirecting each frontend's
/// traffic to its listener at `target:<port>`. `listeners` pairs frontends with the local
/// port of their listener; the first frontend (in the given order) keeps a key claimed twice.
pub fn ruleset(
    table: &str,
    node: &str,
    node_ips: &[String],
    target: Ipv4Addr,
    listeners: &[(&Frontend, u16)],
) -> String {
    let mut ips: BTreeMap<(Ipv4Addr, &str, u16), u16> = BTreeMap::new();
    let mut nodeports: BTreeMap<(&str, u16), u16> = BTreeMap::new();
    for (f, local) in listeners {
        for ip in &f.ips {
            ips.entry((*ip, f.proto.nft(), f.port)).or_insert(*local);
        }
        if let Some(np) = f.node_port {
            nodeports.entry((f.proto.nft(), np)).or_insert(*local);
        }
    }
    let node_ips = ipv4s(
        &node_ips
            .iter()
            .map(|s| Value::String(s.clone()))
            .collect::<Vec<_>>(),
    );
    let mut out = format!("table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n");
    if !node.is_empty()
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        let _ = writeln!(
            out,
            "\tcomment \"capstan userspace service proxy of node {node}\""
        );
    }
    out.push_str("\tset nodeport-ips {\n\t\ttype ipv4_addr\n");
    if !node_ips.is_empty() {
        let list: Vec<String> = node_ips.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", list.join(", "));
    }
    out.push_str("\t}\n");
    let svc: Vec<String> = ips
        .iter()
        .map(|((ip, p, port), l)| format!("{ip} . {p} . {port} : {target} . {l}"))
        .collect();
    let np: Vec<String> = nodeports
        .iter()
        .map(|((p, port), l)| format!("{p} . {port} : {target} . {l}"))
        .collect();
    write_map(
        &mut out,
        "service-ips",
        "ipv4_addr . inet_proto . inet_service",
        &svc,
    );
    write_map(
        &mut out,
        "service-nodeports",
        "inet_proto . inet_service",
        &np,
    );
    out.push_str(
        "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n\
         \tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n\
         \tchain services {\n\
         \t\tdnat ip to ip daddr . meta l4proto . th dport map @service-ips\n\
         \t\tip daddr @nodeport-ips dnat ip to meta l4proto . th dport map @service-nodeports\n\
         \t}\n}\n",
    );
    out
}

#[cfg(test)]
mod tests;
