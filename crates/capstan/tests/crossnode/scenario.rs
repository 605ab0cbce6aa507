//! The cross-node scenario shared by `tests/crossnode.rs` (node 2 on the host's link: host-gateway
//! routes) and `tests/crossnode_vxlan.rs` (node 2 behind a router namespace: VXLAN). See those
//! files for what is checked.

use crate::common::{eventually, Agent, Server};
use serde_json::Value;
use std::io::Read;
use std::process::Command;

const NODE1: &str = "cx-node1";
const NODE2: &str = "cx-node2";
const NS: &str = "crossnode-e2e";

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn must(args: &[&str]) {
    let (ok, out) = run(args);
    assert!(ok, "{args:?}: {out}");
}

/// How node 2's namespace is attached to the host.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Topology {
    /// A veth /30 between the host and node 2 (one L2 segment).
    Link,
    /// Host ↔ a router namespace ↔ node 2, two /30s: node 2 is not on a connected subnet.
    Routed,
}

/// The namespaces, veth pairs and nftables tables this test makes, removed on drop (declared
/// before the server and agent, so it drops after them).
struct Net {
    ns: String,
    router: Option<String>,
    host_veth: String,
    tables: Vec<String>,
    host_ip: String,
    node_ip: String,
}

/// A veth pair `a` (in `a_ns`, else the host) ↔ `b` (in `b_ns`), addressed and up.
fn veth(a: &str, a_ns: Option<&str>, a_ip: &str, b: &str, b_ns: &str, b_ip: &str) {
    must(&["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
    if let Some(ns) = a_ns {
        must(&["ip", "link", "set", a, "netns", ns]);
    }
    must(&["ip", "link", "set", b, "netns", b_ns]);
    let on_a: Vec<&str> = match a_ns {
        Some(ns) => vec!["ip", "-n", ns],
        None => vec!["ip"],
    };
    must(&[&on_a[..], &["addr", "add", a_ip, "dev", a]].concat());
    must(&[&on_a[..], &["link", "set", a, "up"]].concat());
    must(&["ip", "-n", b_ns, "addr", "add", b_ip, "dev", b]);
    must(&["ip", "-n", b_ns, "link", "set", b, "up"]);
}

impl Net {
    fn create(topology: Topology) -> Net {
        let pid = std::process::id();
        let x = pid % 250;
        let short = pid % 100_000;
        let (host_ip, node_ip) = match topology {
            Topology::Link => (format!("10.250.{x}.1"), format!("10.250.{x}.2")),
            Topology::Routed => (format!("10.251.{x}.1"), format!("10.251.{x}.6")),
        };
        let net = Net {
            ns: format!("cstx{pid}"),
            router: (topology == Topology::Routed).then(|| format!("cstr{pid}")),
            host_veth: format!("cxh{short}"),
            tables: vec![table(), format!("{}-net", table())],
            host_ip,
            node_ip,
        };
        must(&["ip", "netns", "add", &net.ns]);
        must(&["ip", "-n", &net.ns, "link", "set", "lo", "up"]);
        let host_addr = format!("{}/30", net.host_ip);
        let node_addr = format!("{}/30", net.node_ip);
        let node_veth = format!("cxn{short}");
        let Some(router) = &net.router else {
            veth(
                &net.host_veth,
                None,
                &host_addr,
                &node_veth,
                &net.ns,
                &node_addr,
            );
            return net;
        };
        must(&["ip", "netns", "add", router]);
        must(&["ip", "-n", router, "link", "set", "lo", "up"]);
        let (r1, r2) = (format!("10.251.{x}.2"), format!("10.251.{x}.5"));
        let r1_veth = format!("cxr{short}");
        veth(
            &net.host_veth,
            None,
            &host_addr,
            &r1_veth,
            router,
            &format!("{r1}/30"),
        );
        let r2_veth = format!("cxq{short}");
        veth(
            &r2_veth,
            Some(router),
            &format!("{r2}/30"),
            &node_veth,
            &net.ns,
            &node_addr,
        );
        must(&[
            "ip",
            "netns",
            "exec",
            router,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // Only the two test /30s are routed, through the router namespace.
        must(&[
            "ip",
            "route",
            "add",
            &format!("10.251.{x}.4/30"),
            "via",
            &r1,
        ]);
        let host_net = format!("10.251.{x}.0/30");
        must(&["ip", "-n", &net.ns, "route", "add", &host_net, "via", &r2]);
        net
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The veths' routes go with them; the namespaces take their bridges, tables, routes.
        let _ = run(&["ip", "link", "del", &self.host_veth]);
        let _ = run(&["ip", "link", "del", &vxlan_dev(&common_bridge())]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
        if let Some(r) = &self.router {
            let _ = run(&["ip", "netns", "del", r]);
        }
        for t in &self.tables {
            let _ = run(&["nft", "delete", "table", "ip", t]);
        }
    }
}

fn common_bridge() -> String {
    crate::common::cni_bridge()
}

/// The agent's VXLAN device for pods on `bridge` (`podnet::routes::vxlan_device`).
fn vxlan_dev(bridge: &str) -> String {
    format!("{}-vx", bridge.chars().take(12).collect::<String>())
}

fn table() -> String {
    format!("cstx{}", std::process::id() % 100_000)
}

fn host_table_exists(t: &str) -> bool {
    run(&["nft", "list", "table", "ip", t]).0
}

fn web(name: &str, node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin && echo $POD > /www/index.html
      printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip
      chmod +x /www/cgi-bin/ip
      exec httpd -f -p 8080 -h /www
    env:
    - name: POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: NodePort
  selector: {{app: {name}}}
  ports:
  - {{port: 80, targetPort: 8080, protocol: TCP}}
"#
    )
}

fn internal_ip(s: &Server, node: &str) -> String {
    let n: Value =
        serde_json::from_str(&s.kubectl(&["get", "node", node, "-o", "json"]).ok()).unwrap();
    n["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap()
        .to_string()
}

fn node_port(s: &Server, svc: &str) -> u16 {
    s.kubectl(&[
        "get",
        "svc",
        "-n",
        NS,
        svc,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ])
    .ok()
    .trim()
    .parse()
    .unwrap_or_else(|e| panic!("nodePort of {svc}: {e}"))
}

fn pod_cidr(s: &Server, node: &str) -> String {
    s.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"])
        .ok()
        .trim()
        .to_string()
}

/// The last line of an HTTP/1.0 GET of `path` at `host:port` from `pod` (nc in the pod).
/// httpd listens dual-stack: its CGI's REMOTE_ADDR is `[::ffff:10.1.2.3]`.
fn get(s: &Server, pod: &str, host: &str, port: u16, path: &str) -> String {
    let script = format!(
        "printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} 2>&1 | tail -n 1"
    );
    let out = s.kubectl(&["exec", "-n", NS, pod, "--", "sh", "-c", &script]);
    let line = out.stdout.trim();
    line.strip_prefix("[::ffff:")
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or(line)
        .to_string()
}

/// The whole scenario on `topology`.
pub fn cross_node_traffic(topology: Topology) {
    if !crate::common::agent_prerequisites(&["nft", "ip", "curl", "bridge"]) {
        return;
    }
    let net = Net::create(topology);
    let t = table();
    let s = Server::start_with_agent_bind(
        NODE1,
        "0.0.0.0",
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &t,
            "--node-ip",
            &net.host_ip,
        ],
    );
    s.import_builtin_images();
    let url = format!("https://{}:{}", net.host_ip, s.port);
    let mut a = Agent::start_in_netns(&s, &net.ns, &url, NODE2);
    a.import_builtin_images();
    s.wait_nodes_ready(2);

    // Each node is reached at its address on the test link: node 2's found by the agent
    // itself (its source address towards the server), node 1's from --node-ip.
    assert_eq!(internal_ip(&s, NODE1), net.host_ip);
    assert_eq!(internal_ip(&s, NODE2), net.node_ip, "{}", a.log());
    let (cidr1, cidr2) = (pod_cidr(&s, NODE1), pod_cidr(&s, NODE2));
    assert_ne!(cidr1, cidr2);

    // Routes both ways, tagged as the agent's: host-gateway on one link, else through the
    // VXLAN devices (each node's MAC published on its Node).
    let (hop1, hop2) = match topology {
        Topology::Link => (
            format!("via {} ", net.host_ip),
            format!("via {} ", net.node_ip),
        ),
        Topology::Routed => {
            let base = |c: &str| c.split('/').next().unwrap().to_string();
            (
                format!(
                    "via {} dev {} ",
                    base(&cidr1),
                    vxlan_dev(&crate::common::agent_bridge())
                ),
                format!("via {} dev {} ", base(&cidr2), vxlan_dev(&common_bridge())),
            )
        }
    };
    eventually(30, || {
        let (_, host) = run(&["ip", "-4", "route", "show", &cidr2]);
        (host.contains(&hop2) && host.contains("proto 143")).then_some(())
    });
    eventually(30, || {
        let (_, other) = run(&["ip", "-n", &net.ns, "-4", "route", "show", &cidr1]);
        (other.contains(&hop1) && other.contains("proto 143")).then_some(())
    });
    let macs = s
        .kubectl(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.annotations.capstan\.io/vxlan-mac}{"\n"}{end}"#,
        ])
        .ok();
    let published = macs.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        published,
        if topology == Topology::Link { 0 } else { 2 },
        "{macs}"
    );
    // Masquerade tables on both nodes (node 2's in its namespace, by the default name).
    assert!(host_table_exists(&format!("{t}-net")));
    assert!(
        run(&[
            "ip",
            "netns",
            "exec",
            &net.ns,
            "nft",
            "list",
            "table",
            "ip",
            "capstan-net"
        ])
        .0
    );

    s.kubectl(&["create", "namespace", NS]).ok();
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &web("web1", NODE1))
        .ok();
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &web("web2", NODE2))
        .ok();
    let ip_of = |pod: &str| -> String {
        eventually(120, || {
            let out = s
                .kubectl(&["get", "pod", "-n", NS, pod, "-o", "json"])
                .stdout;
            let p: Value = serde_json::from_str(&out).ok()?;
            let running = p["status"]["phase"] == "Running"
                && p["status"]["containerStatuses"][0]["ready"] == true;
            running
                .then(|| p["status"]["podIP"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let (ip1, ip2) = (ip_of("web1"), ip_of("web2"));
    let inside = |ip: &str, cidr: &str| {
        let prefix = cidr.rsplit_once('.').unwrap().0;
        ip.starts_with(&format!("{prefix}."))
    };
    assert!(inside(&ip1, &cidr1), "{ip1} in {cidr1}");
    assert!(inside(&ip2, &cidr2), "{ip2} in {cidr2}");

    // Pod to pod across nodes by pod IP, both ways, the source kept.
    assert_eq!(get(&s, "web1", &ip2, 8080, "/"), "web2", "{}", a.log());
    assert_eq!(get(&s, "web2", &ip1, 8080, "/"), "web1");
    assert_eq!(get(&s, "web1", &ip2, 8080, "/cgi-bin/ip"), ip1);
    assert_eq!(get(&s, "web2", &ip1, 8080, "/cgi-bin/ip"), ip2);

    // Pod to a ClusterIP service whose only backend is on the other node, both ways.
    let vip = |svc: &str| -> String {
        s.kubectl(&[
            "get",
            "svc",
            "-n",
            NS,
            svc,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .ok()
        .trim()
        .to_string()
    };
    let (vip1, vip2) = (vip("web1"), vip("web2"));
    eventually(30, || {
        (get(&s, "web2", &vip1, 80, "/") == "web1").then_some(())
    });
    eventually(30, || {
        (get(&s, "web1", &vip2, 80, "/") == "web2").then_some(())
    });
    assert_eq!(get(&s, "web2", &vip1, 80, "/cgi-bin/ip"), ip2);
    assert_eq!(get(&s, "web1", &vip2, 80, "/cgi-bin/ip"), ip1);

    // NodePorts: web1's (backend on node 1) from node 2's namespace at node 1's address and at
    // node 2's own (node 2's proxy forwards to node 1), and from the host at node 2's address
    // (in at node 2, out to node 1: only masquerade brings the reply back through node 2);
    // web2's (backend on node 2) from the host at node 2's address.
    let np1 = node_port(&s, "web1");
    let np2 = node_port(&s, "web2");
    let in_node2 = |url: &str| {
        run(&["ip", "netns", "exec", &net.ns, "curl", "-s", "-m", "3", url])
            .1
            .trim()
            .to_string()
    };
    let on_host = |url: &str| run(&["curl", "-s", "-m", "3", url]).1.trim().to_string();
    let (n1, n2) = (&net.host_ip, &net.node_ip);
    for (what, url, from_host, want) in [
        (
            "node 2 → node 1's NodePort",
            format!("http://{n1}:{np1}/"),
            false,
            "web1",
        ),
        (
            "node 2 → its own NodePort, backend on node 1",
            format!("http://{n2}:{np1}/"),
            false,
            "web1",
        ),
        (
            "host → node 2's NodePort, backend on node 1",
            format!("http://{n2}:{np1}/"),
            true,
            "web1",
        ),
        (
            "host → node 2's NodePort, backend on node 2",
            format!("http://{n2}:{np2}/"),
            true,
            "web2",
        ),
    ] {
        let mut got = String::new();
        for _ in 0..30 {
            got = if from_host {
                on_host(&url)
            } else {
                in_node2(&url)
            };
            if got == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        assert_eq!(got, want, "{what}: {url}\n{}", a.log());
        println!("{what}: {url} → {got}");
    }
    // Forwarded by node 2 to node 1, the backend sees node 2's address towards node 1 (its
    // link address, or its VXLAN device's: the podCIDR's base), not the host's.
    let seen = on_host(&format!("http://{n2}:{np1}/cgi-bin/ip"));
    let seen = seen
        .strip_prefix("[::ffff:")
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or(&seen);
    let node2_src = match topology {
        Topology::Link => net.node_ip.clone(),
        Topology::Routed => cidr2.split('/').next().unwrap().to_string(),
    };
    assert_eq!(
        seen, node2_src,
        "host → node 2 → node 1 masqueraded to node 2"
    );
    println!("host → {n2}:{np1} → web1 saw the client as {seen}");

    // The API server's advertised address (--node-ip) behind the kubernetes Service is
    // reachable from node 2's pod.
    let eps = s
        .kubectl(&[
            "get",
            "endpoints",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}",
        ])
        .ok();
    assert_eq!(eps.trim(), net.host_ip);
    let kube = s
        .kubectl(&[
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .ok();
    let probe = format!(
        "printf x | nc -w 3 {} 443 >/dev/null 2>&1; echo rc=$?",
        kube.trim()
    );
    let out = s.kubectl(&["exec", "-n", NS, "web2", "--", "sh", "-c", &probe]);
    assert_eq!(out.stdout.trim(), "rc=0", "{}", out.stderr);

    // Leaving the cluster CIDR (to node 1's address), node 2's pod is masqueraded to node 2's.
    let listener = std::net::TcpListener::bind((net.host_ip.as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let accept = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((mut c, peer)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                    let _ = c.read(&mut [0u8; 64]);
                    return Some(peer.ip().to_string());
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(_) => return None,
            }
        }
    });
    let _ = get(&s, "web2", &net.host_ip, port, "/");
    assert_eq!(accept.join().unwrap(), Some(net.node_ip.clone()));

    // Node 2's clean stop removes its routes and tables (its namespace outlives it).
    a.remove_pods();
    assert!(a.terminate().is_some_and(|st| st.success()), "{}", a.log());
    let (_, routes) = run(&["ip", "-n", &net.ns, "-4", "route", "show", "proto", "143"]);
    assert_eq!(routes.trim(), "", "routes left in the namespace");
    let node2_vx = vxlan_dev(&crate::common::agent_bridge());
    assert!(
        !run(&["ip", "-n", &net.ns, "link", "show", &node2_vx]).0,
        "VXLAN device left in the namespace"
    );
    for table in ["capstan", "capstan-net"] {
        assert!(
            !run(&["ip", "netns", "exec", &net.ns, "nft", "list", "table", "ip", table]).0,
            "table {table} left in the namespace"
        );
    }
    // A deleted Node's route goes from node 1.
    s.kubectl(&["delete", "node", NODE2]).ok();
    eventually(30, || {
        let (_, host) = run(&["ip", "-4", "route", "show", &cidr2]);
        host.trim().is_empty().then_some(())
    });
    drop(a);
    let stopping = std::time::Instant::now();
    drop(s);
    println!("node 1 stopped in {:?}", stopping.elapsed());
    assert!(!host_table_exists(&t), "proxy table left");
    assert!(
        !host_table_exists(&format!("{t}-net")),
        "masquerade table left"
    );
    assert!(
        !run(&["ip", "link", "show", &vxlan_dev(&common_bridge())]).0,
        "VXLAN device left on the host"
    );
}
