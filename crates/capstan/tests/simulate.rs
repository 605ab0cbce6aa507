//! Simulated nodes end to end: `capstan server --disable-agent` and `capstan agent --simulate 3`
//! joined with the server's token, driven with the real kubectl. The nodes are Ready with the
//! capacity, labels and taints of the flags; a bare pod is bound by the server's scheduler to
//! one of them and reported Running (IP from the node's podCIDR, fake container ID); `kubectl
//! delete pod` completes; a pod annotated to complete reaches Succeeded; leases are renewed;
//! SIGTERM stops the simulator and leaves the nodes registered. Needs no root or containerd.

mod common;

use common::{eventually, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

const PREFIX: &str = "simtest";

fn json(s: &Server, args: &[&str]) -> Value {
    let out = s.kubectl(args).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn ready(node: &Value) -> Option<&Value> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// "100.64.1.0/24" contains "100.64.1.9".
fn in_cidr24(ip: &str, cidr: &str) -> bool {
    let net = cidr.trim_end_matches("0/24");
    cidr.ends_with(".0/24") && ip.starts_with(net) && ip.len() > net.len()
}

const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  tolerations:
  - {key: dedicated, operator: Equal, value: sim, effect: NoSchedule}
  initContainers:
  - {name: init, image: busybox}
  containers:
  - name: app
    image: busybox:1.36
    resources:
      requests: {cpu: 500m, memory: 64Mi, example.com/dongle: "1"}
      limits: {example.com/dongle: "1"}
"#;

const INTOLERANT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: intolerant
spec:
  containers:
  - {name: app, image: busybox:1.36}
"#;

const JOB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: finishes
  annotations:
    sim.capstan.io/complete-after-seconds: "1"
spec:
  restartPolicy: Never
  tolerations:
  - {operator: Exists}
  containers:
  - {name: work, image: busybox:1.36}
"#;

#[test]
fn simulated_nodes_register_run_pods_and_renew_leases() {
    let s = Server::start();
    let mut sim = Simulator::start(
        &s,
        3,
        PREFIX,
        &[
            "--sim-cpu",
            "8",
            "--sim-memory",
            "16Gi",
            "--sim-pods",
            "50",
            "--sim-extended",
            "example.com/dongle=4",
            "--sim-labels",
            "tier=sim,example.com/rack=r1",
            "--sim-zones",
            "2",
            "--sim-taints",
            "dedicated=sim:NoSchedule",
            // Status re-posted with every Lease renewal (a kubelet's is every 5 min).
            "--sim-status-seconds",
            "10",
        ],
    );
    let started = Instant::now();

    // Three Ready nodes, as `kubectl get nodes` shows them.
    let table = eventually(30, || {
        if let Some(status) = sim.exited() {
            panic!("the simulator exited ({status}):\n{}", sim.log());
        }
        let out = s.kubectl(&["get", "nodes", "--no-headers"]).ok();
        let ready: Vec<&str> = out
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[0].starts_with("simtest-") && f[1] == "Ready"
            })
            .collect();
        (ready.len() == 3).then(|| out.clone())
    });
    let names: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        vec!["simtest-0", "simtest-1", "simtest-2"],
        "{table}"
    );
    eprintln!("3 nodes Ready after {:?}", started.elapsed());

    // Capacity, labels, taints, conditions, addresses as the flags and a kubelet say.
    let nodes = json(&s, &["get", "nodes", "-o", "json"]);
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let mut cidrs = Vec::new();
    let mut ips = Vec::new();
    for (i, n) in items.iter().enumerate() {
        let name = n["metadata"]["name"].as_str().unwrap();
        assert_eq!(name, format!("{PREFIX}-{i}"));
        let want = serde_json::json!({"cpu": "8", "memory": "16Gi", "pods": "50", "example.com/dongle": "4"});
        assert_eq!(n["status"]["capacity"], want, "{name} capacity");
        assert_eq!(n["status"]["allocatable"], want, "{name} allocatable");
        let labels = &n["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert!(labels["kubernetes.io/arch"].is_string());
        assert_eq!(labels["node.kubernetes.io/instance-type"], "simulated");
        assert_eq!(labels["tier"], "sim");
        assert_eq!(labels["example.com/rack"], "r1");
        assert_eq!(
            labels["topology.kubernetes.io/zone"],
            format!("zone-{}", i % 2)
        );
        assert_eq!(
            n["spec"]["taints"],
            serde_json::json!([{"key": "dedicated", "value": "sim", "effect": "NoSchedule"}])
        );
        let r = ready(n).expect("a Ready condition");
        assert_eq!(
            (&r["status"], &r["reason"]),
            (&"True".into(), &"KubeletReady".into())
        );
        for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = n["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .unwrap_or_else(|| panic!("{name} lacks {t}"));
            assert_eq!(c["status"], "False", "{name} {t}");
        }
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.32.4+capstan");
        assert_eq!(n["status"]["nodeInfo"]["operatingSystem"], "linux");
        let ip = n["status"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .unwrap()
            .to_string();
        assert!(
            ip.starts_with("127."),
            "{name}: InternalIP {ip} must be loopback"
        );
        let cidr = n["spec"]["podCIDR"].as_str().unwrap().to_string();
        assert!(cidr.ends_with("/24"), "{cidr}");
        cidrs.push(cidr);
        ips.push(ip);
    }
    cidrs.sort();
    cidrs.dedup();
    ips.sort();
    ips.dedup();
    assert_eq!(
        (cidrs.len(), ips.len()),
        (3, 3),
        "distinct podCIDRs and IPs"
    );

    // A bare pod: bound by the built-in scheduler to a simulated node, then Running.
    s.kubectl_stdin(&["apply", "-f", "-"], WEB).ok();
    s.kubectl_stdin(&["apply", "-f", "-"], INTOLERANT).ok();
    let waited = s.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    assert_eq!(
        waited.code,
        0,
        "web not Ready: {}\n{}\nsimulator log:\n{}",
        waited.stderr,
        s.kubectl(&["get", "pod", "web", "-o", "yaml"]).stdout,
        sim.log()
    );
    let pod = json(&s, &["get", "pod", "web", "-o", "json"]);
    let node = pod["spec"]["nodeName"].as_str().unwrap();
    assert!(node.starts_with("simtest-"), "bound to {node}");
    let st = &pod["status"];
    assert_eq!(st["phase"], "Running");
    let n = items
        .iter()
        .find(|n| n["metadata"]["name"] == node)
        .unwrap();
    let pod_ip = st["podIP"].as_str().unwrap();
    let cidr = n["spec"]["podCIDR"].as_str().unwrap();
    assert!(in_cidr24(pod_ip, cidr), "pod IP {pod_ip} not in {cidr}");
    assert_eq!(
        st["hostIP"], n["status"]["addresses"][0]["address"],
        "hostIP is the node's InternalIP"
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let c = &st["containerStatuses"][0];
    assert_eq!(c["containerID"], format!("sim://{uid}-app"));
    assert_eq!((&c["ready"], &c["started"]), (&true.into(), &true.into()));
    assert!(c["state"]["running"]["startedAt"].is_string());
    assert!(c["imageID"].as_str().unwrap().contains("@sha256:"));
    assert_eq!(
        st["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let conds: Vec<(String, String)> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        assert!(
            conds.contains(&(t.to_string(), "True".to_string())),
            "{t} not True: {conds:?}"
        );
    }
    let wide = s.kubectl(&["get", "pod", "web", "-o", "wide"]).ok();
    assert!(
        wide.contains("Running") && wide.contains(pod_ip) && wide.contains(node),
        "{wide}"
    );
    // The taint keeps the pod without a toleration off every node.
    let intolerant = json(&s, &["get", "pod", "intolerant", "-o", "json"]);
    assert!(
        intolerant["spec"]["nodeName"].is_null(),
        "a pod without the toleration was bound: {intolerant}"
    );

    // A pod annotated to complete is reported Succeeded.
    s.kubectl_stdin(&["apply", "-f", "-"], JOB_POD).ok();
    let done = s.kubectl(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/finishes",
        "--timeout=60s",
    ]);
    assert_eq!(done.code, 0, "finishes: {}\n{}", done.stderr, sim.log());
    let f = json(&s, &["get", "pod", "finishes", "-o", "json"]);
    assert_eq!(
        f["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );

    // kubectl delete waits until the pod is gone: the simulator finishes the deletion.
    let t0 = Instant::now();
    let del = s.kubectl(&["delete", "pod", "web", "--timeout=60s"]);
    assert_eq!(del.code, 0, "delete: {}\n{}", del.stderr, sim.log());
    assert!(del.stdout.contains("pod \"web\" deleted"), "{}", del.stdout);
    let gone = s.kubectl(&["get", "pod", "web"]);
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    eprintln!("web deleted in {:?}", t0.elapsed());
    s.kubectl(&["delete", "pod", "finishes", "intolerant", "--timeout=60s"])
        .ok();

    // Leases: one per node in kube-node-lease, renewed every 10 s.
    let lease = |name: &str| {
        json(
            &s,
            &["get", "lease", "-n", "kube-node-lease", name, "-o", "json"],
        )
    };
    let first = lease("simtest-1");
    assert_eq!(first["spec"]["holderIdentity"], "simtest-1");
    assert_eq!(first["spec"]["leaseDurationSeconds"], 40);
    let t1 = first["spec"]["renewTime"].as_str().unwrap().to_string();
    let t2 = eventually(30, || {
        let t = lease("simtest-1")["spec"]["renewTime"]
            .as_str()
            .unwrap()
            .to_string();
        (t > t1).then_some(t)
    });
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    let gap = parse(&t2) - parse(&t1);
    assert!(
        gap >= chrono::Duration::seconds(5) && gap <= chrono::Duration::seconds(15),
        "renewed {t1} → {t2}"
    );
    let leases = s
        .kubectl(&["get", "leases", "-n", "kube-node-lease", "--no-headers"])
        .ok();
    assert_eq!(leases.lines().count(), 3, "{leases}");
    // Status re-posts move the heartbeat, not the transition.
    let node1 = json(&s, &["get", "node", "simtest-1", "-o", "json"]);
    let before = &items[1];
    let (r0, r1) = (ready(before).unwrap(), ready(&node1).unwrap());
    assert_eq!(r0["lastTransitionTime"], r1["lastTransitionTime"]);
    assert_ne!(
        r0["lastHeartbeatTime"], r1["lastHeartbeatTime"],
        "status not re-posted: {r1}"
    );

    // SIGTERM: the simulator stops; its nodes stay registered.
    let status = sim.terminate().expect("the simulator stops on SIGTERM");
    assert!(status.success(), "exit status {status}");
    std::thread::sleep(Duration::from_millis(200));
    let after = s.kubectl(&["get", "nodes", "--no-headers"]).ok();
    assert_eq!(after.lines().count(), 3, "{after}");
}

#[test]
fn bad_simulator_flags_are_refused_before_joining() {
    let out = std::process::Command::new(common::binary())
        .args([
            "agent",
            "--server",
            "https://127.0.0.1:1",
            "--token",
            "K10abc::server:secret",
            "--simulate",
            "2",
            "--sim-taints",
            "dedicated=sim:Sometimes",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid taint effect"), "{err}");
    // The --sim-* flags need --simulate.
    let out = std::process::Command::new(common::binary())
        .args(["agent", "--server", "https://127.0.0.1:1", "--sim-cpu", "4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--simulate"), "{err}");
}
