//! Pods run as real containers through CRI on the server's own node, driven with the real
//! kubectl: shared network and emptyDir between containers, secrets as env and tmpfs files
//! (created after the pod), restart policies with the kubelet's back-off spacing, exit codes
//! and termination messages, OOM kills, probes, init containers in order, preStop and the
//! grace period, configuration errors, and an agent restart that adopts running containers.
//! Needs root and containerd (NOTICE and skip otherwise). All scenarios share one server and
//! run concurrently, each in its own namespace.

mod common;

use common::{eventually, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

fn prerequisites() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let have = |b: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let ok = root
        && have("containerd")
        && have("runc")
        && have("gcc")
        && std::path::Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("NOTICE: needs root, containerd, runc, gcc and busybox-static; skipped");
    }
    ok
}

const NODE: &str = "capstan-pods";

struct T<'a> {
    s: &'a Server,
    ns: String,
}

impl T<'_> {
    fn apply(&self, yaml: &str) {
        let y = yaml.replace("NODE", NODE);
        self.s
            .kubectl_stdin(&["apply", "-n", &self.ns, "-f", "-"], &y)
            .ok();
    }

    fn pod(&self, name: &str) -> Value {
        let out = self
            .s
            .kubectl(&["get", "pod", "-n", &self.ns, name, "-o", "json"])
            .ok();
        serde_json::from_str(&out).unwrap()
    }

    /// Wait until `f` holds for the pod; panic with the pod and its events otherwise.
    fn wait(&self, name: &str, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.pod(name);
            if f(&p) {
                return p;
            }
            if Instant::now() > deadline {
                let ev = self.s.kubectl(&["get", "events", "-n", &self.ns]).stdout;
                panic!(
                    "{}/{name}: {what} not reached in {secs}s\n{}\nevents:\n{ev}",
                    self.ns,
                    serde_json::to_string_pretty(&p["status"]).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn events(&self) -> String {
        self.s
            .kubectl(&[
                "get",
                "events",
                "-n",
                &self.ns,
                "-o",
                "custom-columns=R:.reason,M:.message,C:.count",
            ])
            .ok()
    }

    /// What the container printed (its current run), through `kubectl logs`.
    fn log(&self, pod: &str, container: &str) -> String {
        let o = self
            .s
            .kubectl(&["logs", "-n", &self.ns, pod, "-c", container]);
        o.stdout.trim_end().to_string()
    }

    #[allow(dead_code)] // kept for scenarios that exec into a pod
    fn exec(&self, pod: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", "-n", &self.ns, pod, "--"];
        args.extend_from_slice(cmd);
        self.s.kubectl(&args).ok()
    }
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}

fn cstatus<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|a| {
        a.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn shared_network_and_volume(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  nodeName: NODE
  containers:
  - name: web
    image: busybox:1.36
    command: ["sh", "-c", "echo served-by-$(POD_NAME) > /shared/index.html; exec httpd -f -p 8080 -h /shared"]
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: client
    image: busybox:1.36
    command: ["sh", "-c", "until wget -qO /tmp/got http://localhost:8080/index.html; do sleep 0.2; done; cat /tmp/got; echo host=$(hostname); exec sleep 3600"]
  volumes: [{name: shared, emptyDir: {}}]
"#,
    );
    let p = t.wait("two", 60, "Running and Ready", |p| {
        phase(p) == "Running" && ready(p)
    });
    let ip = p["status"]["podIP"].as_str().unwrap();
    assert!(ip.starts_with("10.42."), "pod IP {ip}");
    assert_eq!(p["status"]["podIPs"][0]["ip"], ip);
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    eventually(20, || {
        t.log("two", "client")
            .contains("served-by-two")
            .then_some(())
    });
    assert!(
        t.log("two", "client").contains("host=two"),
        "hostname is the pod name"
    );
    let wide =
        t.s.kubectl(&["get", "pod", "two", "-n", &t.ns, "-o", "wide"])
            .ok();
    assert!(
        wide.contains("2/2")
            && wide.contains("Running")
            && wide.contains(ip)
            && wide.contains(NODE),
        "{wide}"
    );
    let describe = t.s.kubectl(&["describe", "pod", "two", "-n", &t.ns]).ok();
    for needle in [
        "Started container web",
        "Created container client",
        "already present on machine",
        "kubelet",
    ] {
        assert!(
            describe.contains(needle),
            "describe lacks {needle}:\n{describe}"
        );
    }
}

fn secret_env_and_tmpfs(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sec}
spec:
  nodeName: NODE
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "echo PW=$PW; grep ' /etc/sec ' /proc/mounts; echo file=$(cat /etc/sec/password); exec sleep 3600"]
    env: [{name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}]
    volumeMounts: [{name: s, mountPath: /etc/sec, readOnly: true}]
  volumes: [{name: s, secret: {secretName: db, defaultMode: 0400}}]
"#,
    );
    // The secret does not exist yet: the pod waits in ContainerCreating with a FailedMount event.
    t.wait("sec", 30, "ContainerCreating", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "ContainerCreating"
    });
    eventually(30, || {
        t.events().contains("secret \"db\" not found").then_some(())
    });
    t.s.kubectl(&[
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        &t.ns,
        "--from-literal=password=s3cr3t",
    ])
    .ok();
    t.wait("sec", 60, "Running", |p| phase(p) == "Running");
    eventually(20, || {
        t.log("sec", "c").contains("file=s3cr3t").then_some(())
    });
    let log = t.log("sec", "c");
    assert!(log.contains("PW=s3cr3t"), "{log}");
    assert!(
        log.contains("tmpfs /etc/sec tmpfs ro"),
        "the secret volume is a read-only tmpfs mount: {log}"
    );
}

fn crash_loop_backoff(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  nodeName: NODE
  restartPolicy: OnFailure
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "date +%s >> /data/starts; exit 3"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes: [{name: d, emptyDir: {}}]
"#,
    );
    let mut saw_backoff = false;
    let p = t.wait("crash", 120, "restartCount 3", |p| {
        let c = cstatus(p, "c");
        if c["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            assert!(
                c["state"]["waiting"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("back-off "),
                "{c}"
            );
        }
        c["restartCount"].as_u64().unwrap_or(0) >= 3
    });
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let starts = std::fs::read_to_string(t.s.dir.path().join(format!(
        "agent/pods/{uid}/volumes/kubernetes.io~empty-dir/d/starts"
    )))
    .unwrap();
    let starts: Vec<i64> = starts.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(starts.len() >= 4, "{starts:?}");
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // The kubelet restarts at once, then backs off 10 s, 20 s, … (plus the container's run).
    assert!(gaps[0] <= 3, "first restart is immediate: {gaps:?}");
    assert!((9..=15).contains(&gaps[1]), "then 10 s: {gaps:?}");
    assert!((19..=26).contains(&gaps[2]), "then 20 s: {gaps:?}");
    let c = t.wait("crash", 30, "CrashLoopBackOff", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let c = cstatus(&c, "c");
    saw_backoff |= c["lastState"]["terminated"]["exitCode"] == 3;
    assert!(saw_backoff, "{c}");
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    let get = t.s.kubectl(&["get", "pod", "crash", "-n", &t.ns]).ok();
    assert!(
        get.contains("CrashLoopBackOff") || get.contains("Error"),
        "{get}"
    );
    assert!(
        t.events()
            .contains("Back-off restarting failed container c"),
        "{}",
        t.events()
    );
}

fn never_fails_with_exit_code_and_message(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "echo 'disk full' > /dev/termination-log; exit 7"]
"#,
    );
    let p = t.wait("never", 60, "Failed", |p| phase(p) == "Failed");
    let term = &cstatus(&p, "c")["state"]["terminated"];
    assert_eq!(term["exitCode"], 7, "{term}");
    assert_eq!(term["reason"], "Error");
    assert_eq!(term["message"], "disk full\n");
    assert_eq!(cstatus(&p, "c")["restartCount"], 0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        cstatus(&t.pod("never"), "c")["restartCount"],
        0,
        "Never does not restart"
    );
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers: [{name: c, image: busybox:1.36, command: ["true"]}]
"#,
    );
    let p = t.wait("done", 60, "Succeeded", |p| phase(p) == "Succeeded");
    assert_eq!(
        cstatus(&p, "c")["state"]["terminated"]["reason"],
        "Completed"
    );
}

fn oom_killed(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.36
    # (a second first: containerd watches the cgroup for OOM only once the task runs)
    command: ["sh", "-c", "sleep 1; exec dd if=/dev/zero of=/dev/null bs=200M count=1"]
    resources: {limits: {memory: 32Mi, cpu: 200m}}
"#,
    );
    let p = t.wait("hog", 60, "OOMKilled", |p| {
        cstatus(p, "c")["state"]["terminated"]["reason"] == "OOMKilled"
    });
    let term = &cstatus(&p, "c")["state"]["terminated"];
    assert_eq!(term["reason"], "OOMKilled", "{term}");
    assert_eq!(term["exitCode"], 137);
    assert_eq!(p["status"]["qosClass"], "Guaranteed");
    assert_eq!(phase(&p), "Failed");
}

fn probes(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  nodeName: NODE
  containers:
  - name: live
    image: busybox:1.36
    command: ["sh", "-c", "touch /tmp/alive; sleep 3; rm /tmp/alive; exec sleep 3600"]
    livenessProbe: {exec: {command: ["test", "-f", "/tmp/alive"]}, periodSeconds: 1, failureThreshold: 2}
  - name: ready
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/healthz; sleep 4; exec httpd -f -p 8081 -h /www"]
    readinessProbe: {httpGet: {path: /healthz, port: 8081}, periodSeconds: 1}
  terminationGracePeriodSeconds: 1
"#,
    );
    let p = t.wait("probed", 30, "running, not ready yet", |p| {
        cstatus(p, "ready")["state"]["running"].is_object()
    });
    assert!(!ready(&p), "not Ready before the readiness probe passes");
    t.wait("probed", 40, "ready container Ready", |p| {
        cstatus(p, "ready")["ready"] == true
    });
    let p = t.wait("probed", 60, "liveness restart", |p| {
        cstatus(p, "live")["restartCount"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(cstatus(&p, "ready")["restartCount"], 0);
    let ev = t.events();
    assert!(ev.contains("Liveness probe failed"), "{ev}");
    assert!(
        ev.contains("Container live failed liveness probe, will be restarted"),
        "{ev}"
    );
}

fn init_containers_in_order(t: &T) {
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  nodeName: NODE
  initContainers:
  - {name: first, image: busybox:1.36, command: ["sh", "-c", "echo one >> /w/order"], volumeMounts: [{name: w, mountPath: /w}]}
  - {name: second, image: busybox:1.36, command: ["sh", "-c", "sleep 1; echo two >> /w/order"], volumeMounts: [{name: w, mountPath: /w}]}
  containers:
  - {name: app, image: busybox:1.36, command: ["sh", "-c", "echo three >> /w/order; cat /w/order; exec sleep 3600"], volumeMounts: [{name: w, mountPath: /w}]}
  volumes: [{name: w, emptyDir: {}}]
"#,
    );
    let p = t.wait("init", 60, "Running", |p| phase(p) == "Running");
    let inits = p["status"]["initContainerStatuses"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    for i in inits {
        assert_eq!(i["state"]["terminated"]["reason"], "Completed", "{i}");
    }
    eventually(20, || t.log("init", "app").contains("three").then_some(()));
    assert_eq!(t.log("init", "app"), "one\ntwo\nthree");
}

fn prestop_and_grace(t: &T, host_dir: &std::path::Path) {
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
    lifecycle: {preStop: {exec: {command: ["sh", "-c", "echo stopping > /host/prestop"]}}}
    volumeMounts: [{name: h, mountPath: /host}]
  volumes: [{name: h, hostPath: {path: HOSTDIR, type: DirectoryOrCreate}}]
"#
    .replace("HOSTDIR", host_dir.to_str().unwrap());
    t.apply(&yaml);
    t.wait("graceful", 60, "Running", |p| phase(p) == "Running");
    let start = Instant::now();
    t.s.kubectl(&[
        "delete",
        "pod",
        "graceful",
        "-n",
        &t.ns,
        "--wait=true",
        "--timeout=60s",
    ])
    .ok();
    let took = start.elapsed();
    // sleep ignores SIGTERM as PID 1: the agent waits out the 3 s grace period, then kills it.
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(15),
        "delete took {took:?}"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("prestop")).unwrap(),
        "stopping\n"
    );
}

fn configuration_errors(t: &T) {
    t.s.kubectl(&[
        "create",
        "secret",
        "generic",
        "cfg",
        "-n",
        &t.ns,
        "--from-literal=a=b",
    ])
    .ok();
    t.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nokey}
spec:
  nodeName: NODE
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
    env: [{name: X, valueFrom: {secretKeyRef: {name: cfg, key: missing}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  nodeName: NODE
  securityContext: {runAsNonRoot: true}
  containers: [{name: c, image: busybox:1.36, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: badimage}
spec:
  nodeName: NODE
  containers: [{name: c, image: "127.0.0.1:1/nothing/here:v1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: badcmd}
spec:
  nodeName: NODE
  containers: [{name: c, image: busybox:1.36, command: ["/no/such/binary"]}]
"#,
    );
    let p = t.wait("nokey", 30, "CreateContainerConfigError", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    });
    assert_eq!(
        cstatus(&p, "c")["state"]["waiting"]["message"],
        format!("couldn't find key missing in Secret {}/cfg", t.ns)
    );
    let p = t.wait("nonroot", 30, "CreateContainerConfigError", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    });
    assert!(cstatus(&p, "c")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .starts_with("container has runAsNonRoot and image will run as root"));
    t.wait("badimage", 30, "ErrImagePull", |p| {
        let r = &cstatus(p, "c")["state"]["waiting"]["reason"];
        r == "ErrImagePull" || r == "ImagePullBackOff"
    });
    t.wait("badimage", 40, "ImagePullBackOff", |p| {
        cstatus(p, "c")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    });
    let p = t.wait("badcmd", 60, "a failed start then back-off", |p| {
        let c = cstatus(p, "c");
        c["restartCount"].as_u64().unwrap_or(0) >= 1
            || c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    assert_eq!(
        phase(&p),
        "Running",
        "restartPolicy Always keeps the pod Running: {}",
        p["status"]
    );
    // None of this disturbs other pods of the node (the other scenarios run beside it).
}

#[test]
fn pods_run_as_real_containers() {
    if !prerequisites() {
        return;
    }
    let mut s = Server::start_with_agent(NODE);
    s.import_builtin_images();
    eventually(60, || {
        let o = s.kubectl(&[
            "get",
            "node",
            NODE,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (o.stdout == "True").then_some(())
    });
    let host_dir = tempfile::tempdir().unwrap();
    type Scenario<'a> = (&'a str, Box<dyn Fn(&T) + Send + Sync + 'a>);
    let hd = host_dir.path().to_path_buf();
    let scenarios: Vec<Scenario> = vec![
        ("shared", Box::new(shared_network_and_volume)),
        ("secret", Box::new(secret_env_and_tmpfs)),
        ("crash", Box::new(crash_loop_backoff)),
        ("never", Box::new(never_fails_with_exit_code_and_message)),
        ("oom", Box::new(oom_killed)),
        ("probes", Box::new(probes)),
        ("init", Box::new(init_containers_in_order)),
        ("grace", Box::new(move |t: &T| prestop_and_grace(t, &hd))),
        ("errors", Box::new(configuration_errors)),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|(name, f)| {
                let s = &s;
                scope.spawn(move || {
                    let t = T {
                        s,
                        ns: format!("t-{name}"),
                    };
                    s.kubectl(&["create", "namespace", &t.ns]).ok();
                    eventually(30, || {
                        (s.kubectl(&["get", "serviceaccount", "default", "-n", &t.ns])
                            .code
                            == 0)
                            .then_some(())
                    });
                    f(&t);
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(scenarios.iter())
            .filter_map(|(h, (name, _))| {
                h.join().err().map(|e| {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!("{name}: {msg}")
                })
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "scenarios failed:\n{}\n\nserver log tail:\n{}",
        failures.join("\n\n"),
        tail(&s.log(), 40)
    );

    // Restarting the server (agent included) adopts the running containers.
    let before = s.pod_json("t-shared", "two");
    s.kill9_and_restart();
    std::thread::sleep(Duration::from_secs(3));
    let after: Value = eventually(30, || {
        let p = s.pod_json("t-shared", "two");
        (p["status"]["phase"] == "Running").then_some(p)
    });
    for c in ["web", "client"] {
        assert_eq!(
            cstatus(&before, c)["containerID"],
            cstatus(&after, c)["containerID"],
            "{c} kept running"
        );
        assert_eq!(cstatus(&after, c)["restartCount"], 0);
    }
    s.remove_all_pods();
    assert!(
        s.node_containers().is_empty(),
        "containers left: {:?}",
        s.node_containers()
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

trait PodJson {
    fn pod_json(&self, ns: &str, name: &str) -> Value;
}

impl PodJson for Server {
    fn pod_json(&self, ns: &str, name: &str) -> Value {
        serde_json::from_str(
            &self
                .kubectl(&["get", "pod", name, "-n", ns, "-o", "json"])
                .ok(),
        )
        .unwrap()
    }
}
