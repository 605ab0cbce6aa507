//! The controller manager end to end on simulated nodes, driven with the real kubectl:
//! ReplicationController and ReplicaSet (scale, self-heal, adoption, events), the garbage
//! collector (background, orphan and foreground deletion), PodDisruptionBudget status, the
//! Eviction API and `kubectl drain`.

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

struct T<'a> {
    s: &'a Server,
    ns: String,
}

impl<'a> T<'a> {
    fn new(s: &'a Server, ns: &str) -> T<'a> {
        s.kubectl(&["create", "namespace", ns]).ok();
        T { s, ns: ns.into() }
    }

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

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.k(&a).stdout).unwrap_or(Value::Null)
    }

    fn pods(&self, selector: &str) -> Vec<Value> {
        self.json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Wait until `f` holds, showing `what` and the namespace's pods and events otherwise.
    fn until(&self, secs: u64, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{what} not within {secs}s\npods:\n{}\nevents:\n{}",
                self.k(&["get", "pods", "-o", "wide", "--show-labels"])
                    .stdout,
                self.k(&["get", "events"]).stdout
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Pods matching `selector`, active (no deletionTimestamp), Running.
    fn running(&self, selector: &str) -> Vec<Value> {
        self.pods(selector)
            .into_iter()
            .filter(|p| {
                p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running"
            })
            .collect()
    }

    fn wait_running(&self, selector: &str, n: usize) -> Vec<Value> {
        self.until(60, &format!("{n} running pods {selector}"), || {
            self.running(selector).len() == n && self.pods(selector).len() == n
        });
        self.running(selector)
    }

    fn events(&self) -> String {
        self.k(&["get", "events"]).stdout
    }
}

fn name(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn controller_of(p: &Value) -> Option<(String, String)> {
    p["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
}

fn cluster(nodes: usize, extra: &[&str]) -> (Server, Simulator) {
    let s = Server::start_backend(Backend::Embedded, extra);
    let sim = Simulator::start(&s, nodes, "sim", &[]);
    s.wait_nodes_ready(nodes);
    (s, sim)
}

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  replicas: 3
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec: {containers: [{name: c, image: busybox}]}
"#;

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"#;

#[test]
fn replication_controller_and_replica_set() {
    let (s, _sim) = cluster(2, &[]);
    let t = T::new(&s, "repl");

    // RC: three pods named rc-xxxxx, owned, status reported.
    t.apply(RC);
    let pods = t.wait_running("app=rc", 3);
    for p in &pods {
        let n = name(p);
        assert!(n.starts_with("rc-") && n.len() == 8, "generated name {n}");
        assert_eq!(
            controller_of(p),
            Some(("ReplicationController".into(), "rc".into()))
        );
        let r = &p["metadata"]["ownerReferences"][0];
        assert_eq!(
            (r["blockOwnerDeletion"].clone(), r["apiVersion"].clone()),
            (Value::Bool(true), "v1".into())
        );
    }
    t.until(30, "rc status", || {
        let rc = t.json(&["get", "rc", "rc"]);
        rc["status"]["replicas"] == 3
            && rc["status"]["readyReplicas"] == 3
            && rc["status"]["availableReplicas"] == 3
            && rc["status"]["fullyLabeledReplicas"] == 3
            && rc["status"]["observedGeneration"] == rc["metadata"]["generation"]
    });
    let events = t.events();
    assert!(
        events.contains(&format!("Created pod: {}", name(&pods[0]))),
        "{events}"
    );
    assert!(events.contains("SuccessfulCreate"), "{events}");

    // Scale down with kubectl scale: one left, deletions recorded.
    t.k(&["scale", "rc", "rc", "--replicas=1"]).ok();
    t.wait_running("app=rc", 1);
    t.until(30, "SuccessfulDelete", || {
        t.events().contains("Deleted pod: rc-")
    });
    t.until(30, "rc status 1", || {
        t.json(&["get", "rc", "rc"])["status"]["replicas"] == 1
    });
    t.k(&["scale", "rc", "rc", "--replicas=2"]).ok();
    t.wait_running("app=rc", 2);

    // RS: scale up, self-heal.
    t.apply(RS);
    let pods = t.wait_running("app=web", 2);
    assert_eq!(
        controller_of(&pods[0]),
        Some(("ReplicaSet".into(), "web".into()))
    );
    t.k(&["scale", "rs", "web", "--replicas=4"]).ok();
    let pods = t.wait_running("app=web", 4);
    let victim = name(&pods[0]);
    t.k(&["delete", "pod", &victim]).ok();
    t.until(60, "self-heal", || {
        let now = t.running("app=web");
        now.len() == 4 && now.iter().all(|p| name(p) != victim)
    });
    t.k(&["scale", "rs", "web", "--replicas=2"]).ok();
    t.wait_running("app=web", 2);
    let out = t.k(&["get", "rs", "web"]).ok();
    assert!(
        out.lines().nth(1).is_some_and(
            |l| l.split_whitespace().take(4).collect::<Vec<_>>() == ["web", "2", "2", "2"]
        ),
        "{out}"
    );

    // Adoption: a bare pod matching a new ReplicaSet's selector is adopted and counted.
    t.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: stray, labels: {app: adopt}}\nspec: {containers: [{name: c, image: busybox}]}\n",
    );
    t.wait_running("app=adopt", 1);
    t.apply(&RS.replace("web", "adopt"));
    t.until(60, "stray adopted", || {
        controller_of(&t.json(&["get", "pod", "stray"]))
            == Some(("ReplicaSet".into(), "adopt".into()))
    });
    let pods = t.wait_running("app=adopt", 2);
    assert!(pods.iter().any(|p| name(p) == "stray"));

    // Release: a pod relabelled out of the selector loses its ownerReference and is replaced.
    let keep = name(&t.running("app=web")[0]);
    t.k(&["label", "pod", &keep, "app=gone", "--overwrite"])
        .ok();
    t.until(60, "released", || {
        controller_of(&t.json(&["get", "pod", &keep])).is_none()
    });
    t.wait_running("app=web", 2);
}

#[test]
fn garbage_collection() {
    let (s, _sim) = cluster(2, &[]);
    let t = T::new(&s, "gc");

    // Background (kubectl's default): the pods go with the ReplicaSet.
    t.apply(RS);
    t.wait_running("app=web", 2);
    t.k(&["delete", "rs", "web"]).ok();
    t.until(60, "pods collected", || t.pods("app=web").is_empty());

    // Orphan: the pods stay, without ownerReferences, and nothing replaces them.
    t.apply(RS);
    t.wait_running("app=web", 2);
    t.k(&["delete", "rs", "web", "--cascade=orphan"]).ok();
    t.until(30, "rs gone", || t.k(&["get", "rs", "web"]).code != 0);
    t.until(30, "pods orphaned", || {
        let pods = t.pods("app=web");
        pods.len() == 2
            && pods.iter().all(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_none_or(|a| a.is_empty())
            })
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(t.running("app=web").len(), 2, "orphans kept");
    t.k(&["delete", "pods", "-l", "app=web"]).ok();
    t.until(60, "orphans deleted", || t.pods("app=web").is_empty());

    // Foreground: the owner waits (foregroundDeletion finalizer) until its pods are gone.
    t.apply(RS);
    t.wait_running("app=web", 2);
    t.k(&[
        "delete",
        "rs",
        "web",
        "--cascade=foreground",
        "--wait=false",
    ])
    .ok();
    let rs = t.json(&["get", "rs", "web"]);
    if !rs.is_null() {
        assert!(rs["metadata"]["deletionTimestamp"].is_string(), "{rs:#}");
        assert!(
            rs["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion")),
            "{rs:#}"
        );
    }
    t.until(60, "foreground deletion done", || {
        t.pods("app=web").is_empty() && t.k(&["get", "rs", "web"]).code != 0
    });

    // The API server's part alone: Orphan on an object nobody owns leaves the finalizer to
    // the collector, which removes it.
    t.k(&["create", "configmap", "cm"]).ok();
    let (code, body) = s.curl(&[
        "-X",
        "DELETE",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"propagationPolicy":"Orphan"}"#,
        &format!("{}/api/v1/namespaces/gc/configmaps/cm", s.url()),
    ]);
    assert_eq!(code, 200, "{body}");
    let cm: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        cm["metadata"]["finalizers"],
        serde_json::json!(["orphan"]),
        "{cm:#}"
    );
}

const PDB: &str = r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"#;

fn pdb_status(t: &T) -> (i64, i64, i64, i64) {
    let b = t.json(&["get", "pdb", "web"]);
    let i = |k: &str| b["status"][k].as_i64().unwrap_or(-1);
    (
        i("expectedPods"),
        i("desiredHealthy"),
        i("currentHealthy"),
        i("disruptionsAllowed"),
    )
}

fn evict(s: &Server, ns: &str, pod: &str) -> (u16, Value) {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"{ns}"}}}}"#
    );
    let (code, out) = s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &body,
        &format!("{}/api/v1/namespaces/{ns}/pods/{pod}/eviction", s.url()),
    ]);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null))
}

#[test]
fn disruption_budgets_eviction_and_drain() {
    let (s, _sim) = cluster(2, &[]);
    let t = T::new(&s, "pdb");
    // Everything on sim-0 first.
    s.kubectl(&["cordon", "sim-1"]).ok();
    t.apply(RS);
    t.apply(PDB);
    let pods = t.wait_running("app=web", 2);
    assert!(pods.iter().all(|p| p["spec"]["nodeName"] == "sim-0"));
    t.until(30, "pdb status", || pdb_status(&t) == (2, 2, 2, 0));
    let b = t.json(&["get", "pdb", "web"]);
    assert_eq!(
        b["status"]["observedGeneration"],
        b["metadata"]["generation"]
    );
    let c = &b["status"]["conditions"][0];
    assert_eq!(
        (
            c["type"].as_str(),
            c["status"].as_str(),
            c["reason"].as_str()
        ),
        (
            Some("DisruptionAllowed"),
            Some("False"),
            Some("InsufficientPods")
        ),
        "{b:#}"
    );
    let out = t.k(&["get", "pdb"]).ok();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ]
    );
    assert_eq!(
        lines
            .next()
            .unwrap()
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>(),
        ["web", "2", "N/A", "0"],
        "{out}"
    );

    // Eviction refused while the budget allows nothing.
    let (code, body) = evict(&s, "pdb", &name(&pods[0]));
    assert_eq!(code, 429, "{body:#}");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(
        body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        body["details"]["causes"][0]["reason"], "DisruptionBudget",
        "{body:#}"
    );

    // Drain is blocked by the budget.
    s.kubectl(&["uncordon", "sim-1"]).ok();
    let err = s
        .kubectl(&["drain", "sim-0", "--ignore-daemonsets", "--timeout=8s"])
        .err();
    assert!(
        err.contains("disruption budget") || err.contains("global timeout"),
        "{err}"
    );
    assert_eq!(t.running("app=web").len(), 2, "drain evicted nothing");

    // A third replica (on sim-1: sim-0 is cordoned) lets one disruption through; drain then
    // succeeds, the replacements landing on sim-1.
    t.k(&["scale", "rs", "web", "--replicas=3"]).ok();
    t.until(30, "budget allows one", || pdb_status(&t) == (3, 2, 3, 1));
    let c = t.json(&["get", "pdb", "web"])["status"]["conditions"][0].clone();
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("True"), Some("SufficientPods"))
    );
    s.kubectl(&["drain", "sim-0", "--ignore-daemonsets", "--timeout=90s"])
        .ok();
    t.until(60, "all on sim-1", || {
        let p = t.running("app=web");
        p.len() == 3 && p.iter().all(|p| p["spec"]["nodeName"] == "sim-1")
    });

    // An allowed eviction charges the budget (disruptedPods) and deletes the pod.
    t.until(30, "budget allows one again", || pdb_status(&t).3 == 1);
    // The first eviction spends the one disruption; the next is refused (the replacement
    // cannot be scheduled while both nodes are cordoned, so it is not healthy either).
    s.kubectl(&["cordon", "sim-1"]).ok();
    let pods = t.running("app=web");
    let (code, body) = evict(&s, "pdb", &name(&pods[0]));
    assert_eq!(code, 201, "{body:#}");
    let (code, body) = evict(&s, "pdb", &name(&pods[1]));
    assert_eq!(code, 429, "the budget was charged: {body:#}");
    t.until(30, "evicted pod gone", || {
        t.json(&["get", "pod", &name(&pods[0])]).is_null()
    });
    s.kubectl(&["uncordon", "sim-1"]).ok();
    t.wait_running("app=web", 3);

    // maxUnavailable as a percentage, against the ReplicaSet's scale.
    t.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: pct}\nspec:\n  maxUnavailable: 34%\n  selector: {matchLabels: {app: other}}\n");
    t.apply(&RS.replace("web", "other"));
    t.wait_running("app=other", 2);
    t.until(30, "percent budget", || {
        let b = t.json(&["get", "pdb", "pct"]);
        b["status"]["expectedPods"] == 2
            && b["status"]["desiredHealthy"] == 1
            && b["status"]["disruptionsAllowed"] == 1
    });
}
