//! Stale UDP conntrack entries are flushed when an endpoint goes away: a host-side UDP client
//! sends from one fixed source port through a selector-less UDP service's cluster IP to a
//! responder on the node's address; its slice is switched to a second responder while the
//! first still answers. The flow's conntrack entry would keep it DNATed to the first for as
//! long as packets come; the proxy deletes it after applying the new rules, so the same flow
//! reaches the second. Needs root, containerd, nft and conntrack (NOTICE and skip otherwise).

mod common;

use common::{agent_prerequisites, eventually, Server};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

const NODE: &str = "capstan-udpct";

/// A service CIDR of this process's own, routed to `lo` as local while the test runs: a
/// packet to a cluster IP without a rule is refused on this host, never routed out of it.
fn service_cidr() -> String {
    format!("10.251.{}.0/24", std::process::id() % 250)
}

struct LocalRoute(String);

impl LocalRoute {
    fn add(cidr: &str) -> LocalRoute {
        let ok = Command::new("ip")
            .args(["route", "add", "local", cidr, "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip route add local {cidr} dev lo");
        LocalRoute(cidr.into())
    }
}

impl Drop for LocalRoute {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "local", &self.0, "dev", "lo"])
            .status();
    }
}

fn node_ip() -> Ipv4Addr {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .expect("a global IPv4 address")
}

/// A UDP responder on `ip` answering every datagram with `tag`.
fn responder(ip: Ipv4Addr, tag: &'static [u8]) -> u16 {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((_, peer)) = s.recv_from(&mut b) {
            let _ = s.send_to(tag, peer);
        }
    });
    port
}

fn slice(ip: Ipv4Addr, port: u16) -> String {
    format!(
        r#"apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-manual
  labels:
    kubernetes.io/service-name: echo
addressType: IPv4
ports:
- name: u
  port: {port}
  protocol: UDP
endpoints:
- addresses: ["{ip}"]
  conditions: {{ready: true}}
  nodeName: {NODE}
"#
    )
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  ports:
  - name: u
    port: 53
    protocol: UDP
"#;

/// One datagram on the client's flow; the answer, if one came within 200 ms.
fn ask(client: &UdpSocket) -> Option<Vec<u8>> {
    client.send(b"q").ok()?;
    let mut b = [0u8; 64];
    let n = client.recv(&mut b).ok()?;
    Some(b[..n].to_vec())
}

#[test]
fn a_udp_flow_to_a_removed_endpoint_is_rerouted() {
    if !agent_prerequisites(&["nft", "conntrack"]) {
        return;
    }
    let cidr = service_cidr();
    let _route = LocalRoute::add(&cidr);
    let table = format!("cstudpct{}", std::process::id() % 100_000);
    let s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--service-cidr",
            &cidr,
            "--proxy-nft-table",
            &table,
        ],
    );
    let ip = node_ip();
    let (a, b) = (responder(ip, b"A"), responder(ip, b"B"));
    s.kubectl_stdin(&["apply", "-f", "-"], SERVICE).ok();
    s.kubectl_stdin(&["apply", "-f", "-"], &slice(ip, a)).ok();
    let vip: Ipv4Addr = s
        .kubectl(&["get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"])
        .ok()
        .trim()
        .parse()
        .unwrap();
    // One flow: a fixed source address and port throughout.
    let client = UdpSocket::bind((ip, 0)).unwrap();
    client.connect((vip, 53)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    eventually(60, || (ask(&client)? == b"A").then_some(()));
    // The flow's entry exists, DNATed to A.
    let listed = Command::new("conntrack")
        .args(["-L", "-p", "udp", "--orig-dst", &vip.to_string()])
        .args(["--orig-port-dst", "53", "--reply-port-src", &a.to_string()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&format!("sport={a}")),
        "no conntrack entry to A: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    // A keeps answering; only the flush moves the flow to B.
    s.kubectl_stdin(&["apply", "-f", "-"], &slice(ip, b)).ok();
    eventually(20, || {
        std::thread::sleep(Duration::from_millis(50));
        (ask(&client)? == b"B").then_some(())
    });
    // And it stays there.
    for _ in 0..10 {
        assert_eq!(ask(&client).as_deref(), Some(&b"B"[..]));
    }
    drop(s);
    let gone = !Command::new("nft")
        .args(["list", "table", "ip", &table])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(gone, "table {table} left behind");
}
