//! End-to-end: the real `capstan server` driven by the real kubectl, on the embedded store
//! and on etcd. Each test starts its own server on ports of its own.

mod common;

use common::{eventually, fixture, Backend, Server};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

fn f(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

fn header(out: &str) -> Vec<String> {
    out.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn seed_examples(s: &Server) {
    s.kubectl(&["create", "namespace", "seeds"]).ok();
    for fx in [
        "pdb.yaml",
        "hpa.yaml",
        "priorityclass.yaml",
        "secret-test.yaml",
        "service-registry.yaml",
        "deployment.yaml",
        "pod-secret-env.yaml",
    ] {
        let out = s.kubectl(&["apply", "-n", "seeds", "-f", &f(fx)]).ok();
        assert!(out.contains("created"), "{fx}: {out}");
    }
    // generateName works with create (apply needs a name).
    let out = s
        .kubectl(&["create", "-n", "seeds", "-f", &f("pod-registry.yaml")])
        .ok();
    assert!(out.starts_with("pod/docker-registry-1-"), "{out}");
    // Re-applying unchanged files reports "unchanged".
    let out = s
        .kubectl(&["apply", "-n", "seeds", "-f", &f("pdb.yaml")])
        .ok();
    assert!(
        out.contains("poddisruptionbudget.policy/my-pdb unchanged"),
        "{out}"
    );

    let pdb = s
        .kubectl(&["get", "poddisruptionbudget", "--all-namespaces"])
        .ok();
    assert_eq!(
        header(&pdb),
        [
            "NAMESPACE",
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ],
        "{pdb}"
    );
    assert!(
        pdb.lines()
            .any(|l| l.split_whitespace().take(4).collect::<Vec<_>>()
                == ["seeds", "my-pdb", "2", "N/A"]),
        "{pdb}"
    );
    assert!(
        pdb.lines()
            .any(|l| l.split_whitespace().take(4).collect::<Vec<_>>()
                == ["seeds", "my-pdb-pct", "N/A", "25%"]),
        "{pdb}"
    );

    let hpa = s.kubectl(&["get", "hpa", "-n", "seeds"]).ok();
    assert_eq!(header(&hpa)[..3], ["NAME", "REFERENCE", "TARGETS"], "{hpa}");
    assert!(hpa.contains("ReplicationController/example"), "{hpa}");
    // The autoscaling/v1 object reads back at v1 with its CPU target.
    let v1 = json(
        &s.kubectl(&[
            "get",
            "horizontalpodautoscalers.v1.autoscaling",
            "image-registry",
            "-n",
            "seeds",
            "-o",
            "json",
        ])
        .ok(),
    );
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 75);

    let pc = s.kubectl(&["get", "priorityclass", "high-priority"]).ok();
    assert_eq!(
        header(&pc)[..3],
        ["NAME", "VALUE", "GLOBAL-DEFAULT"],
        "{pc}"
    );
    let nginx = json(
        &s.kubectl(&["get", "pod", "nginx", "-n", "seeds", "-o", "json"])
            .ok(),
    );
    assert_eq!(nginx["spec"]["priority"], 1000000, "priority admission");
    assert_eq!(nginx["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(nginx["spec"]["serviceAccountName"], "default");
    assert_eq!(nginx["status"]["phase"], "Pending");
    assert_eq!(nginx["status"]["qosClass"], "BestEffort");

    // stringData merged into data and never returned.
    let sec = json(
        &s.kubectl(&["get", "secret", "test-secret", "-n", "seeds", "-o", "json"])
            .ok(),
    );
    assert_eq!(sec["data"]["hostname"], "bXlhcHAubXlkb21haW4uY29t");
    assert!(sec.get("stringData").is_none());

    let svc = s
        .kubectl(&["get", "svc", "docker-registry", "-n", "seeds"])
        .ok();
    assert_eq!(
        header(&svc),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{svc}"
    );
    assert!(
        svc.contains("ClusterIP") && svc.contains("5000/TCP") && svc.contains("10.43."),
        "{svc}"
    );

    let pods = s
        .kubectl(&["get", "pods", "-n", "seeds", "-o", "wide"])
        .ok();
    assert_eq!(
        header(&pods),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ],
        "{pods}"
    );
    assert!(
        pods.lines()
            .any(|l| l.starts_with("nginx ") && l.contains("0/1") && l.contains("Pending")),
        "{pods}"
    );
}

fn get_formats(s: &Server) {
    s.kubectl(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .ok();
    let y = s.kubectl(&["get", "cm", "cfg", "-o", "yaml"]).ok();
    assert!(
        y.contains("kind: ConfigMap") && y.contains("a: \"1\""),
        "{y}"
    );
    let jp = s
        .kubectl(&["get", "cm", "cfg", "-o", "jsonpath={.data.b}"])
        .ok();
    assert_eq!(jp, "2");
    let name = s.kubectl(&["get", "cm", "-o", "name"]).ok();
    assert!(name.lines().any(|l| l == "configmap/cfg"), "{name}");
    let all_ns = s.kubectl(&["get", "namespaces"]).ok();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            all_ns
                .lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{all_ns}"
        );
    }
    let svc = json(&s.kubectl(&["get", "svc", "kubernetes", "-o", "json"]).ok());
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    let pcs = s.kubectl(&["get", "pc"]).ok();
    assert!(
        pcs.contains("system-node-critical") && pcs.contains("2000001000"),
        "{pcs}"
    );
    // Label selectors (set-based) and field selectors.
    s.kubectl(&["create", "configmap", "other", "--from-literal=x=y"])
        .ok();
    s.kubectl(&["label", "cm", "cfg", "tier=fe", "env=prod"])
        .ok();
    let sel = s
        .kubectl(&["get", "cm", "-l", "tier in (fe,be),env!=dev", "-o", "name"])
        .ok();
    assert_eq!(sel.trim(), "configmap/cfg");
    let fs = s
        .kubectl(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=other",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(fs.trim(), "configmap/other");
    let bad = s
        .kubectl(&["get", "pods", "--field-selector", "spec.bogus=1"])
        .err();
    assert!(bad.contains("field label not supported"), "{bad}");
    // Pagination.
    let list = json(
        &s.kubectl(&["get", "cm", "--chunk-size=1", "-o", "json"])
            .ok(),
    );
    assert!(list["items"].as_array().unwrap().len() >= 2);
}

fn label_annotate_patch(s: &Server) {
    s.kubectl(&["apply", "-f", &f("deployment.yaml")]).ok();
    s.kubectl(&["label", "deployment", "web", "team=blue"]).ok();
    s.kubectl(&["annotate", "deployment", "web", "note=hello"])
        .ok();
    let d = json(&s.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["metadata"]["labels"]["team"], "blue");
    assert_eq!(d["metadata"]["annotations"]["note"], "hello");
    assert_eq!(d["metadata"]["generation"], 1);
    // label removal with "key-"
    s.kubectl(&["label", "deployment", "web", "team-"]).ok();
    // strategic merge: change one container's image, keep the other.
    s.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}"#,
    ])
    .ok();
    let d = json(&s.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 2, "strategic merge keeps the sidecar");
    assert_eq!(cs[0]["image"], "nginx:1.27");
    assert_eq!(
        d["metadata"]["generation"], 2,
        "spec change bumps generation"
    );
    assert!(d["metadata"]["labels"].get("team").is_none());
    // merge patch replaces lists.
    s.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ])
    .ok();
    // JSON patch.
    s.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ])
    .ok();
    let d = json(&s.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    assert_eq!(d["spec"]["replicas"], 4);
    // Re-apply the file: client-side apply computes a 3-way patch with $setElementOrder.
    let out = s.kubectl(&["apply", "-f", &f("deployment.yaml")]).ok();
    assert!(out.contains("configured"), "{out}");
    let d = json(&s.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    // An invalid patch is a 4xx with a message, not a crash.
    let e = s
        .kubectl(&[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/nope/x","value":1}]"#,
        ])
        .err();
    assert!(e.contains("invalid"), "{e}");
}

fn scale_and_create_protobuf(s: &Server) {
    // kubectl 1.32 sends protobuf bodies for `create deployment`.
    s.kubectl(&[
        "create",
        "deployment",
        "pb",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ])
    .ok();
    let d = json(&s.kubectl(&["get", "deploy", "pb", "-o", "json"]).ok());
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "defaulted");
    s.kubectl(&["scale", "deployment", "pb", "--replicas=5"])
        .ok();
    let r = s
        .kubectl(&["get", "deploy", "pb", "-o", "jsonpath={.spec.replicas}"])
        .ok();
    assert_eq!(r, "5");
    s.kubectl(&[
        "scale",
        "deployment",
        "pb",
        "--current-replicas=5",
        "--replicas=3",
    ])
    .ok();
    let r = s
        .kubectl(&["get", "deploy", "pb", "-o", "jsonpath={.spec.replicas}"])
        .ok();
    assert_eq!(r, "3");
    let e = s
        .kubectl(&[
            "scale",
            "deployment",
            "pb",
            "--current-replicas=9",
            "--replicas=1",
        ])
        .err();
    assert!(e.contains("Expected replicas to be 9, was 3"), "{e}");
    for args in [
        vec!["create", "namespace", "pbns"],
        vec!["create", "secret", "generic", "pbsec", "--from-literal=k=v"],
        vec!["create", "service", "clusterip", "pbsvc", "--tcp=80:8080"],
        vec!["create", "job", "pbjob", "--image=busybox"],
        vec![
            "autoscale",
            "deployment",
            "pb",
            "--min=2",
            "--max=5",
            "--cpu-percent=80",
        ],
    ] {
        s.kubectl(&args).ok();
    }
    let yes = s.kubectl(&["auth", "can-i", "create", "pods"]).ok();
    assert_eq!(yes.trim(), "yes");
}

fn delete_and_wait(s: &Server) {
    s.kubectl(&["create", "configmap", "gone", "--from-literal=a=1"])
        .ok();
    let out = s.kubectl(&["delete", "configmap", "gone"]).ok();
    assert_eq!(out.trim(), "configmap \"gone\" deleted");
    s.kubectl(&["get", "configmap", "gone"]).err();
    // wait --for=delete returns once a finalizer is removed.
    s.kubectl(&["create", "configmap", "fin", "--from-literal=a=1"])
        .ok();
    s.kubectl(&[
        "patch",
        "configmap",
        "fin",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .ok();
    s.kubectl(&["delete", "configmap", "fin", "--wait=false"])
        .ok();
    let held = json(&s.kubectl(&["get", "configmap", "fin", "-o", "json"]).ok());
    assert!(
        held["metadata"]["deletionTimestamp"].is_string(),
        "finalizer holds the object"
    );
    let waiter = {
        let kubeconfig = s.kubeconfig.clone();
        std::thread::spawn(move || {
            std::process::Command::new("/usr/bin/kubectl")
                .env("KUBECONFIG", kubeconfig)
                .args([
                    "--cache-dir",
                    tempfile::tempdir().unwrap().path().to_str().unwrap(),
                ])
                .args(["wait", "--for=delete", "configmap/fin", "--timeout=30s"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.kubectl(&[
        "patch",
        "configmap",
        "fin",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .ok();
    let out = waiter.join().unwrap();
    assert!(
        out.status.success(),
        "wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Namespace deletion removes its content.
    s.kubectl(&["create", "namespace", "doomed"]).ok();
    s.kubectl(&[
        "create",
        "configmap",
        "x",
        "-n",
        "doomed",
        "--from-literal=a=1",
    ])
    .ok();
    s.kubectl(&["delete", "namespace", "doomed", "--timeout=30s"])
        .ok();
    s.kubectl(&["get", "namespace", "doomed"]).err();
}

fn watch_stream(s: &Server) {
    let kubeconfig = s.kubeconfig.clone();
    let mut child = std::process::Command::new("/usr/bin/kubectl")
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "--cache-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        ])
        .args(["get", "configmaps", "-w", "--request-timeout=20s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.kubectl(&["create", "configmap", "watched", "--from-literal=a=1"])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap_or("").starts_with("NAME"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("watched ")), "{text}");
}

fn discovery_and_explain(s: &Server) {
    let ar = s.kubectl(&["api-resources"]).ok();
    for needle in [
        "pods ",
        "deployments ",
        "horizontalpodautoscalers ",
        "poddisruptionbudgets ",
        "priorityclasses ",
        "leases ",
    ] {
        assert!(ar.contains(needle), "api-resources lacks {needle}:\n{ar}");
    }
    assert!(
        ar.lines().any(|l| l.starts_with("pods")
            && l.contains("po")
            && l.contains("true")
            && l.contains("Pod")),
        "{ar}"
    );
    let ex = s.kubectl(&["explain", "pod.spec.containers"]).ok();
    assert!(
        ex.contains("KIND:") && ex.contains("Pod") && ex.contains("image"),
        "{ex}"
    );
    let all = s.kubectl(&["get", "all"]).ok();
    assert!(all.contains("service/kubernetes"), "{all}");
}

fn server_side_apply(s: &Server) {
    let out = s
        .kubectl(&["apply", "--server-side", "-f", &f("deployment.yaml")])
        .ok();
    assert!(out.contains("serverside-applied"), "{out}");
    let d = json(
        &s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .ok(),
    );
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");
    // Another manager changing replicas conflicts unless forced.
    s.kubectl(&["scale", "deployment", "web", "--replicas=3"])
        .ok();
    let e = s
        .kubectl(&["apply", "--server-side", "-f", &f("deployment.yaml")])
        .err();
    assert!(e.contains("conflict"), "{e}");
    s.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &f("deployment.yaml"),
    ])
    .ok();
    let r = s
        .kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
        .ok();
    assert_eq!(r, "2");
}

fn bad_input(s: &Server) {
    let e = s
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
        )
        .err();
    assert!(e.contains("error"), "{e}");
    let e = s.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: c\n    image: busybox\n").err();
    assert!(
        e.contains("is invalid") && e.contains("metadata.name"),
        "{e}"
    );
    let e = s
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocontainers\nspec:\n  containers: []\n",
        )
        .err();
    assert!(e.contains("spec.containers: Required value"), "{e}");
    let e = s
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\ndata:\n  a: b\nbogus: 1\n",
        )
        .err();
    assert!(e.contains("unknown field") && e.contains("bogus"), "{e}");
    let warned = s.kubectl_stdin(
        &["apply", "--validate=warn", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: warned\nbogus: 1\n",
    );
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(
        warned.stderr.contains("Warning: unknown field \"bogus\""),
        "{}",
        warned.stderr
    );
    s.kubectl(&["create", "configmap", "dup", "--from-literal=a=1"])
        .ok();
    let e = s
        .kubectl(&["create", "configmap", "dup", "--from-literal=a=1"])
        .err();
    assert!(
        e.contains("AlreadyExists") || e.contains("already exists"),
        "{e}"
    );
    let e = s.kubectl(&["get", "foos"]).err();
    assert!(
        e.contains("the server doesn't have a resource type \"foos\""),
        "{e}"
    );
    // Pods are immutable except for the fields Kubernetes allows.
    s.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: imm\nspec:\n  containers:\n  - name: c\n    image: busybox\n").ok();
    let e = s
        .kubectl(&[
            "patch",
            "pod",
            "imm",
            "-p",
            r#"{"spec":{"restartPolicy":"Never"}}"#,
        ])
        .err();
    assert!(
        e.contains("Forbidden") && e.contains("pod updates may not change fields"),
        "{e}"
    );
    s.kubectl(&[
        "patch",
        "pod",
        "imm",
        "-p",
        r#"{"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}"#,
    ])
    .ok();
    // Unauthenticated requests get 401.
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/api/v1/pods", s.url()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    // A conflict on a stale resourceVersion.
    let (code, body) = s.curl(&["-X", "PUT", "-H", "Content-Type: application/json", "--data",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","resourceVersion":"1"},"data":{"a":"2"}}"#,
        &format!("{}/api/v1/namespaces/default/configmaps/dup", s.url())]);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("the object has been modified"), "{body}");
}

fn describe(s: &Server) {
    s.kubectl(&["apply", "-f", &f("deployment.yaml")]).ok();
    let d = s.kubectl(&["describe", "deployment", "web"]).ok();
    assert!(
        d.contains("Name:") && d.contains("web") && d.contains("Replicas:"),
        "{d}"
    );
    s.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: desc\nspec:\n  containers:\n  - name: c\n    image: busybox\n").ok();
    let p = s.kubectl(&["describe", "pod", "desc"]).ok();
    assert!(p.contains("Status:") && p.contains("Pending"), "{p}");
}

macro_rules! suite {
    ($modname:ident, $backend:expr) => {
        mod $modname {
            use super::*;
            fn server() -> Option<Server> {
                Server::try_start($backend)
            }
            #[test]
            fn seed_examples_apply_and_print() {
                if let Some(s) = server() {
                    seed_examples(&s)
                }
            }
            #[test]
            fn get_output_formats_and_selectors() {
                if let Some(s) = server() {
                    get_formats(&s)
                }
            }
            #[test]
            fn label_annotate_and_patch() {
                if let Some(s) = server() {
                    label_annotate_patch(&s)
                }
            }
            #[test]
            fn scale_and_protobuf_creates() {
                if let Some(s) = server() {
                    scale_and_create_protobuf(&s)
                }
            }
            #[test]
            fn delete_finalizers_wait_namespaces() {
                if let Some(s) = server() {
                    delete_and_wait(&s)
                }
            }
            #[test]
            fn get_watch_streams_tables() {
                if let Some(s) = server() {
                    watch_stream(&s)
                }
            }
            #[test]
            fn api_resources_explain_get_all() {
                if let Some(s) = server() {
                    discovery_and_explain(&s)
                }
            }
            #[test]
            fn server_side_apply_conflicts() {
                if let Some(s) = server() {
                    server_side_apply(&s)
                }
            }
            #[test]
            fn bad_input_gets_clear_errors() {
                if let Some(s) = server() {
                    bad_input(&s)
                }
            }
            #[test]
            fn describe_objects() {
                if let Some(s) = server() {
                    describe(&s)
                }
            }
        }
    };
}

suite!(embedded, Backend::Embedded);
suite!(etcd, Backend::Etcd);

/// kubectl 1.28 and 1.33, run directly (not through the dispatcher).
#[test]
fn older_and_newer_kubectl() {
    let s = Server::start();
    for v in ["1.28", "1.33"] {
        let bin = format!("/usr/lib/google-cloud-sdk/bin/kubectl.{v}");
        if !std::path::Path::new(&bin).exists() {
            eprintln!("NOTICE: {bin} not installed; skipped");
            continue;
        }
        let name = format!("web{}", v.replace('.', ""));
        s.kubectl_with(&bin, &["apply", "-f", &f("priorityclass.yaml")], None)
            .ok();
        s.kubectl_with(
            &bin,
            &["create", "deployment", &name, "--image=nginx"],
            None,
        )
        .ok();
        s.kubectl_with(&bin, &["scale", "deployment", &name, "--replicas=3"], None)
            .ok();
        let out = s
            .kubectl_with(&bin, &["get", "deployment", &name], None)
            .ok();
        assert!(out.starts_with("NAME") && out.contains(&name), "{v}: {out}");
        let out = s.kubectl_with(&bin, &["get", "pods", "nginx"], None).ok();
        assert!(out.contains("Pending"), "{v}: {out}");
        s.kubectl_with(&bin, &["delete", "deployment", &name], None)
            .ok();
        eventually(10, || {
            s.kubectl_with(&bin, &["get", "deployment", &name], None)
                .code
                .ne(&0)
                .then_some(())
        });
    }
}
