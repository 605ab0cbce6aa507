//! Other clients and failure: the Python `kubernetes` client, and a kill -9 of the server in
//! the middle of a stream of creates (every acknowledged create must survive the restart).

mod common;

use common::{Backend, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn python_has_kubernetes() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import kubernetes"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn python_client_lists_creates_watches() {
    if !python_has_kubernetes() {
        eprintln!("NOTICE: python3-kubernetes not installed; skipped");
        return;
    }
    let s = Server::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_test.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg("pyclient")
        .env("KUBECONFIG", &s.kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
}

fn crash_test(backend: Backend) {
    let Some(mut s) = Server::try_start(backend) else {
        return;
    };
    s.kubectl(&["create", "namespace", "crash"]).ok();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/create_loop.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args([
            "127.0.0.1",
            &s.port.to_string(),
            s.dir.path().join("tls").to_str().unwrap(),
            "crash",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        match lines.next() {
            Some(Ok(l)) => acked.push(l),
            _ => break,
        }
    }
    // kill -9 while the client keeps creating.
    s.kill9_and_restart();
    for l in lines.map_while(Result::ok) {
        acked.push(l);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(acked.len() >= 300, "client acked only {}", acked.len());
    let out = s
        .kubectl(&["get", "configmaps", "-n", "crash", "-o", "name"])
        .ok();
    let have: std::collections::HashSet<&str> = out
        .lines()
        .map(|l| l.trim_start_matches("configmap/"))
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|n| !have.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged creates lost after kill -9, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn kill9_keeps_acknowledged_creates_embedded() {
    crash_test(Backend::Embedded);
}

#[test]
fn kill9_keeps_acknowledged_creates_etcd() {
    crash_test(Backend::Etcd);
}

#[test]
fn restart_reuses_credentials_and_data() {
    let mut s = Server::start();
    let before = std::fs::read(s.dir.path().join("tls/ca.crt")).unwrap();
    s.kubectl(&["create", "configmap", "persist", "--from-literal=a=1"])
        .ok();
    s.kill9_and_restart();
    let after = std::fs::read(s.dir.path().join("tls/ca.crt")).unwrap();
    assert_eq!(before, after, "CA reused");
    let v = s
        .kubectl(&["get", "configmap", "persist", "-o", "jsonpath={.data.a}"])
        .ok();
    assert_eq!(v, "1");
    // Health endpoints answer without credentials, as kube-apiserver's do.
    for path in ["/livez", "/readyz", "/healthz", "/version"] {
        let out = Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{}{path}", s.url()),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{path}");
    }
    let (code, body) = s.curl(&[&format!("{}/version", s.url())]);
    assert_eq!(code, 200);
    assert!(body.contains("\"minor\":\"32\""), "{body}");
}
