//! The nftables service proxy against real containers: three busybox httpd pods (`kubectl exec` → nc) behind a
//! selector-less NodePort Service with a hand-written EndpointSlice; the cluster IP from a
//! client pod and from the host (output hook) balances over all three, the NodePort answers
//! on the node's address, a service left without endpoints refuses connections at once, and
//! the proxy's table is gone once the server stopped. Needs root, containerd and nft (NOTICE
//! and skip otherwise).

mod common;

use common::{eventually, Server};

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

const NODE: &str = "capstan-proxy";
const NS: &str = "proxy-e2e";

fn table() -> String {
    format!("cstproxy{}", std::process::id() % 100_000)
}

fn table_exists(t: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", t])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn backend(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www && echo $POD > /www/index.html && exec httpd -f -p 8080 -h /www"]
    env:
    - name: POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
"#
    )
}

fn slice(ips: &[String]) -> String {
    common::web::manual_slice(NODE, ips)
}

/// `curl` from the host: (exit code, body, seconds taken).
fn curl(url: &str) -> (i32, String, f64) {
    let start = Instant::now();
    let o = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .expect("curl runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
        start.elapsed().as_secs_f64(),
    )
}

#[test]
fn nftables_proxy_balances_node_ports_rejects_and_cleans_up() {
    if !common::agent_prerequisites(&["nft", "curl"]) {
        return;
    }
    let t = table();
    let s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &t,
        ],
    );
    let common::web::Web {
        ips,
        vip,
        node_port,
        node_ip,
    } = common::web::start(&s, NS, NODE, backend);
    let names = common::web::NAMES;

    // The table appears with the service in it.
    eventually(20, || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &t])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("{vip} . tcp . 80"))
            .then_some(())
    });

    // 30 requests from a client pod to the cluster IP: all answered, by all three backends.
    // busybox's static wget segfaults in these containers (NSS); nc speaks HTTP/1.0 instead.
    let get = |host: &str| format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80 2>&1");
    let script = format!(
        "for i in $(seq 30); do out=$({}) && echo \"$out\" | tail -n 1 || echo FAIL; done",
        get(&vip)
    );
    let out = s
        .kubectl(&["exec", "-n", NS, "client", "--", "sh", "-c", &script])
        .stdout;
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 30, "{out}");
    let seen: BTreeSet<&str> = answers.iter().copied().collect();
    assert_eq!(
        seen,
        names.iter().copied().collect::<BTreeSet<_>>(),
        "every request answered, by every backend: {out}"
    );

    // From the host through the output hook: the cluster IP and the NodePort on the node's IP.
    let mut host_seen = BTreeSet::new();
    for _ in 0..30 {
        let (code, body, _) = curl(&format!("http://{vip}/"));
        assert_eq!(code, 0, "host → cluster IP: {body}");
        host_seen.insert(body);
    }
    assert_eq!(host_seen.len(), 3, "{host_seen:?}");
    let mut np_seen = BTreeSet::new();
    for _ in 0..30 {
        let (code, body, _) = curl(&format!("http://{node_ip}:{node_port}/"));
        assert_eq!(code, 0, "host → NodePort {node_ip}:{node_port}: {body}");
        np_seen.insert(body);
    }
    assert_eq!(np_seen.len(), 3, "{np_seen:?}");

    // Hairpin: a backend reaching itself through the VIP.
    let out = s
        .kubectl(&["exec", "-n", NS, "web-a", "--", "sh", "-c", &script])
        .stdout;
    assert_eq!(out.lines().filter(|l| *l != "FAIL").count(), 30, "{out}");

    // No endpoints left: connections are refused at once (not a timeout).
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &slice(&[]))
        .ok();
    let (code, body, secs) = eventually(20, || {
        let r = curl(&format!("http://{vip}/"));
        (r.0 != 0).then_some(r)
    });
    assert_eq!(
        code, 7,
        "curl exit 7 (connection refused), got {code}: {body}"
    );
    assert!(secs < 2.0, "refused in {secs:.2}s");
    let (code, _, secs) = curl(&format!("http://{node_ip}:{node_port}/"));
    assert_eq!(code, 7, "NodePort refused");
    assert!(secs < 2.0, "NodePort refused in {secs:.2}s");
    let out = s.kubectl(&[
        "exec",
        "-n",
        NS,
        "client",
        "--",
        "sh",
        "-c",
        &format!("{}; echo rc=$?", get(&vip)),
    ]);
    assert!(
        out.stdout.contains("Connection refused") && out.stdout.contains("rc=1"),
        "from a pod: {}",
        out.stdout
    );

    // Endpoints back: served again.
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &slice(&ips[..1]))
        .ok();
    let body = eventually(20, || {
        let r = curl(&format!("http://{vip}/"));
        (r.0 == 0).then_some(r.1)
    });
    assert_eq!(body, "web-a");

    assert!(table_exists(&t));
    drop(s);
    assert!(
        !table_exists(&t),
        "table ip {t} left after the server stopped"
    );
}

#[test]
fn unknown_proxy_mode_is_refused_clearly() {
    let out = Command::new(common::binary())
        .args(["server", "--proxy-mode", "ipvs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown proxy mode \"ipvs\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
