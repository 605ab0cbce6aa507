//! The scheduler end to end on simulated nodes (`capstan agent --simulate`), driven with the
//! real kubectl: placement rules, spreading, preemption with nominatedNodeName and graceful
//! victims, PDB-aware victim choice, a second scheduler (`capstan scheduler`).

mod common;

use common::{binary, Server, Simulator};
use serde_json::Value;
use std::process::{Child, Command};
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

    fn apply(&self, yaml: &str) {
        self.s
            .kubectl_stdin(&["apply", "-n", &self.ns, "-f", "-"], yaml)
            .ok();
    }

    fn pod(&self, name: &str) -> Value {
        let out = self
            .s
            .kubectl(&["get", "pod", name, "-n", &self.ns, "-o", "json"]);
        serde_json::from_str(&out.stdout).unwrap_or(Value::Null)
    }

    fn pods(&self) -> Vec<Value> {
        let out = self
            .s
            .kubectl(&["get", "pods", "-n", &self.ns, "-o", "json"]);
        serde_json::from_str::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    fn wait(&self, name: &str, secs: u64, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.pod(name);
            if ok(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "pod {}/{name} not {what} in {secs}s: {p:#}\nevents:\n{}",
                self.ns,
                self.events()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node_of(&self, name: &str) -> String {
        let p = self.wait(name, 30, "bound", |p| p["spec"]["nodeName"].is_string());
        p["spec"]["nodeName"].as_str().unwrap().to_string()
    }

    fn events(&self) -> String {
        self.s.kubectl(&["get", "events", "-n", &self.ns]).stdout
    }

    fn unschedulable(&self, name: &str, msg: &str) {
        self.wait(name, 30, "Unschedulable", |p| {
            condition(p, "PodScheduled").is_some_and(|c| {
                c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == msg
            })
        });
    }
}

fn condition(p: &Value, t: &str) -> Option<Value> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .cloned()
}

fn pod_yaml(name: &str, extra_spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\nspec:\n{extra_spec}  containers: [{{name: c, image: busybox:1.36}}]\n---\n")
}

/// nodeSelector and node affinity (both must hold), taints and tolerations, extended
/// resources, and kube-scheduler's messages for pods that fit nowhere.
fn placement(s: &Server) {
    let t = T::new(s, "placement");
    t.apply(&pod_yaml("ssd", "  nodeSelector: {group: ssd}\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: disktype, operator: In, values: [ssd]}]}]}}}\n"));
    t.apply(&pod_yaml("both", "  nodeSelector: {group: ssd}\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: disktype, operator: NotIn, values: [ssd]}]}]}}}\n"));
    t.apply(&pod_yaml("gpu", "  tolerations: [{key: gpu, operator: Equal, value: \"yes\", effect: NoSchedule}]\n  nodeSelector: {group: gpu}\n"));
    t.apply(&pod_yaml(
        "gpu-untolerated",
        "  nodeSelector: {group: gpu}\n",
    ));
    t.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: two-gpus}\nspec:\n  tolerations: [{operator: Exists}]\n  containers: [{name: c, image: busybox:1.36, resources: {limits: {nvidia.com/gpu: 2}}}]\n");
    t.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: three-gpus}\nspec:\n  tolerations: [{operator: Exists}]\n  containers: [{name: c, image: busybox:1.36, resources: {limits: {nvidia.com/gpu: 3}}}]\n");
    assert!(t.node_of("ssd").starts_with("ssd-"));
    assert_eq!(t.node_of("gpu"), "gpu-0");
    assert_eq!(t.node_of("two-gpus"), "gpu-0");
    t.wait("ssd", 30, "Running", |p| p["status"]["phase"] == "Running");
    let n = s
        .kubectl(&["get", "nodes", "-o", "name"])
        .stdout
        .lines()
        .count();
    // Only the ssd nodes pass the selector, and the affinity then rules them out; the gpu
    // node's taint is checked first.
    t.unschedulable("both", &format!(
        "0/{n} nodes are available: 1 node(s) had untolerated taint {{gpu: yes}}, {} node(s) didn't match Pod's node affinity/selector. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling..",
        n - 1
    ));
    t.unschedulable("gpu-untolerated", &format!(
        "0/{n} nodes are available: 1 node(s) had untolerated taint {{gpu: yes}}, {} node(s) didn't match Pod's node affinity/selector. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling..",
        n - 1
    ));
    // Insufficient resources could be solved by preemption, but nothing of lower priority runs.
    t.unschedulable("three-gpus", &format!(
        "0/{n} nodes are available: {n} Insufficient nvidia.com/gpu. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod.."
    ));
    let ev = t.events();
    assert!(
        ev.contains("FailedScheduling")
            && ev.contains("Successfully assigned placement/ssd to ssd-"),
        "{ev}"
    );
    // Scheduling gates hold a pod back until they are removed.
    t.apply(&pod_yaml(
        "gated",
        "  schedulingGates: [{name: example.com/wait}]\n  nodeSelector: {group: ssd}\n",
    ));
    t.wait("gated", 30, "SchedulingGated", |p| {
        condition(p, "PodScheduled").is_some_and(|c| {
            c["reason"] == "SchedulingGated"
                && c["message"] == "Scheduling is blocked due to non-empty scheduling gates"
        })
    });
    let get = s.kubectl(&["get", "pod", "gated", "-n", "placement"]).ok();
    assert!(get.contains("SchedulingGated"), "{get}");
    assert!(t.pod("gated")["spec"]["nodeName"].is_null());
    let url = format!("{}/api/v1/namespaces/placement/pods/gated/binding", s.url());
    let body = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"gated"},"target":{"kind":"Node","name":"ssd-0"}}"#;
    let (code, out) = s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        &url,
    ]);
    assert_eq!(code, 409, "{out}");
    assert!(out.contains("has non-empty .spec.schedulingGates"), "{out}");
    s.kubectl(&[
        "patch",
        "pod",
        "gated",
        "-n",
        "placement",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/schedulingGates"}]"#,
    ])
    .ok();
    assert!(t.node_of("gated").starts_with("ssd-"));
    // A label added to a node makes the waiting pod schedulable (a node update is a hint).
    s.kubectl(&["label", "node", "ssd-1", "disktype=hdd", "--overwrite"])
        .ok();
    assert_eq!(t.node_of("both"), "ssd-1");
}

/// Required anti-affinity puts one pod per node; topology spread balances zones; preferred
/// node affinity picks the preferred nodes.
fn spreading(s: &Server) {
    let t = T::new(s, "spreading");
    let anti = "  nodeSelector: {group: zone}\n  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {role: web}}, topologyKey: kubernetes.io/hostname}]}}\n";
    let mut yaml = String::new();
    for i in 0..4 {
        yaml += &pod_yaml(&format!("web-{i}"), anti).replace("labels: {", "labels: {role: web, ");
    }
    t.apply(&yaml);
    let mut nodes: Vec<String> = (0..4)
        .filter_map(|i| {
            let p = t.pod(&format!("web-{i}"));
            p["spec"]["nodeName"].as_str().map(String::from)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        nodes = t
            .pods()
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from))
            .collect();
    }
    nodes.sort();
    assert_eq!(nodes, ["zone-0", "zone-1", "zone-2"], "{}", t.events());
    let pending = t
        .pods()
        .into_iter()
        .find(|p| p["spec"]["nodeName"].is_null())
        .expect("one web pod pending");
    let name = pending["metadata"]["name"].as_str().unwrap().to_string();
    t.wait(&name, 30, "Unschedulable", |p| {
        condition(p, "PodScheduled").is_some_and(|c| {
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("3 node(s) didn't match pod anti-affinity rules"))
        })
    });
    // Topology spread, maxSkew 1 over three zones: six pods, two per zone.
    let spread = "  nodeSelector: {group: zone}\n  topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {role: spread}}}]\n";
    let mut yaml = String::new();
    for i in 0..6 {
        yaml += &pod_yaml(&format!("spread-{i}"), spread)
            .replace("labels: {", "labels: {role: spread, ");
    }
    t.apply(&yaml);
    let mut per_node = std::collections::BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(t.node_of(&format!("spread-{i}")))
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_node:?}"
    );
    // Preferred node affinity: no requirement, the ssd nodes win.
    t.apply(&pod_yaml("prefers-ssd", "  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, preference: {matchExpressions: [{key: disktype, operator: In, values: [ssd]}]}}]}}\n"));
    assert!(t.node_of("prefers-ssd").starts_with("ssd-"));
}

/// A high-priority pod preempts: the victim is chosen to avoid a PDB violation, deleted
/// gracefully with a Preempted event, the preemptor nominated and then bound there; pods of
/// equal priority are never preempted.
fn preemption(s: &Server) {
    let t = T::new(s, "preemption");
    t.apply("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: sched-test-low}\nvalue: 100\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: sched-test-high}\nvalue: 1000\n");
    let low = |name: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\nspec:\n  priorityClassName: sched-test-low\n  nodeSelector: {{group: small}}\n  containers: [{{name: c, image: busybox:1.36, resources: {{requests: {{cpu: 800m}}}}}}]\n---\n")
    };
    t.apply(&(low("low-a") + &low("low-b")));
    let (a, b) = (t.node_of("low-a"), t.node_of("low-b"));
    assert_ne!(a, b);
    t.apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: keep-b}\nspec:\n  minAvailable: 1\n  selector: {matchLabels: {app: low-b}}\n");
    std::thread::sleep(Duration::from_secs(1));
    // Equal priority never preempts.
    t.apply(&low("low-c"));
    // Eight nodes: the two small ones are full of equal-priority pods.
    t.unschedulable("low-c", "0/8 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 2 Insufficient cpu, 5 node(s) didn't match Pod's node affinity/selector. preemption: 0/8 nodes are available: 2 No preemption victims found for incoming pod, 6 Preemption is not helpful for scheduling..");
    let uid_a = t.pod("low-a")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    t.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: high}\nspec:\n  priorityClassName: sched-test-high\n  nodeSelector: {group: small}\n  containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: 800m}}}]\n");
    let high = t.wait("high", 60, "bound", |p| p["spec"]["nodeName"].is_string());
    assert_eq!(
        high["spec"]["nodeName"],
        a.as_str(),
        "the victim is the pod no PDB protects"
    );
    assert_eq!(high["status"]["nominatedNodeName"], a.as_str());
    let ev = t.events();
    let uid_high = high["metadata"]["uid"].as_str().unwrap();
    assert!(
        ev.contains(&format!("Preempted by pod {uid_high} on node {a}")),
        "{ev}"
    );
    // low-a is gone (or going), low-b untouched.
    let gone = t.pod("low-a");
    assert!(
        gone.is_null()
            || gone["metadata"]["uid"] != uid_a.as_str()
            || gone["metadata"]["deletionTimestamp"].is_string(),
        "{gone:#}"
    );
    assert_eq!(t.pod("low-b")["metadata"]["deletionTimestamp"], Value::Null);
    // low-c, equal in priority to the remaining pods, still waits.
    assert!(t.pod("low-c")["spec"]["nodeName"].is_null());
    t.s.kubectl(&[
        "delete",
        "priorityclass",
        "sched-test-low",
        "sched-test-high",
    ])
    .ok();
}

/// `capstan scheduler --scheduler-name` serves pods naming it; the default scheduler leaves
/// them alone; a configuration file gives profiles with their own scoring.
fn second_scheduler(s: &Server) {
    let t = T::new(s, "second");
    let config = s.dir.path().join("sched-config.yaml");
    std::fs::write(&config, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: my-scheduler\n- schedulerName: bin-packer\n  pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: MostAllocated\n        resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]\n").unwrap();
    let log = std::fs::File::create(s.dir.path().join("second-scheduler.log")).unwrap();
    let child = Command::new(binary())
        .args(["scheduler", "--kubeconfig"])
        .arg(&s.kubeconfig)
        .arg("--scheduler-config")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start capstan scheduler");
    let mut child = KillOnDrop(child);
    t.apply(&pod_yaml(
        "mine",
        "  schedulerName: my-scheduler\n  nodeSelector: {group: ssd}\n",
    ));
    t.apply(&pod_yaml("nobodys", "  schedulerName: no-such-scheduler\n"));
    assert!(t.node_of("mine").starts_with("ssd-"));
    let ev = s
        .kubectl(&["get", "events", "-n", "second", "-o", "json"])
        .stdout;
    let ev: Value = serde_json::from_str(&ev).unwrap();
    let scheduled = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Scheduled")
        .cloned();
    assert_eq!(scheduled.unwrap()["source"]["component"], "my-scheduler");
    // Most-allocated packs: the second pod joins the first one's node.
    let packed = "  schedulerName: bin-packer\n  nodeSelector: {group: zone}\n";
    let req = "containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: 100m, memory: 64Mi}}}]";
    t.apply(
        &pod_yaml("pack-1", packed).replace("containers: [{name: c, image: busybox:1.36}]", req),
    );
    let first = t.node_of("pack-1");
    t.apply(
        &pod_yaml("pack-2", packed).replace("containers: [{name: c, image: busybox:1.36}]", req),
    );
    assert_eq!(t.node_of("pack-2"), first);
    std::thread::sleep(Duration::from_secs(2));
    assert!(t.pod("nobodys")["spec"]["nodeName"].is_null());
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "capstan scheduler exited"
    );
}

/// A child process killed (SIGTERM) and reaped on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// pods/binding refuses a missing pod (404) and a pod already bound (409), with kube's texts.
fn binding_errors(s: &Server) {
    let bind = |pod: &str| {
        let url = format!("{}/api/v1/namespaces/placement/pods/{pod}/binding", s.url());
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{pod}"}},"target":{{"kind":"Node","name":"zone-0"}}}}"#
        );
        s.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            &url,
        ])
    };
    let (code, body) = bind("no-such-pod");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains(r#"pods \"no-such-pod\" not found"#), "{body}");
    let (code, body) = bind("ssd");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is already assigned to node"), "{body}");
}

#[test]
fn scheduler_on_simulated_nodes() {
    let s = Server::start();
    let _ssd = Simulator::start(&s, 2, "ssd", &["--sim-labels", "group=ssd,disktype=ssd"]);
    let _gpu = Simulator::start(
        &s,
        1,
        "gpu",
        &[
            "--sim-labels",
            "group=gpu",
            "--sim-taints",
            "gpu=yes:NoSchedule",
            "--sim-extended",
            "nvidia.com/gpu=2",
        ],
    );
    let _zone = Simulator::start(
        &s,
        3,
        "zone",
        &["--sim-labels", "group=zone", "--sim-zones", "3"],
    );
    let _small = Simulator::start(
        &s,
        2,
        "small",
        &["--sim-labels", "group=small", "--sim-cpu", "1"],
    );
    s.wait_nodes_ready(8);
    placement(&s);
    binding_errors(&s);
    spreading(&s);
    preemption(&s);
    second_scheduler(&s);
}
