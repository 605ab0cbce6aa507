//! The Endpoints and EndpointSlice controllers end to end on simulated nodes (which give pods
//! IPs and Ready), driven with the real kubectl: a Deployment of 3 behind a ClusterIP
//! service shows its 3 `IP:port` in `kubectl get endpoints` and in `kubectl get
//! endpointslices -l kubernetes.io/service-name=web`; scaling to 5, 130 (slices of at most
//! 100) and 1 is followed (the time from `kubectl scale` to the Endpoints is printed); a named targetPort resolves
//! to the container port; a selector-less service's hand-made Endpoints are left alone; a
//! headless service of a StatefulSet gets a hostname per address; deleting a service takes
//! its Endpoints and slices along.

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
                "{what} not within {secs}s\npods:\n{}\nendpoints:\n{}\nslices:\n{}",
                self.k(&["get", "pods", "-o", "wide", "--show-labels"])
                    .stdout,
                self.k(&["get", "endpoints", "-o", "yaml"]).stdout,
                self.k(&["get", "endpointslices", "-o", "yaml"]).stdout,
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The IPs of the running, ready, not deleting pods with label `sel`.
    fn pod_ips(&self, sel: &str) -> Vec<String> {
        let v = self.json(&["get", "pods", "-l", sel]);
        let mut ips: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips
    }

    /// The ready `IP:port`s of Endpoints `name` (sorted).
    fn endpoints(&self, name: &str) -> Vec<String> {
        let v = self.json(&["get", "endpoints", name]);
        let mut out = Vec::new();
        for s in v["subsets"].as_array().into_iter().flatten() {
            for a in s["addresses"].as_array().into_iter().flatten() {
                for p in s["ports"].as_array().into_iter().flatten() {
                    out.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
                }
            }
        }
        out.sort();
        out
    }
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox:1.36
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {team: a}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: web-named
spec:
  selector: {app: web}
  ports:
  - {name: web, port: 80, targetPort: http}
  - {name: missing, port: 81, targetPort: nope}
"#;

const EXT: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  ports:
  - {port: 9000}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
subsets:
- addresses:
  - {ip: 192.0.2.10}
  ports:
  - {port: 9000}
"#;

const DB: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {port: 5432}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: c
        image: busybox:1.36
"#;

/// `IP:8080` for each IP, sorted as strings.
fn with_port(ips: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ips.iter().map(|ip| format!("{ip}:8080")).collect();
    v.sort();
    v
}

fn timed_scale(t: &T, n: usize) -> Duration {
    let start = Instant::now();
    t.k(&["scale", "deployment/web", &format!("--replicas={n}")])
        .ok();
    t.until(60, &format!("{n} endpoints"), || {
        let ips = t.pod_ips("app=web");
        ips.len() == n && t.endpoints("web") == with_port(&ips)
    });
    start.elapsed()
}

#[test]
fn endpoints_and_slices_follow_pods() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 2, "ep", &[]);
    s.wait_nodes_ready(2);
    s.kubectl(&["create", "namespace", "ep"]).ok();
    let t = T {
        s: &s,
        ns: "ep".into(),
    };
    t.apply(WEB);
    t.until(60, "3 endpoints of 3 ready pods", || {
        let ips = t.pod_ips("app=web");
        ips.len() == 3 && t.endpoints("web") == with_port(&ips)
    });
    let ips = t.pod_ips("app=web");

    // kubectl get endpoints: NAME ENDPOINTS AGE, the IP:port list joined by commas.
    let out = t.k(&["get", "endpoints", "web"]).ok();
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "ENDPOINTS", "AGE"], "{out}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "web", "{out}");
    let mut shown: Vec<&str> = row[1].split(',').collect();
    shown.sort();
    let want = with_port(&ips);
    assert_eq!(shown, want, "{out}");
    let ep = t.json(&["get", "endpoints", "web"]);
    assert_eq!(ep["metadata"]["labels"]["team"], "a", "{ep}");
    assert!(
        ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            .is_string(),
        "{ep}"
    );
    let a = &ep["subsets"][0]["addresses"][0];
    assert_eq!(a["targetRef"]["kind"], "Pod", "{ep}");
    assert!(a["nodeName"].as_str().unwrap().starts_with("ep-"), "{ep}");
    assert_eq!(ep["subsets"][0]["ports"][0]["name"], "http", "{ep}");
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP", "{ep}");

    // kubectl get endpointslices: NAME ADDRESSTYPE PORTS ENDPOINTS AGE.
    let out = t
        .k(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ])
        .ok();
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(lines.next().is_none(), "one slice: {out}");
    assert!(
        row[0].starts_with("web-") && row[0].len() == "web-".len() + 5,
        "{out}"
    );
    assert_eq!(&row[1..3], ["IPv4", "8080"], "{out}");
    let mut shown: Vec<&str> = row[3].split(',').collect();
    shown.sort();
    assert_eq!(shown, ips, "{out}");
    let sl = t.json(&["get", "endpointslices", row[0]]);
    let labels = &sl["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/service-name"], "web", "{sl}");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io",
        "{sl}"
    );
    assert_eq!(labels["team"], "a", "{sl}");
    let owner = &sl["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["controller"]),
        (&"Service".into(), &"web".into(), &true.into()),
        "{sl}"
    );
    assert_eq!(owner["blockOwnerDeletion"], true, "{sl}");
    let e = &sl["endpoints"][0];
    assert_eq!(
        e["conditions"],
        serde_json::json!({"ready": true, "serving": true, "terminating": false}),
        "{sl}"
    );
    assert_eq!(e["targetRef"]["kind"], "Pod", "{sl}");
    assert!(e["nodeName"].is_string(), "{sl}");
    assert_eq!(sl["ports"][0]["name"], "http", "{sl}");

    // The named targetPort resolves to the container port; the missing one is left out.
    t.until(10, "web-named endpoints", || {
        t.endpoints("web-named") == want
    });
    let named = t.json(&["get", "endpoints", "web-named"]);
    assert_eq!(
        named["subsets"].as_array().map(Vec::len),
        Some(1),
        "{named}"
    );
    assert_eq!(
        named["subsets"][0]["ports"].as_array().map(Vec::len),
        Some(1),
        "{named}"
    );

    // Scale up and down: the Endpoints follow.
    let up = timed_scale(&t, 5);
    // Over 100 endpoints: more slices of at most 100 each, the same endpoints in all.
    let big = timed_scale(&t, 130);
    t.until(20, "130 endpoints in slices of at most 100", || {
        let v = t.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ]);
        let sizes: Vec<usize> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .collect();
        // As kube's reconciler, a batch that does not fit the room left in a slice goes
        // into a new one (no rebalancing): 100 + 30 when one sync sees them all.
        sizes.len() >= 2 && sizes.iter().all(|n| *n <= 100) && sizes.iter().sum::<usize>() == 130
    });
    let out = t
        .k(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ])
        .ok();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        rows.len() >= 2 && rows.iter().all(|r| r.contains(" more...")),
        "{out}"
    );
    let out = t.k(&["get", "endpoints", "web"]).ok();
    assert!(out.contains(" + 127 more..."), "{out}");
    let down = timed_scale(&t, 1);
    println!(
        "Endpoints updated after kubectl scale: 3→5 in {:.0} ms, 5→130 in {:.0} ms, 130→1 in {:.0} ms",
        up.as_secs_f64() * 1000.0,
        big.as_secs_f64() * 1000.0,
        down.as_secs_f64() * 1000.0
    );
    t.until(10, "one slice endpoint", || {
        let v = t.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ]);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        items.len() == 1 && items[0]["endpoints"].as_array().map(Vec::len) == Some(1)
    });

    // A selector-less service: its hand-made Endpoints stay as they are, no slices.
    t.apply(EXT);
    let before = t.json(&["get", "endpoints", "ext"]);
    // Nothing changes meanwhile: the controllers write nothing (no update loop).
    let rv = |args: &[&str]| t.json(args)["metadata"]["resourceVersion"].clone();
    let named_rv = rv(&["get", "endpoints", "web-named"]);
    let slice_rv = rv(&["get", "endpointslices", row[0]]);
    assert!(
        slice_rv.is_string(),
        "web's slice was updated in place, not replaced"
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = t.json(&["get", "endpoints", "ext"]);
    assert_eq!(named_rv, rv(&["get", "endpoints", "web-named"]));
    assert_eq!(slice_rv, rv(&["get", "endpointslices", row[0]]));
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "{after}"
    );
    assert_eq!(
        after["subsets"][0]["addresses"][0]["ip"], "192.0.2.10",
        "{after}"
    );
    let out = t
        .k(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=ext",
        ])
        .ok();
    assert!(out.trim().is_empty(), "{out}");

    // A headless service of a StatefulSet: a hostname per address, the headless label.
    t.apply(DB);
    t.until(60, "db endpoints with hostnames", || {
        let v = t.json(&["get", "endpoints", "db"]);
        let mut hosts: Vec<String> = v["subsets"][0]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["hostname"].as_str().map(str::to_string))
            .collect();
        hosts.sort();
        hosts == ["db-0", "db-1"]
    });
    let db = t.json(&["get", "endpoints", "db"]);
    assert_eq!(
        db["metadata"]["labels"]["service.kubernetes.io/headless"], "",
        "{db}"
    );
    t.until(10, "db slice with hostnames", || {
        let v = t.json(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=db",
        ]);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let mut hosts: Vec<String> = items
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["hostname"].as_str().map(str::to_string))
            .collect();
        hosts.sort();
        items.len() == 1
            && items[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
            && hosts == ["db-0", "db-1"]
    });

    // Deleting the service takes its Endpoints and slices along; the others stay.
    t.k(&["delete", "service", "web"]).ok();
    t.until(20, "web's Endpoints and slices gone", || {
        let ep = t.k(&["get", "endpoints", "web"]);
        let sl = t
            .k(&[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "name",
            ])
            .ok();
        ep.code != 0 && ep.stderr.contains("NotFound") && sl.trim().is_empty()
    });
    assert_eq!(t.endpoints("web-named").len(), 1);
    t.k(&["get", "endpoints", "ext"]).ok();
}

/// The `kubernetes` Service's Endpoints and EndpointSlice carry the API server's advertised
/// address and its real port (kube-apiserver's endpoint reconciler), so pods reach it through
/// the service proxy.
#[test]
fn kubernetes_service_endpoints_are_the_api_server() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let port = s.port.to_string();
    let ep = s
        .kubectl(&[
            "get",
            "endpoints",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.subsets[0].ports[0].port} {.subsets[0].addresses[0].ip} {.metadata.labels}",
        ])
        .ok();
    assert!(ep.starts_with(&format!("{port} ")), "{ep}");
    assert!(ep.contains("skip-mirror"), "{ep}");
    let ip = ep.split_whitespace().nth(1).unwrap_or("").to_string();
    assert!(
        ip.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| !a.is_loopback()),
        "{ep}"
    );
    let slice = s
        .kubectl(&["get", "endpointslice", "kubernetes", "-n", "default", "-o", "jsonpath={.ports[0].port} {.endpoints[0].addresses[0]} {.metadata.labels.kubernetes\\.io/service-name}"])
        .ok();
    assert_eq!(slice, format!("{port} {ip} kubernetes"));
    // The controllers leave the selector-less service's objects alone.
    std::thread::sleep(Duration::from_secs(2));
    let again = s
        .kubectl(&[
            "get",
            "endpointslices",
            "-n",
            "default",
            "-l",
            "kubernetes.io/service-name=kubernetes",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(again.trim(), "endpointslice.discovery.k8s.io/kubernetes");
}
