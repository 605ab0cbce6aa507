//! The StatefulSet controller end to end on simulated nodes, driven with the real kubectl:
//! OrderedReady creation in ordinal order (a pod appears only once its predecessor is
//! Ready), `kubectl scale` up and down (highest ordinal first, one at a time), `set image` +
//! `rollout status` with a partition and without, `rollout history` / `undo` over the
//! ControllerRevisions, a deleted pod recreated under its name, `kubectl delete sts` taking its
//! pods and revisions along (garbage collector); Parallel with volumeClaimTemplates (claims
//! `<claim>-<set>-<ordinal>` in the pods' volumes, whenScaled Delete).

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct T<'a> {
    s: &'a Server,
    ns: String,
}

/// A pod as a snapshot sees it: (ordinal, ready, terminating, image, uid).
type Snap = Vec<(i64, bool, bool, String, String)>;

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
                "{what} not within {secs}s\npods:\n{}\nsts:\n{}\nevents:\n{}",
                self.k(&["get", "pods", "-o", "wide", "--show-labels"])
                    .stdout,
                self.k(&["get", "sts,controllerrevisions", "-o", "wide"])
                    .stdout,
                self.k(&["get", "events"]).stdout
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The pods of app=web, by ordinal.
    fn snap(&self) -> Snap {
        let mut v: Snap = self
            .items(&["get", "pods", "-l", "app=web"])
            .iter()
            .map(|p| {
                let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                let n = p["metadata"]["name"].as_str().unwrap_or("");
                let ord = n.rsplit('-').next().unwrap().parse().unwrap_or(-1);
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                (
                    ord,
                    ready,
                    !p["metadata"]["deletionTimestamp"].is_null(),
                    s(&p["spec"]["containers"][0]["image"]),
                    s(&p["metadata"]["uid"]),
                )
            })
            .collect();
        v.sort_by_key(|p| p.0);
        v
    }

    /// Ready, live pods 0..n, all with `image`.
    fn settled(&self, n: i64, image: &str) -> bool {
        let s = self.snap();
        s.len() as i64 == n
            && s.iter()
                .enumerate()
                .all(|(i, p)| p.0 == i as i64 && p.1 && !p.2 && p.3 == image)
    }

    /// Watch the pods (`kubectl get -w --output-watch-events`) while `f` runs; after every
    /// event the pods as they then stand are handed to `check`.
    fn watching(&self, check: impl Fn(&Snap) + Send, f: impl FnOnce()) {
        let mut child = std::process::Command::new("/usr/bin/kubectl")
            .env("KUBECONFIG", &self.s.kubeconfig)
            .args(["-n", &self.ns, "get", "pods", "-l", "app=web", "-w"])
            .args(["--output-watch-events", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl get -w");
        let out = child.stdout.take().unwrap();
        std::thread::scope(|sc| {
            let reader = sc.spawn(move || {
                let mut pods: std::collections::BTreeMap<i64, (bool, bool, String, String)> =
                    Default::default();
                let events = serde_json::Deserializer::from_reader(std::io::BufReader::new(out));
                for ev in events.into_iter::<Value>() {
                    let Ok(ev) = ev else { break };
                    let p = &ev["object"];
                    let n = p["metadata"]["name"].as_str().unwrap_or("");
                    let ord: i64 = n.rsplit('-').next().unwrap().parse().unwrap_or(-1);
                    if ev["type"] == "DELETED" {
                        pods.remove(&ord);
                    } else {
                        let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                            c.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        });
                        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                        let v = (
                            ready,
                            !p["metadata"]["deletionTimestamp"].is_null(),
                            s(&p["spec"]["containers"][0]["image"]),
                            s(&p["metadata"]["uid"]),
                        );
                        pods.insert(ord, v);
                    }
                    let snap: Snap = pods
                        .iter()
                        .map(|(o, (r, t, i, u))| (*o, *r, *t, i.clone(), u.clone()))
                        .collect();
                    check(&snap);
                }
            });
            // Let the watch start before anything changes.
            std::thread::sleep(Duration::from_millis(1500));
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            // Let the last events arrive.
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
            let watched = reader.join();
            if let Err(e) = done {
                std::panic::resume_unwind(e);
            }
            if let Err(e) = watched {
                std::panic::resume_unwind(e);
            }
        });
    }

    fn sts(&self) -> Value {
        serde_json::from_str(&self.k(&["get", "sts", "web", "-o", "json"]).ok()).unwrap()
    }

    fn rollout(&self) -> String {
        self.k(&["rollout", "status", "sts/web", "--timeout=90s"])
            .ok()
    }
}

const SVC: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - port: 80
"#;

const STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1.26
"#;

/// In OrderedReady, a pod exists only when its predecessor is Ready (or going away in a
/// scale down), and no two pods are terminating at once.
fn ordered(s: &Snap) {
    for w in s.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "ordinals not contiguous: {s:?}");
        assert!(
            w[0].1 || w[0].2,
            "pod {} exists before {} is Ready: {s:?}",
            w[1].0,
            w[0].0
        );
    }
    assert!(
        s.iter().filter(|p| p.2).count() <= 1,
        "two terminating: {s:?}"
    );
    if let Some(t) = s.iter().find(|p| p.2) {
        assert_eq!(
            Some(t.0),
            s.last().map(|p| p.0),
            "not the highest terminating: {s:?}"
        );
    }
}

#[test]
fn statefulset_ordered_scale_update_history_delete() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 2, "n", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "st"]).ok();
    let t = T {
        s: &s,
        ns: "st".into(),
    };
    t.apply(SVC);
    t.watching(ordered, || {
        t.apply(STS);
        t.until(60, "web-0..2 Ready", || t.settled(3, "nginx:1.26"));
    });
    let pods = t.items(&["get", "pods", "-l", "app=web"]);
    let created: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["creationTimestamp"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    let p0 = &pods[0];
    assert_eq!(p0["metadata"]["name"], "web-0");
    assert_eq!(p0["spec"]["hostname"], "web-0");
    assert_eq!(p0["spec"]["subdomain"], "nginx");
    let l = &p0["metadata"]["labels"];
    assert_eq!(l["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(l["apps.kubernetes.io/pod-index"], "0");
    let owner = &p0["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("StatefulSet"), Some(true))
    );
    let sts = t.sts();
    let rev1 = sts["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(l["controller-revision-hash"], rev1.as_str());
    assert_eq!(sts["status"]["currentRevision"], rev1.as_str());
    for k in [
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        assert_eq!(sts["status"][k], 3, "{k}: {}", sts["status"]);
    }
    assert_eq!(
        sts["status"]["observedGeneration"],
        sts["metadata"]["generation"]
    );
    let out = t.rollout();
    assert!(
        out.contains("partitioned roll out complete: 3 new pods"),
        "{out}"
    );
    let get = t.k(&["get", "sts", "web"]).ok();
    let row: Vec<&str> = get.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["web", "3/3"], "{get}");
    let cr = t.items(&["get", "controllerrevisions"]);
    assert_eq!(cr.len(), 1);
    assert_eq!(cr[0]["metadata"]["name"], rev1.as_str());
    assert_eq!(cr[0]["revision"], 1);
    assert_eq!(cr[0]["data"]["spec"]["template"]["$patch"], "replace");

    // Scale up and down through the scale subresource.
    t.watching(ordered, || {
        t.k(&["scale", "sts/web", "--replicas=5"]).ok();
        t.until(60, "5 pods", || t.settled(5, "nginx:1.26"));
        t.k(&["scale", "sts/web", "--replicas=2"]).ok();
        t.until(60, "2 pods", || t.settled(2, "nginx:1.26"));
    });
    let ev = t
        .k(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=StatefulSet",
        ])
        .ok();
    assert!(
        ev.contains("create Pod web-4 in StatefulSet web successful"),
        "{ev}"
    );
    assert!(
        ev.contains("delete Pod web-4 in StatefulSet web successful"),
        "{ev}"
    );

    // A partitioned rollout updates only the ordinals at or above the partition.
    t.k(&[
        "patch",
        "sts/web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}"#,
    ])
    .ok();
    t.k(&["set", "image", "sts/web", "c=nginx:1.27"]).ok();
    let out = t.rollout();
    assert!(
        out.contains("partitioned roll out complete: 1 new pods"),
        "{out}"
    );
    let snap = t.snap();
    assert_eq!(
        (snap[0].3.as_str(), snap[1].3.as_str()),
        ("nginx:1.26", "nginx:1.27"),
        "{snap:?}"
    );
    let sts = t.sts();
    assert_eq!(sts["status"]["currentRevision"], rev1.as_str());
    assert_eq!(sts["status"]["updatedReplicas"], 1);
    t.k(&[
        "patch",
        "sts/web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ])
    .ok();
    let out = t.rollout();
    assert!(
        out.contains("partitioned roll out complete: 2 new pods"),
        "{out}"
    );
    t.until(30, "all on nginx:1.27", || t.settled(2, "nginx:1.27"));
    let sts = t.sts();
    let rev2 = sts["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rev1, rev2);
    t.until(10, "current revision = update revision", || {
        t.sts()["status"]["currentRevision"] == rev2.as_str()
    });

    // History and undo (revision 1 comes back as revision 3).
    let hist = t.k(&["rollout", "history", "sts/web"]).ok();
    let revs: Vec<&str> = hist
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revs, ["1", "2"], "{hist}");
    let one = t.k(&["rollout", "history", "sts/web", "--revision=1"]).ok();
    assert!(one.contains("nginx:1.26"), "{one}");
    let out = t.k(&["rollout", "undo", "sts/web"]).ok();
    assert!(out.contains("rolled back"), "{out}");
    t.rollout();
    t.until(60, "rolled back to nginx:1.26", || {
        t.settled(2, "nginx:1.26")
    });
    let hist = t.k(&["rollout", "history", "sts/web"]).ok();
    let revs: Vec<&str> = hist
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revs, ["2", "3"], "{hist}");
    assert_eq!(t.sts()["status"]["updateRevision"], rev1.as_str());

    // A deleted pod comes back under its name.
    let old = t.snap()[0].4.clone();
    t.k(&["delete", "pod", "web-0", "--wait=false"]).ok();
    t.until(60, "web-0 recreated", || {
        let s = t.snap();
        t.settled(2, "nginx:1.26") && s[0].4 != old
    });

    // A failed pod is deleted and recreated under its name.
    let old = t.snap()[1].4.clone();
    t.k(&[
        "patch",
        "pod",
        "web-1",
        "--subresource=status",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ])
    .ok();
    t.until(60, "web-1 recreated", || {
        let s = t.snap();
        t.settled(2, "nginx:1.26") && s[1].4 != old
    });
    let ev = t.k(&["get", "events"]).ok();
    assert!(
        ev.contains("StatefulSet st/web is recreating failed Pod web-1"),
        "{ev}"
    );

    t.k(&["delete", "sts", "web"]).ok();
    t.until(60, "pods and revisions gone", || {
        t.snap().is_empty() && t.items(&["get", "controllerrevisions"]).is_empty()
    });
}

const PARALLEL: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Retain}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1.26
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

#[test]
fn statefulset_parallel_with_claims() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 2, "n", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "sp"]).ok();
    let t = T {
        s: &s,
        ns: "sp".into(),
    };
    t.apply(SVC);
    // Parallel: a pod appears before its predecessor is Ready.
    let unordered = std::sync::Arc::new(AtomicBool::new(false));
    let seen = unordered.clone();
    t.watching(
        move |s| {
            if s.len() >= 2 && !s[0].1 {
                seen.store(true, Ordering::Relaxed);
            }
        },
        || {
            t.apply(PARALLEL);
            t.until(60, "3 pods", || t.settled(3, "nginx:1.26"));
        },
    );
    // All three are created in one sync (the events come in one burst).
    let pods = t.items(&["get", "pods", "-l", "app=web"]);
    let created: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["creationTimestamp"].as_str().unwrap())
        .collect();
    let spread = |a: &str, b: &str| {
        let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        (p(b) - p(a)).num_seconds().abs()
    };
    assert!(
        unordered.load(Ordering::Relaxed) || spread(created[0], created[2]) <= 1,
        "{created:?}"
    );
    let vol = &pods[1]["spec"]["volumes"][0];
    assert_eq!(vol["name"], "www", "{vol}");
    assert_eq!(
        vol["persistentVolumeClaim"]["claimName"], "www-web-1",
        "{vol}"
    );
    let claims = |t: &T| -> Vec<String> {
        let mut v: Vec<String> = t
            .items(&["get", "pvc"])
            .iter()
            .filter(|c| c["metadata"]["deletionTimestamp"].is_null())
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(claims(&t), ["www-web-0", "www-web-1", "www-web-2"]);
    let pvc: Value =
        serde_json::from_str(&t.k(&["get", "pvc", "www-web-0", "-o", "json"]).ok()).unwrap();
    assert_eq!(pvc["metadata"]["labels"]["app"], "web");
    let ev = t.k(&["get", "events"]).ok();
    assert!(
        ev.contains("create Claim www-web-0 Pod web-0 in StatefulSet web success"),
        "{ev}"
    );

    // Scaled down: the condemned pods go at once, with their claims (whenScaled: Delete).
    t.k(&["scale", "sts/web", "--replicas=1"]).ok();
    t.until(60, "1 pod", || t.settled(1, "nginx:1.26"));
    t.until(60, "claims of the scaled-down pods gone", || {
        claims(&t) == ["www-web-0"]
    });
    let get = t.k(&["get", "sts", "web"]).ok();
    let row: Vec<&str> = get.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["web", "1/1"], "{get}");
}
