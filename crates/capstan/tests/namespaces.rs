//! The namespace controller and the pod garbage collector end to end on simulated nodes,
//! driven with the real kubectl: a namespace with a Deployment, a pod, a ConfigMap, a Secret
//! and a ConfigMap held by a custom finalizer is Terminating after `kubectl delete ns
//! --wait=false`, refuses new content, reports NamespaceContentRemaining and
//! NamespaceFinalizersRemaining once the rest is gone and disappears when the finalizer is
//! patched away; `kubectl delete ns` waits until it is gone; with `--disable-controllers` a
//! deleted namespace stays Terminating and is emptied once the controllers run. The pod GC
//! (`--terminated-pod-gc-threshold 2`) deletes the 2 oldest of 4 completed pods and, after the
//! 40 s quarantine, force-deletes the pods of a node deleted with `kubectl delete node`.

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn until(s: &Server, secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} not within {secs}s\nnamespaces:\n{}\npods:\n{}",
            s.kubectl(&["get", "ns", "-o", "yaml"]).stdout,
            s.kubectl(&["get", "pods", "-A", "-o", "wide"]).stdout,
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn condition(ns: &Value, ty: &str) -> (String, String) {
    ns["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .unwrap_or_default()
}

const CONTENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox:1.36, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  containers: [{name: c, image: busybox:1.36, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: plain}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: held, finalizers: [example.com/hold]}
data: {a: "1"}
"#;

#[test]
fn namespace_deletion_empties_reports_and_finalizes() {
    let mut s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 2, "n", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "doomed"]).ok();
    s.kubectl_stdin(&["apply", "-n", "doomed", "-f", "-"], CONTENT)
        .ok();
    let running = |ns: &str| {
        json(&s.kubectl(&["get", "pods", "-n", ns, "-o", "json"]).stdout)["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["status"]["phase"] == "Running")
                    .count()
            })
            .unwrap_or(0)
    };
    until(&s, 60, "3 pods Running", || running("doomed") == 3);

    s.kubectl(&["delete", "namespace", "doomed", "--wait=false"])
        .ok();
    let out = s.kubectl(&["get", "namespace", "doomed"]).ok();
    assert!(out.contains("Terminating"), "{out}");
    let refused = s
        .kubectl(&["create", "configmap", "late", "-n", "doomed"])
        .err();
    assert!(
        refused.contains(
            "unable to create new content in namespace doomed because it is being terminated"
        ),
        "{refused}"
    );
    // Everything but the held ConfigMap goes; the conditions say what remains and why.
    let ns = || {
        json(
            &s.kubectl(&["get", "namespace", "doomed", "-o", "json"])
                .stdout,
        )
    };
    until(&s, 60, "only the held ConfigMap remaining", || {
        let n = ns();
        condition(&n, "NamespaceContentRemaining")
            == (
                "True".into(),
                "Some resources are remaining: configmaps. has 1 resource instances".into(),
            )
            && condition(&n, "NamespaceFinalizersRemaining")
                == (
                    "True".into(),
                    "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into(),
                )
    });
    let n = ns();
    assert_eq!(n["status"]["phase"], "Terminating");
    assert_eq!(
        condition(&n, "NamespaceDeletionDiscoveryFailure"),
        (
            "False".into(),
            "All resources successfully discovered".into()
        )
    );
    assert_eq!(
        condition(&n, "NamespaceDeletionContentFailure").0,
        "False",
        "{n}"
    );
    assert_eq!(n["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    let left = s
        .kubectl(&[
            "get",
            "deploy,rs,pods,secrets,configmaps",
            "-n",
            "doomed",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(left.trim(), "configmap/held", "{left}");

    s.kubectl(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .ok();
    s.kubectl(&["wait", "--for=delete", "namespace/doomed", "--timeout=60s"])
        .ok();
    s.kubectl(&["get", "namespace", "doomed"]).err();

    // kubectl delete namespace waits until it is gone.
    s.kubectl(&["create", "namespace", "quick"]).ok();
    s.kubectl(&["create", "configmap", "c", "-n", "quick"]).ok();
    let out = s
        .kubectl(&["delete", "namespace", "quick", "--timeout=60s"])
        .ok();
    assert_eq!(out.trim(), "namespace \"quick\" deleted");
    s.kubectl(&["get", "namespace", "quick"]).err();

    // Without controllers a deleted namespace stays Terminating, content and all; the
    // controller's first list picks it up once it runs.
    s.kubectl(&["create", "namespace", "later"]).ok();
    s.kubectl(&["create", "configmap", "c", "-n", "later"]).ok();
    s.restart_with(&["--disable-controllers"]);
    s.kubectl(&["delete", "namespace", "later", "--wait=false"])
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    let out = s.kubectl(&["get", "namespace", "later"]).ok();
    assert!(out.contains("Terminating"), "{out}");
    s.kubectl(&["get", "configmap", "c", "-n", "later"]).ok();
    s.restart_with(&[]);
    s.kubectl(&["wait", "--for=delete", "namespace/later", "--timeout=60s"])
        .ok();
    s.kubectl(&["get", "namespace", "later"]).err();
}

fn completed_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {{sim.capstan.io/complete-after-seconds: "1"}}
spec:
  restartPolicy: Never
  nodeSelector: {{kubernetes.io/hostname: keep-0}}
  containers: [{{name: c, image: busybox:1.36, command: ["true"]}}]
"#
    )
}

#[test]
fn podgc_threshold_and_orphans_of_deleted_nodes() {
    let s = Server::start_backend(Backend::Embedded, &["--terminated-pod-gc-threshold", "2"]);
    let _keep = Simulator::start(&s, 1, "keep", &[]);
    let _gone = Simulator::start(&s, 1, "gone", &[]);
    s.wait_nodes_ready(2);
    // Pods on the node that will be deleted first: the quarantine runs meanwhile.
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: orphan-a}
spec:
  nodeSelector: {kubernetes.io/hostname: gone-0}
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: orphan-b}
spec:
  nodeSelector: {kubernetes.io/hostname: gone-0}
  containers: [{name: c, image: busybox:1.36}]
"#,
    )
    .ok();
    let phase = |p: &str| {
        s.kubectl(&["get", "pod", p, "-o", "jsonpath={.status.phase}"])
            .stdout
    };
    until(&s, 60, "orphans Running", || {
        phase("orphan-a") == "Running" && phase("orphan-b") == "Running"
    });
    // A watch records the status the collector writes before its force delete.
    let mut watch = std::process::Command::new("/usr/bin/kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .args([
            "--cache-dir",
            s.dir.path().join("watch-cache").to_str().unwrap(),
        ])
        .args(["get", "pod", "orphan-a", "-w", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    s.kubectl(&["delete", "node", "gone-0"]).ok();
    let node_deleted = Instant::now();

    // Four pods completed one after the other; the two oldest go.
    for i in 1..=4 {
        s.kubectl_stdin(&["apply", "-f", "-"], &completed_pod(&format!("done-{i}")))
            .ok();
        std::thread::sleep(Duration::from_millis(1100));
    }
    let names = || {
        let mut v: Vec<String> = s
            .kubectl(&["get", "pods", "-o", "name"])
            .stdout
            .lines()
            .filter(|l| l.starts_with("pod/done-"))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    until(&s, 60, "the 2 oldest completed pods collected", || {
        names() == ["pod/done-3", "pod/done-4"]
    });
    for p in ["done-3", "done-4"] {
        assert_eq!(phase(p), "Succeeded");
    }

    // The orphans stay for the quarantine, then are force-deleted.
    let orphans_left = || {
        s.kubectl(&["get", "pods", "-o", "name"])
            .stdout
            .lines()
            .filter(|l| l.starts_with("pod/orphan-"))
            .count()
    };
    while node_deleted.elapsed() < Duration::from_secs(35) {
        assert_eq!(orphans_left(), 2, "orphans deleted before the quarantine");
        std::thread::sleep(Duration::from_secs(1));
    }
    until(&s, 40, "orphans force-deleted", || orphans_left() == 0);
    assert!(
        node_deleted.elapsed() >= Duration::from_secs(40),
        "deleted after {:?}",
        node_deleted.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let marked = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .find(|p| p["status"]["phase"] == "Failed")
        .unwrap_or_else(|| panic!("no Failed status seen:\n{text}"));
    let c = marked["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(c["status"], "True", "{marked}");
    assert_eq!(c["reason"], "DeletionByPodGC");
    assert_eq!(c["message"], "PodGC: node no longer exists");
}
