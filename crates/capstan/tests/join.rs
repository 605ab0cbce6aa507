//! A second node joins: `capstan server` with its own agent, then `capstan agent` on the same
//! machine (its own data dir, containerd and kubelet port) with the server's join token. Driven
//! with the real kubectl: both nodes Ready with their own podCIDRs and roles, a pod bound to the
//! second node runs there (logs and exec go through that node's kubelet), a pod on the first
//! node reaches it by pod IP, SIGTERM stops the agent and its containerd; bad tokens are
//! refused before anything starts. The pod scenario needs root and containerd (NOTICE and skip
//! otherwise); the token checks run anywhere.

mod common;

use common::{eventually, Agent, Server};
use serde_json::Value;
use std::time::Duration;

const NODE1: &str = "capstan-join-1";
const NODE2: &str = "capstan-join-2";

fn pod(s: &Server, name: &str) -> Value {
    serde_json::from_str(&s.kubectl(&["get", "pod", name, "-o", "json"]).ok()).unwrap()
}

fn running(s: &Server, name: &str) -> Value {
    let mut last = Value::Null;
    let found = (0..300).find_map(|_| {
        last = pod(s, name);
        if last["status"]["phase"] == "Running"
            && last["status"]["containerStatuses"][0]["ready"] == true
        {
            return Some(last.clone());
        }
        std::thread::sleep(Duration::from_millis(200));
        None
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} not running:\n{}\nevents:\n{}",
            serde_json::to_string_pretty(&last["status"]).unwrap(),
            s.kubectl(&["get", "events"]).stdout
        )
    })
}

/// "10.42.1.0/24" contains "10.42.1.7" (the /24s the agent hands out).
fn in_cidr24(ip: &str, cidr: &str) -> bool {
    let net = cidr.trim_end_matches("0/24");
    cidr.ends_with(".0/24") && ip.starts_with(net) && ip.len() > net.len()
}

#[test]
fn second_node_joins_runs_pods_and_serves_logs_and_exec() {
    if !common::agent_prerequisites(&[]) {
        return;
    }
    let s = Server::start_with_agent(NODE1);
    s.import_builtin_images();
    // Declared after the server: dropped first (its pods deleted while the server still runs).
    let mut agent = Agent::start(&s, NODE2);
    agent.import_builtin_images();
    let tls = agent.dir.path().join("tls");
    for f in [
        "ca.crt",
        "client-node.crt",
        "client-node.key",
        "kubelet.crt",
        "kubelet.key",
    ] {
        assert!(tls.join(f).exists(), "agent lacks tls/{f}");
    }
    assert!(
        !tls.join("ca.key").exists(),
        "the agent must not get the CA key"
    );

    // Both nodes Ready, different podCIDRs, control-plane only for the server's node.
    let wide = eventually(60, || {
        let w = s.kubectl(&["get", "nodes", "-o", "wide"]).ok();
        let ready = |n: &str| {
            w.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&n) && f.get(1) == Some(&"Ready")
            })
        };
        (ready(NODE1) && ready(NODE2)).then_some(w)
    });
    let role = |n: &str| {
        wide.lines()
            .find(|l| l.starts_with(n))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(role(NODE1), "control-plane", "{wide}");
    assert_eq!(role(NODE2), "<none>", "{wide}");
    let cidr = |n: &str| {
        s.kubectl(&["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"])
            .ok()
            .trim()
            .to_string()
    };
    let (cidr1, cidr2) = (cidr(NODE1), cidr(NODE2));
    assert!(
        !cidr1.is_empty() && !cidr2.is_empty() && cidr1 != cidr2,
        "{cidr1} {cidr2}"
    );
    let endpoint = s
        .kubectl(&[
            "get",
            "node",
            NODE2,
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
        ])
        .ok();
    assert_eq!(endpoint.trim(), agent.kubelet_port.to_string());

    // A web server on the second node, a client on the first.
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  nodeName: {NODE2}
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && echo web-started && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: {NODE1}
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
"#
        ),
    )
    .ok();
    let web = running(&s, "web");
    let client = running(&s, "client");
    let web_ip = web["status"]["podIP"].as_str().unwrap().to_string();
    let client_ip = client["status"]["podIP"].as_str().unwrap().to_string();
    assert!(in_cidr24(&web_ip, &cidr2), "web {web_ip} not in {cidr2}");
    assert!(
        in_cidr24(&client_ip, &cidr1),
        "client {client_ip} not in {cidr1}"
    );
    assert_eq!(web["status"]["hostIP"], client["status"]["hostIP"]);
    assert!(
        !agent.node_containers().is_empty(),
        "the web pod runs in the agent's containerd"
    );

    // logs and exec go through the second node's kubelet.
    eventually(20, || {
        s.kubectl(&["logs", "web"])
            .stdout
            .contains("web-started")
            .then_some(())
    });
    let page = s
        .kubectl(&["exec", "web", "--", "cat", "/www/index.html"])
        .ok();
    assert_eq!(page.trim(), "hello-from-web");

    // Pod-to-pod across the nodes (all on this host's capstan0 bridge). No `wget -T`: the
    // static busybox segfaults with it.
    let url = format!("http://{web_ip}:8080/index.html");
    let mut last = String::new();
    let got = (0..15).find_map(|_| {
        let o = s.kubectl(&["exec", "client", "--", "wget", "-qO-", &url]);
        if o.code == 0 {
            return Some(o.stdout);
        }
        last = format!("{}{}", o.stdout, o.stderr);
        std::thread::sleep(Duration::from_secs(1));
        None
    });
    let got = got.unwrap_or_else(|| {
        let routes = s.kubectl(&["exec", "client", "--", "ip", "route"]).stdout;
        let web_routes = s.kubectl(&["exec", "web", "--", "ip", "route"]).stdout;
        panic!("client cannot reach {url}: {last}\nclient routes:\n{routes}\nweb routes:\n{web_routes}")
    });
    assert_eq!(got.trim(), "hello-from-web");

    // SIGTERM stops the agent and the containerd it started.
    agent.remove_pods();
    let containerd = common::containerd_pid(agent.dir.path()).expect("agent's containerd runs");
    let status = agent.terminate().expect("agent stopped on SIGTERM");
    assert!(status.success(), "agent exit status {status}");
    eventually(10, || {
        (!std::path::Path::new(&format!("/proc/{containerd}")).exists()
            || common::containerd_pid(agent.dir.path()).is_none())
        .then_some(())
    });
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
}

#[test]
fn bad_tokens_are_refused_before_anything_starts() {
    // No root needed: nothing starts on the node.
    let s = Server::start();
    let good = std::fs::read_to_string(s.dir.path().join("token")).unwrap();
    let good = good.trim();
    let (head, secret) = good
        .split_once("::server:")
        .expect("K10<hash>::server:<secret>");
    assert!(head.starts_with("K10") && head.len() == 67, "{good}");
    let cases = [
        (
            format!("{head}::server:wrong-secret"),
            "the server refused the join token (401 Unauthorized)",
        ),
        (
            format!("K10{}::server:{secret}", "0".repeat(64)),
            "does not match the join token's CA hash",
        ),
        (secret.to_string(), "the join token carries no CA hash"),
        (
            "K10abc::server:x".to_string(),
            "the join token's CA hash is not a sha256 in hex",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (token, want)) in cases.iter().enumerate() {
        let token_file = dir.path().join(format!("token{i}"));
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let data = dir.path().join(format!("data{i}"));
        let out = Agent::command(
            &s,
            "capstan-bad",
            &data,
            common::free_port(),
            Some(&token_file),
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{token}: agent succeeded");
        assert!(
            stderr.contains(want),
            "{token}: stderr lacks {want:?}:\n{stderr}"
        );
        assert!(
            !data.join("containerd").exists() && !data.join("tls/client-node.key").exists(),
            "{token}: the agent went on"
        );
    }
    // The server never saw a node.
    let nodes = s.kubectl(&["get", "nodes", "-o", "name"]).ok();
    assert!(nodes.trim().is_empty(), "{nodes}");

    // The endpoint itself: no token or a wrong one → 401 Status; the token → credentials.
    let url = format!("{}/capstan/v1/node-credentials", s.url());
    let curl = |auth: Option<&str>| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "-w", "\n%{http_code}", "--cacert"])
            .arg(s.dir.path().join("tls/ca.crt"))
            .args([
                "-X",
                "POST",
                "-d",
                r#"{"nodeName":"n9","addresses":["127.0.0.1"]}"#,
            ]);
        if let Some(a) = auth {
            c.args(["-H", &format!("Authorization: {a}")]);
        }
        let out = c.arg(&url).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        let body = format!("{body}{}", String::from_utf8_lossy(&out.stderr));
        (code.to_string(), body)
    };
    for auth in [None, Some("Bearer nope".to_string())] {
        let (code, body) = curl(auth.as_deref());
        assert_eq!(code, "401", "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["reason"], "Unauthorized");
    }
    let (code, body) = curl(Some(&format!("Bearer {good}")));
    assert_eq!(code, "200", "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "NodeCredentials");
    assert!(v["clientCert"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert_eq!(v["clusterCIDR"], "10.42.0.0/16");
    // The node credential authenticates as system:node:n9 in group system:nodes.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("c.crt"), v["clientCert"].as_str().unwrap()).unwrap();
    std::fs::write(d.path().join("c.key"), v["clientKey"].as_str().unwrap()).unwrap();
    let review = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(s.dir.path().join("tls/ca.crt"))
        .arg("--cert")
        .arg(d.path().join("c.crt"))
        .arg("--key")
        .arg(d.path().join("c.key"))
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#)
        .arg(format!(
            "{}/apis/authentication.k8s.io/v1/selfsubjectreviews",
            s.url()
        ))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&review.stdout).unwrap_or(Value::Null);
    assert_eq!(
        r["status"]["userInfo"]["username"],
        "system:node:n9",
        "{}",
        String::from_utf8_lossy(&review.stdout)
    );
    assert!(r["status"]["userInfo"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "system:nodes"));
}
