//! The Deployment controller end to end on simulated nodes, driven with the real kubectl:
//! create, rollout status, set image (a second ReplicaSet, availability kept during the
//! rollout), rollout history and undo, scale, the Recreate strategy, pause/resume, restart
//! and cascading delete.

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

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.k(&a).stdout).unwrap_or(Value::Null)
    }

    fn items(&self, args: &[&str]) -> Vec<Value> {
        self.json(args)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn until(&self, secs: u64, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{what} not within {secs}s\npods:\n{}\nrs:\n{}\nevents:\n{}",
                self.k(&["get", "pods", "-o", "wide", "--show-labels"])
                    .stdout,
                self.k(&["get", "rs", "-o", "wide"]).stdout,
                self.k(&["get", "events"]).stdout
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Active pods of app=web: (image, ready).
    fn pods(&self) -> Vec<(String, bool)> {
        self.items(&["get", "pods", "-l", "app=web"])
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                let image = p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (image, ready)
            })
            .collect()
    }

    fn all_running(&self, n: usize, image: &str) -> bool {
        let p = self.pods();
        p.len() == n && p.iter().all(|(i, r)| i == image && *r)
    }

    /// `kubectl rollout status` while sampling ready pods: the fewest seen.
    fn rollout_status(&self) -> usize {
        let ns = self.ns.clone();
        let s: &Server = self.s;
        let mut min = usize::MAX;
        std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                s.kubectl(&[
                    "-n",
                    &ns,
                    "rollout",
                    "status",
                    "deployment/web",
                    "--timeout=90s",
                ])
            });
            while !h.is_finished() {
                min = min.min(self.pods().iter().filter(|(_, r)| *r).count());
                std::thread::sleep(Duration::from_millis(100));
            }
            let out = h.join().unwrap().ok();
            assert!(
                out.contains("deployment \"web\" successfully rolled out"),
                "rollout status: {out}"
            );
        });
        min
    }

    fn replica_sets(&self) -> Vec<Value> {
        self.items(&["get", "rs", "-l", "app=web"])
    }
}

#[test]
fn deployment_rollout_history_undo_scale_recreate_delete() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 2, "sim", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "dep"]).ok();
    let t = T {
        s: &s,
        ns: "dep".into(),
    };

    t.k(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=3",
    ])
    .ok();
    t.until(60, "3 pods of busybox:1.36", || {
        t.all_running(3, "busybox:1.36")
    });
    t.rollout_status();
    let rss = t.replica_sets();
    assert_eq!(rss.len(), 1);
    let first = rss[0]["metadata"]["name"].as_str().unwrap().to_string();
    let hash = rss[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first, format!("web-{hash}"));
    assert_eq!(
        rss[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        rss[0]["metadata"]["ownerReferences"][0]["kind"],
        "Deployment"
    );
    let d = t.json(&["get", "deployment", "web"]);
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    let conds = d["status"]["conditions"].as_array().unwrap();
    assert!(conds
        .iter()
        .any(|c| c["type"] == "Available" && c["reason"] == "MinimumReplicasAvailable"));
    assert!(conds
        .iter()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"));
    assert!(t
        .k(&["get", "events"])
        .stdout
        .contains(&format!("Scaled up replica set {first} from 0 to 3")));

    // Rolling update: 3 replicas, maxUnavailable 25% → 0, so 3 ready pods at all times.
    t.k(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=to 1.37",
    ])
    .ok();
    t.k(&["set", "image", "deployment/web", "busybox=busybox:1.37"])
        .ok();
    let min = t.rollout_status();
    assert!(min >= 3, "ready pods dropped to {min} during the rollout");
    t.until(60, "3 pods of busybox:1.37", || {
        t.all_running(3, "busybox:1.37")
    });
    let rss = t.replica_sets();
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|r| r["metadata"]["name"] == first.as_str())
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    let hist = t.k(&["rollout", "history", "deployment/web"]).ok();
    assert!(
        hist.contains("1 ") && hist.contains("2 ") && hist.contains("to 1.37"),
        "history: {hist}"
    );
    let events = t.k(&["get", "events"]).stdout;
    assert!(
        events.contains(&format!("Scaled down replica set {first} from 3 to 2")),
        "{events}"
    );

    // Undo: the first RS comes back as revision 3.
    t.k(&["rollout", "undo", "deployment/web"]).ok();
    t.rollout_status();
    t.until(60, "3 pods of busybox:1.36 again", || {
        t.all_running(3, "busybox:1.36")
    });
    let rs1 = t.json(&["get", "rs", &first]);
    assert_eq!(rs1["spec"]["replicas"], 3);
    assert_eq!(
        rs1["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let d = t.json(&["get", "deployment", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    // Scale.
    t.k(&["scale", "deployment", "web", "--replicas=5"]).ok();
    t.until(60, "5 pods", || t.all_running(5, "busybox:1.36"));
    t.rollout_status();

    // Pause: a new template makes no ReplicaSet until resumed; restart makes a new one.
    t.k(&["rollout", "pause", "deployment/web"]).ok();
    t.k(&["set", "image", "deployment/web", "busybox=busybox:1.35"])
        .ok();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(t.replica_sets().len(), 2, "no new ReplicaSet while paused");
    t.k(&["rollout", "resume", "deployment/web"]).ok();
    t.rollout_status();
    t.until(60, "5 pods of busybox:1.35", || {
        t.all_running(5, "busybox:1.35")
    });
    t.k(&["rollout", "restart", "deployment/web"]).ok();
    t.rollout_status();
    assert_eq!(t.replica_sets().len(), 4);

    // Recreate: old pods all gone before new ones.
    t.k(&[
        "patch",
        "deployment/web",
        "--type=merge",
        "-p",
        r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
    ])
    .ok();
    t.k(&["set", "image", "deployment/web", "busybox=busybox:1.34"])
        .ok();
    t.rollout_status();
    t.until(60, "5 pods of busybox:1.34", || {
        t.all_running(5, "busybox:1.34")
    });

    // Delete: the GC removes ReplicaSets and pods.
    t.k(&["delete", "deployment", "web"]).ok();
    t.until(60, "ReplicaSets and pods gone", || {
        t.replica_sets().is_empty() && t.items(&["get", "pods", "-l", "app=web"]).is_empty()
    });
}
