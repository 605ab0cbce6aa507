//! Node lifecycle end to end on simulated nodes, driven with the real kubectl: a group of
//! nodes whose agent stops (its simulator process is stopped) goes Ready=Unknown (NotReady in
//! `kubectl get nodes`) and is tainted unreachable:NoSchedule/NoExecute; its pods go not
//! Ready, then after their tolerationSeconds (set by the API server's admission flag) the
//! taint manager evicts them: ReplicaSet pods are recreated on the healthy nodes, a bare pod
//! is deleted and not recreated, a pod tolerating the taint for ever stays. A user's
//! NoExecute taint evicts at once. The agent coming back clears the taints.

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

const SIM: &[&str] = &["--sim-lease-seconds", "1"];

struct T<'a> {
    s: &'a Server,
}

impl T<'_> {
    fn k(&self, args: &[&str]) -> common::Out {
        let mut a = vec!["-n", "nl"];
        a.extend_from_slice(args);
        self.s.kubectl(&a)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.k(&a).stdout).unwrap_or(Value::Null)
    }

    fn until(&self, secs: u64, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{what} not within {secs}s\nnodes:\n{}\npods:\n{}\nevents:\n{}\nserver log tail:\n{}",
                self.s.kubectl(&["get", "nodes", "-o", "custom-columns=N:.metadata.name,R:.status.conditions[?(@.type==\"Ready\")].status,T:.spec.taints"]).stdout,
                self.k(&["get", "pods", "-o", "wide"]).stdout,
                self.s.kubectl(&["get", "events", "-A"]).stdout,
                tail(&self.s.log(), 40),
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// (name, node, deleting) of the pods with label app=`app` (all pods when empty).
    fn pods(&self, app: &str) -> Vec<(String, String, bool)> {
        let mut args = vec!["get", "pods"];
        let sel = format!("app={app}");
        if !app.is_empty() {
            args.extend(["-l", sel.as_str()]);
        }
        let v = self.json(&args);
        let mut out: Vec<_> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                    !p["metadata"]["deletionTimestamp"].is_null(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn taints(&self, node: &str) -> String {
        self.s
            .kubectl(&["get", "node", node, "-o", "jsonpath={.spec.taints}"])
            .stdout
    }

    fn ready(&self, node: &str) -> String {
        self.s
            .kubectl(&[
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .stdout
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, labels: {app: lonely}}
spec:
  nodeSelector: {kubernetes.io/hostname: b-0}
  containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: stays, labels: {app: stays}}
spec:
  nodeSelector: {kubernetes.io/hostname: b-1}
  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]
  containers: [{name: c, image: nginx}]
"#;

#[test]
fn node_loss_taints_and_evicts_controller_pods_move_bare_pods_go() {
    let s = Server::start_backend(
        Backend::Embedded,
        &[
            "--node-monitor-grace-period",
            "3s",
            "--node-monitor-period",
            "500ms",
            "--node-eviction-rate",
            "100",
            "--default-unreachable-toleration-seconds",
            "4",
        ],
    );
    let mut a = SIM.to_vec();
    a.extend(["--sim-labels", "topology.kubernetes.io/zone=za"]);
    let mut b = SIM.to_vec();
    b.extend(["--sim-labels", "topology.kubernetes.io/zone=zb"]);
    let _sa = Simulator::start(&s, 2, "a", &a);
    let mut sb = Simulator::start(&s, 2, "b", &b);
    s.wait_nodes_ready(4);
    s.kubectl(&["create", "namespace", "nl"]).ok();
    let t = T { s: &s };
    // The ReplicaSet's pods start on the b nodes: the a nodes are cordoned meanwhile.
    for n in ["a-0", "a-1"] {
        s.kubectl(&["cordon", n]).ok();
    }
    t.until(10, "cordoned a nodes tainted unschedulable", || {
        t.taints("a-0").contains("node.kubernetes.io/unschedulable")
    });
    s.kubectl_stdin(&["apply", "-n", "nl", "-f", "-"], RS).ok();
    t.until(30, "web, lonely and stays running on b", || {
        let p = t.pods("");
        p.len() == 4 && p.iter().all(|(_, n, _)| n.starts_with("b-"))
    });
    for n in ["a-0", "a-1"] {
        s.kubectl(&["uncordon", n]).ok();
    }
    t.until(10, "uncordoned taint removed", || {
        !t.taints("a-0").contains("unschedulable")
    });
    // Admission gave the pods the flags' tolerationSeconds.
    let web = t.json(&["get", "pods", "-l", "app=web"]);
    let secs = |key: &str| {
        web["items"][0]["spec"]["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == key && t["effect"] == "NoExecute" && t["operator"] == "Exists")
            .map(|t| t["tolerationSeconds"].clone())
    };
    assert_eq!(
        secs("node.kubernetes.io/unreachable"),
        Some(4.into()),
        "{web}"
    );
    assert_eq!(
        secs("node.kubernetes.io/not-ready"),
        Some(300.into()),
        "{web}"
    );

    // The b nodes' agent stops.
    sb.terminate();
    t.until(20, "b nodes Unknown and tainted unreachable", || {
        ["b-0", "b-1"].iter().all(|n| {
            t.ready(n) == "Unknown"
                && t.taints(n)
                    .contains(r#""effect":"NoExecute","key":"node.kubernetes.io/unreachable""#)
                && t.taints(n)
                    .contains(r#""effect":"NoSchedule","key":"node.kubernetes.io/unreachable""#)
        })
    });
    assert_eq!(t.ready("a-0"), "True");
    assert!(!t.taints("a-0").contains("unreachable"));
    let nodes = s.kubectl(&["get", "nodes"]).ok();
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("b-0") && l.contains("NotReady")),
        "{nodes}"
    );
    let ev = s
        .kubectl(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "reason=NodeNotReady",
        ])
        .ok();
    assert!(ev.contains("Node b-0 status is now: NodeNotReady"), "{ev}");
    let cond = s.kubectl(&[
        "get",
        "node",
        "b-0",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
    ]);
    assert_eq!(cond.stdout, "Kubelet stopped posting node status.");

    // After 4 s the web pods and the bare pod are evicted; the one tolerating for ever stays.
    t.until(30, "web recreated on a nodes, lonely deleted", || {
        let p = t.pods("");
        let web_live: Vec<_> = p
            .iter()
            .filter(|(n, _, d)| n.starts_with("web-") && !d)
            .collect();
        web_live.len() == 2
            && web_live.iter().all(|(_, n, _)| n.starts_with("a-"))
            && p.iter().any(|(n, _, d)| n == "lonely" && *d)
    });
    let stays = t.json(&["get", "pod", "stays"]);
    assert!(stays["metadata"]["deletionTimestamp"].is_null(), "{stays}");
    let ready = stays["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "False", "{stays}");
    let lonely = t.json(&["get", "pod", "lonely"]);
    let target = lonely["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(target["reason"], "DeletionByTaintManager", "{lonely}");
    let ev = t
        .k(&[
            "get",
            "events",
            "--field-selector",
            "reason=TaintManagerEviction",
        ])
        .ok();
    assert!(ev.contains("Marking for deletion Pod nl/lonely"), "{ev}");
    assert_eq!(t.pods("lonely").len(), 1, "a bare pod is not recreated");

    // A user's NoExecute taint evicts at once.
    let on_a0: Vec<String> = t
        .pods("web")
        .into_iter()
        .filter(|(_, n, d)| n == "a-0" && !d)
        .map(|(p, _, _)| p)
        .collect();
    s.kubectl(&["taint", "node", "a-0", "maintenance=now:NoExecute"])
        .ok();
    t.until(15, "web pods off a-0", || {
        let p = t.pods("web");
        p.iter().filter(|(_, _, d)| !d).count() == 2
            && p.iter()
                .all(|(name, n, d)| n != "a-0" || *d || !on_a0.contains(name))
            && p.iter().filter(|(_, n, d)| n == "a-1" && !d).count() == 2
    });
    s.kubectl(&["taint", "node", "a-0", "maintenance=now:NoExecute-"])
        .ok();

    // The agent comes back: Ready again, the controller's taints go, pending deletions finish.
    let _sb = Simulator::start(&s, 2, "b", &b);
    t.until(20, "b nodes Ready without unreachable taints", || {
        ["b-0", "b-1"]
            .iter()
            .all(|n| t.ready(n) == "True" && !t.taints(n).contains("unreachable"))
    });
    t.until(20, "lonely gone", || t.pods("lonely").is_empty());
    assert_eq!(t.pods("stays").len(), 1);
}
