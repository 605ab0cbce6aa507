//! The DaemonSet and Job controllers end to end on simulated nodes, driven with the real
//! kubectl: a DaemonSet skips the node whose taint it does not tolerate, gets a pod onto a
//! node that joins later and replaces its pods on an image update (`rollout status`); a Job
//! with completions 3 / parallelism 2 of pods the simulator completes reaches Complete
//! (`kubectl wait --for=condition=complete`, `kubectl get jobs` 3/3).

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

struct T<'a> {
    s: &'a Server,
    ns: String,
}

impl<'a> T<'a> {
    fn k(&self, args: &[&str]) -> common::Out {
        let mut a = vec!["-n", self.ns.as_str()];
        a.extend_from_slice(args);
        self.s.kubectl(&a)
    }

    fn apply(&self, yaml: &str) {
        self.s
            .kubectl_stdin(&["apply", "-n", &self.ns, "-f", "-"], yaml)
            .ok();
    }

    fn items(&self, args: &[&str]) -> Vec<Value> {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        let v: Value = serde_json::from_str(&self.k(&a).stdout).unwrap_or(Value::Null);
        v["items"].as_array().cloned().unwrap_or_default()
    }

    fn until(&self, secs: u64, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{what} not within {secs}s\npods:\n{}\nds/jobs:\n{}\nevents:\n{}",
                self.k(&["get", "pods", "-o", "wide", "--show-labels"])
                    .stdout,
                self.k(&["get", "ds,jobs", "-o", "wide"]).stdout,
                self.k(&["get", "events"]).stdout
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Active, bound pods of app=`app`: (node, image, ready).
    fn pods(&self, app: &str) -> Vec<(String, String, bool)> {
        let mut v: Vec<_> = self
            .items(&["get", "pods", "-l", &format!("app={app}")])
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                (
                    s(&p["spec"]["nodeName"]),
                    s(&p["spec"]["containers"][0]["image"]),
                    ready,
                )
            })
            .collect();
        v.sort();
        v
    }

    fn ds_on(&self, nodes: &[&str], image: &str) -> bool {
        let p = self.pods("agent");
        p.len() == nodes.len()
            && p.iter()
                .zip(nodes)
                .all(|((n, i, r), want)| n == want && i == image && *r)
    }
}

const DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: c
        image: busybox:1.36
"#;

#[test]
fn daemonset_nodes_taints_join_and_rolling_update() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _a = Simulator::start(&s, 2, "a", &[]);
    let _t = Simulator::start(&s, 1, "t", &["--sim-taints", "dedicated=x:NoSchedule"]);
    s.wait_nodes_ready(3);
    s.kubectl(&["create", "namespace", "wl"]).ok();
    let t = T {
        s: &s,
        ns: "wl".into(),
    };
    t.apply(DS);
    t.until(60, "agent pods on a-0, a-1", || {
        t.ds_on(&["a-0", "a-1"], "busybox:1.36")
    });
    let out = t
        .k(&["rollout", "status", "ds/agent", "--timeout=60s"])
        .ok();
    assert!(out.contains("successfully rolled out"), "{out}");
    let pod = &t.items(&["get", "pods", "-l", "app=agent"])[0];
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet",
        "{pod}"
    );
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
    let tols = pod["spec"]["tolerations"].to_string();
    assert!(tols.contains("node.kubernetes.io/unschedulable"), "{tols}");
    let get = t.k(&["get", "ds", "agent"]).ok();
    let row: Vec<&str> = get.lines().nth(1).unwrap().split_whitespace().collect();
    // NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE
    assert_eq!(&row[..6], ["agent", "2", "2", "2", "2", "2"], "{get}");

    let _b = Simulator::start(&s, 1, "b", &[]);
    s.wait_nodes_ready(4);
    t.until(60, "a pod on the joined node", || {
        t.ds_on(&["a-0", "a-1", "b-0"], "busybox:1.36")
    });

    t.k(&["set", "image", "ds/agent", "c=busybox:1.37"]).ok();
    let out = t
        .k(&["rollout", "status", "ds/agent", "--timeout=90s"])
        .ok();
    assert!(out.contains("successfully rolled out"), "{out}");
    t.until(30, "pods replaced with busybox:1.37", || {
        t.ds_on(&["a-0", "a-1", "b-0"], "busybox:1.37")
    });
    let events = t.k(&["get", "events"]).ok();
    assert!(events.contains("SuccessfulDelete"), "{events}");
    assert!(events.contains("SuccessfulCreate"), "{events}");
}

const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  completions: 3
  parallelism: 2
  ttlSecondsAfterFinished: 600
  template:
    metadata:
      labels: {app: pi}
      annotations: {sim.capstan.io/complete-after-seconds: "1"}
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:1.36
"#;

#[test]
fn job_completions_parallelism_complete() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _a = Simulator::start(&s, 2, "a", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "jb"]).ok();
    let t = T {
        s: &s,
        ns: "jb".into(),
    };
    t.apply(JOB);
    let max_active = std::sync::atomic::AtomicUsize::new(0);
    let out = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            t.k(&[
                "wait",
                "--for=condition=complete",
                "job/pi",
                "--timeout=60s",
            ])
        });
        while !h.is_finished() {
            let j: Value = serde_json::from_str(&t.k(&["get", "job", "pi", "-o", "json"]).stdout)
                .unwrap_or(Value::Null);
            let a = j["status"]["active"].as_u64().unwrap_or(0) as usize;
            max_active.fetch_max(a, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        }
        h.join().unwrap()
    });
    let out = out.ok();
    assert!(out.contains("condition met"), "{out}");
    assert!(max_active.into_inner() <= 2, "parallelism exceeded");
    let get = t.k(&["get", "jobs"]).ok();
    let row: Vec<&str> = get.lines().nth(1).unwrap().split_whitespace().collect();
    // NAME STATUS COMPLETIONS DURATION AGE
    assert_eq!(&row[..3], ["pi", "Complete", "3/3"], "{get}");
    let pods = t.items(&["get", "pods", "-l", "batch.kubernetes.io/job-name=pi"]);
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    assert_eq!(pods[0]["metadata"]["labels"]["job-name"], "pi");
    let j: Value = serde_json::from_str(&t.k(&["get", "job", "pi", "-o", "json"]).stdout).unwrap();
    let types: Vec<&str> = j["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    assert!(j["status"]["completionTime"].is_string());
    let events = t.k(&["get", "events"]).ok();
    assert!(events.contains("Completed"), "{events}");
}

const FAILING_JOBS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: never}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {sim.capstan.io/complete-after-seconds: "1", sim.capstan.io/exit-code: "3"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:1.36}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: onfailure}
spec:
  backoffLimit: 2
  template:
    metadata:
      annotations: {sim.capstan.io/complete-after-seconds: "1", sim.capstan.io/exit-code: "3"}
    spec:
      restartPolicy: OnFailure
      containers: [{name: c, image: busybox:1.36}]
"#;

/// Failing pods: restartPolicy Never gets a new pod per failure (after the 10 s backoff)
/// until backoffLimit; OnFailure restarts the one pod in place, its restarts counted.
#[test]
fn job_backoff_limit_never_and_on_failure() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _a = Simulator::start(&s, 2, "a", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "jf"]).ok();
    let t = T {
        s: &s,
        ns: "jf".into(),
    };
    t.apply(FAILING_JOBS);
    for j in ["never", "onfailure"] {
        t.until(60, &format!("job {j} failed"), || {
            let path = "jsonpath={.status.conditions[?(@.type==\"Failed\")].status}";
            t.k(&["get", "job", j, "-o", path]).stdout == "True"
        });
        // Its active pods go, and status.active with them.
        t.until(20, &format!("job {j} without active pods"), || {
            let path = "jsonpath={.status.active}";
            matches!(
                t.k(&["get", "job", j, "-o", path]).stdout.as_str(),
                "" | "0"
            )
        });
        let v: Value = serde_json::from_str(&t.k(&["get", "job", j, "-o", "json"]).stdout).unwrap();
        let failed = v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Failed")
            .cloned()
            .unwrap();
        assert_eq!(failed["reason"], "BackoffLimitExceeded", "{j}: {v}");
        assert_eq!(v["status"]["active"].as_u64().unwrap_or(0), 0, "{j}: {v}");
    }
    let never = t.items(&["get", "pods", "-l", "batch.kubernetes.io/job-name=never"]);
    assert_eq!(never.len(), 2, "backoffLimit 1: two pods ran");
    for p in &never {
        assert_eq!(p["status"]["phase"], "Failed", "{p}");
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3,
            "{p}"
        );
    }
    let get = t.k(&["get", "jobs", "never"]).ok();
    assert!(get.lines().nth(1).unwrap().contains("Failed"), "{get}");
    // OnFailure: one pod, restarted in place twice, then deleted with the failed Job's
    // active pods.
    let ev = t
        .k(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=onfailure",
        ])
        .ok();
    assert_eq!(ev.matches("SuccessfulCreate").count(), 1, "{ev}");
    assert!(ev.contains("BackoffLimitExceeded"), "{ev}");
}
