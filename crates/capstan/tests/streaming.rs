//! Streaming through the API server to the node agent's kubelet server and containerd:
//! `kubectl logs` (plain, --tail, --timestamps, -f, -c, --previous), `kubectl exec` (stdout,
//! stderr, exit code, stdin; kubectl 1.32 falling back from websocket v5 to SPDY, kubectl
//! 1.28 SPDY only), the Python client's websocket v4 exec, `kubectl port-forward`,
//! `kubectl cp` both ways, and the errors kube-apiserver gives.
//!
//! The pods are real: bound to the agent's node, run by its sync loop through CRI. Needs root
//! and containerd (NOTICE otherwise).

mod common;

use common::{eventually, Server};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODE: &str = "stream-node";

/// Create a pod bound to the node (`spec.containers` given as JSON); waits until `ready`.
fn run_pod(s: &Server, name: &str, node: &str, containers: Value, restart: &str) {
    let mut spec = json!({"containers": containers, "restartPolicy": restart, "terminationGracePeriodSeconds": 1});
    // Containers that mount `state` get an emptyDir for it.
    if spec.to_string().contains(r#""name":"state""#) {
        spec["volumes"] = json!([{"name": "state", "emptyDir": {}}]);
    }
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    } else {
        // No scheduler serves this name: the pod stays unbound.
        spec["schedulerName"] = json!("no-such-scheduler");
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    s.kubectl_stdin(&["create", "-f", "-"], &pod.to_string())
        .ok();
}

/// Wait until the pod's status satisfies `f`.
fn wait_pod(s: &Server, name: &str, f: impl Fn(&Value) -> bool) -> Value {
    eventually(60, || {
        let o = s.kubectl(&["get", "pod", name, "-o", "json"]);
        serde_json::from_str::<Value>(&o.stdout)
            .ok()
            .filter(|p| f(p))
    })
}

fn running(p: &Value, container: &str) -> bool {
    p["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|c| c["name"] == container && c["state"]["running"].is_object())
        })
}

/// `kubectl logs ARGS` once its output satisfies `ok` (logs are written asynchronously).
fn logs_until(s: &Server, args: &[&str], ok: impl Fn(&str) -> bool) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let o = s.kubectl(&all);
        if o.code == 0 && ok(&o.stdout) {
            return o.stdout;
        }
        last = format!(
            "code {} stdout {:?} stderr {:?}",
            o.code, o.stdout, o.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("kubectl {all:?}: {last}\nserver log:\n{}", s.log());
}

#[test]
fn logs_exec_port_forward_and_cp_through_the_kubelet() {
    if !common::agent_prerequisites(&["curl"]) {
        return;
    }
    let s = Server::start_with_agent(NODE);
    let node: Value = eventually(60, || {
        let o = s.kubectl(&["get", "node", NODE, "-o", "json"]);
        (o.code == 0)
            .then(|| serde_json::from_str::<Value>(&o.stdout).ok())
            .flatten()
            .filter(|n: &Value| {
                n["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
    });
    // The node advertises the kubelet port it was given, and the kubelet demands a client
    // certificate of the cluster CA.
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap();
    assert_eq!(Some(port as u16), s.kubelet_port(), "{node}");
    let tls = s.dir.path().join("tls");
    let healthz = format!("https://127.0.0.1:{port}/healthz");
    let anon = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(tls.join("ca.crt"))
        .arg(&healthz)
        .output()
        .unwrap();
    assert!(
        !anon.status.success(),
        "kubelet served a client without a certificate"
    );
    let authed = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(tls.join("ca.crt"))
        .arg("--cert")
        .arg(tls.join("apiserver-kubelet-client.crt"))
        .arg("--key")
        .arg(tls.join("apiserver-kubelet-client.key"))
        .arg(&healthz)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&authed.stdout).trim(), "ok");

    s.import_builtin_images();
    // web: `main` runs once and exits (attempt 0), then runs again (attempt 1) with an httpd;
    // `side` has no previous run.
    run_pod(
        &s,
        "web",
        NODE,
        json!([
            {"name": "main", "image": "busybox", "imagePullPolicy": "IfNotPresent",
             "command": ["sh", "-c", "if [ ! -f /state/ran ]; then touch /state/ran; echo first-run; exit 1; fi; echo line1; echo line2; echo line3; mkdir -p /www; echo hello-from-httpd > /www/index.html; httpd -p 8080 -h /www; exec sleep 100000"],
             "volumeMounts": [{"name": "state", "mountPath": "/state"}]},
            {"name": "side", "image": "busybox", "imagePullPolicy": "IfNotPresent",
             "command": ["sh", "-c", "echo side-says-hi; exec sleep 100000"]}
        ]),
        "Always",
    );
    wait_pod(&s, "web", |p| {
        running(p, "main")
            && running(p, "side")
            && p["status"]["containerStatuses"][0]["restartCount"] == 1
    });

    // Logs.
    let three = "line1\nline2\nline3\n";
    logs_until(&s, &["web", "-c", "main"], |o| o == three);
    logs_until(&s, &["web"], |o| o == three); // kubectl defaults to the first container
    logs_until(&s, &["web", "-c", "main", "--tail=1"], |o| o == "line3\n");
    let stamped = logs_until(&s, &["web", "-c", "main", "--timestamps"], |o| {
        o.lines().count() == 3
    });
    for (line, want) in stamped.lines().zip(["line1", "line2", "line3"]) {
        let (ts, text) = line.split_once(' ').unwrap();
        assert_eq!(text, want, "{stamped}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "not a timestamp: {ts:?}"
        );
    }
    logs_until(&s, &["web", "-c", "main", "--previous"], |o| {
        o == "first-run\n"
    });
    logs_until(&s, &["web", "-c", "side"], |o| o == "side-says-hi\n");
    logs_until(&s, &["web", "-c", "main", "--limit-bytes=8"], |o| {
        o == "line1\nli"
    });
    logs_until(&s, &["web", "-c", "main", "--since=1h"], |o| o == three);
    let o = s.kubectl(&[
        "logs",
        "web",
        "-c",
        "main",
        "--since-time=2999-01-01T00:00:00Z",
    ]);
    assert_eq!(o.ok(), "");
    let err = s
        .kubectl(&["logs", "web", "-c", "side", "--previous"])
        .err();
    assert!(
        err.contains(r#"previous terminated container "side" in pod "web" not found"#),
        "{err}"
    );
    let err = s.kubectl(&["logs", "web", "-c", "nope"]).err();
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );
    let (code, body) = s.curl(&[&format!(
        "{}/api/v1/namespaces/default/pods/web/log",
        s.url()
    )]);
    assert_eq!(code, 400, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        "a container name must be specified for pod web, choose one of: [main side]"
    );
    let (code, body) = s.curl(&[&format!(
        "{}/api/v1/namespaces/default/pods/web/log?container=main&tailLines=-1",
        s.url()
    )]);
    assert_eq!(code, 422, "{body}");
    let (code, body) = s.curl(&[&format!(
        "{}/api/v1/namespaces/default/pods/ghost/log",
        s.url()
    )]);
    assert_eq!(code, 404, "{body}");

    // -f follows until the container exits.
    run_pod(
        &s,
        "ticker",
        NODE,
        json!([{"name": "t", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 1; done"]}]),
        "Never",
    );
    wait_pod(&s, "ticker", |p| running(p, "t"));
    let started = Instant::now();
    let follow = s.kubectl(&["logs", "-f", "ticker"]).ok();
    assert_eq!(follow, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "did not follow"
    );
    wait_pod(&s, "ticker", |p| p["status"]["phase"] == "Succeeded");

    // Exec: stdout, stderr and the exit code; kubectl 1.32 first offers websocket v5, gets a
    // non-101 and retries with SPDY.
    let o = s.kubectl(&[
        "exec",
        "web",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        o.code,
        3,
        "stdout {:?} stderr {:?}\n{}",
        o.stdout,
        o.stderr,
        s.log()
    );
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err\n"), "{}", o.stderr);
    let o = s.kubectl_stdin(
        &[
            "exec",
            "-i",
            "web",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "cat; echo done",
        ],
        "hello-stdin\n",
    );
    assert_eq!(o.ok(), "hello-stdin\ndone\n");
    // kubectl 1.27/1.28 speak SPDY only; 1.30 and 1.33 try websocket v5 first, as 1.32 does.
    for minor in [27, 28, 30, 33] {
        let bin = format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}");
        if !std::path::Path::new(&bin).exists() {
            eprintln!("NOTICE: {bin} missing; its exec skipped");
            continue;
        }
        let script = format!("echo kubectl-1.{minor}; exit 2");
        let args = [
            "exec",
            "web",
            "-c",
            "side",
            "--",
            "sh",
            "-c",
            script.as_str(),
        ];
        let o = s.kubectl_with(&bin, &args, None);
        let want = format!("kubectl-1.{minor}\n");
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (2, want.as_str()),
            "{}",
            o.stderr
        );
    }
    // The Python client: websocket v4.channel.k8s.io, passed through to containerd.
    if let Some(got) = python(&s, &["exec", "default", "web", "main"]) {
        assert_eq!(
            got,
            json!({"stdout": "py-out\n", "stderr": "py-err\n", "code": 4})
        );
    }
    // Exec errors as kube-apiserver gives them.
    let err = s
        .kubectl(&["exec", "web", "-c", "nope", "--", "true"])
        .err();
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );
    // kubectl refuses a completed pod itself; the API server refuses a stopped container.
    let err = s.kubectl(&["exec", "ticker", "--", "true"]).err();
    assert!(
        err.contains("cannot exec into a container in a completed pod; current phase is Succeeded"),
        "{err}"
    );
    let (code, body) = s.curl(&[
        "--http1.1",
        "-X",
        "POST",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: SPDY/3.1",
        "-H",
        "X-Stream-Protocol-Version: v4.channel.k8s.io",
        &format!(
            "{}/api/v1/namespaces/default/pods/ticker/exec?command=true&stdout=true",
            s.url()
        ),
    ]);
    assert!(
        code == 400 && body.contains(r#"container not found (\"t\")"#),
        "{code} {body}"
    );
    run_pod(
        &s,
        "unscheduled",
        "",
        json!([{"name": "c", "image": "busybox"}]),
        "Always",
    );
    let err = s.kubectl(&["exec", "unscheduled", "--", "true"]).err();
    assert!(
        err.contains("pod unscheduled does not have a host assigned"),
        "{err}"
    );

    // cp out of and into the container (tar over exec).
    let local = s.dir.path().join("hostname-copy");
    s.kubectl(&[
        "cp",
        "-c",
        "main",
        "web:/etc/hostname",
        local.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(&local).unwrap().trim(), "web");
    let upload = s.dir.path().join("upload.txt");
    std::fs::write(&upload, "uploaded through kubectl cp\n").unwrap();
    s.kubectl(&[
        "cp",
        "-c",
        "main",
        upload.to_str().unwrap(),
        "web:/tmp/upload.txt",
    ])
    .ok();
    let o = s.kubectl(&["exec", "web", "-c", "main", "--", "cat", "/tmp/upload.txt"]);
    assert_eq!(o.ok(), "uploaded through kubectl cp\n");

    // port-forward (websocket tunnelling refused → SPDY) to the pod's httpd; the Python
    // client's port-forward (websocket v4) is passed through.
    port_forward_reaches_httpd(&s, "/usr/bin/kubectl");
    for bin in [
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.28",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
    ] {
        if std::path::Path::new(bin).exists() {
            port_forward_reaches_httpd(&s, bin);
        }
    }
    if let Some(got) = python(&s, &["portforward", "default", "web", "8080"]) {
        assert_eq!(got["body"], "hello-from-httpd\n", "{got}");
    }

    // attach: the output of a running container from now on.
    run_pod(
        &s,
        "beater",
        NODE,
        json!([{"name": "b", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "while true; do echo beat; sleep 0.3; done"]}]),
        "Always",
    );
    wait_pod(&s, "beater", |p| running(p, "b"));
    let line = first_line(&s, &["attach", "beater"]);
    assert_eq!(line.as_deref(), Some("beat"), "{}", s.log());
    // A follower of an idle container that goes away: the API server drops its kubelet
    // connection at once, the kubelet stops following (no connection to its port stays open).
    let line = first_line(&s, &["logs", "-f", "web", "-c", "side"]);
    assert_eq!(line.as_deref(), Some("side-says-hi"));
    eventually(15, || {
        let o = Command::new("ss")
            .args([
                "-Htn",
                "state",
                "established",
                &format!("( sport = :{port} )"),
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .is_empty()
            .then_some(())
    });
}

/// Run tests/python/streams.py; None (with a NOTICE) without python3-kubernetes.
fn python(s: &Server, args: &[&str]) -> Option<Value> {
    let have = Command::new("/usr/bin/python3")
        .args(["-c", "import kubernetes"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!(
            "NOTICE: python3-kubernetes not installed; Python {} skipped",
            args[0]
        );
        return None;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/streams.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python {args:?}: {text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    Some(serde_json::from_str(text.trim()).unwrap())
}

/// Start kubectl ARGS, return its first stdout line (within 20 s), then kill it by PID.
fn first_line(s: &Server, args: &[&str]) -> Option<String> {
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new("/usr/bin/kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).ok();
    let _ = child.kill();
    let _ = child.wait();
    line
}

fn port_forward_reaches_httpd(s: &Server, kubectl: &str) {
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(kubectl)
        .env("KUBECONFIG", &s.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["port-forward", "pod/web", "--address", "127.0.0.1", ":8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let local = line
        .as_deref()
        .ok()
        .and_then(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string);
    let result = local.as_ref().map(|port| {
        let mut last = String::new();
        for _ in 0..3 {
            let o = Command::new("curl")
                .args([
                    "-s",
                    "-m",
                    "10",
                    &format!("http://127.0.0.1:{port}/index.html"),
                ])
                .output()
                .unwrap();
            last = String::from_utf8_lossy(&o.stdout).into_owned();
            if last.contains("hello-from-httpd") {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        last
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(body) = result else {
        panic!(
            "{kubectl} port-forward did not start: {line:?}\n{stderr}\n{}",
            s.log()
        );
    };
    assert_eq!(body, "hello-from-httpd\n", "{kubectl}: {stderr}");
}
