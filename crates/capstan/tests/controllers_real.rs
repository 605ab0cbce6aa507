//! Controllers with real containers on the real node (root, containerd): a Deployment's pods
//! run as containers, a deleted pod is replaced by a new running one (self-heal), a rolling
//! update replaces every container, and scaling to zero leaves no container behind.

mod common;

use common::{eventually, Server};
use serde_json::Value;

const NODE: &str = "capstan-ctrl-real";

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: sleeper}
spec:
  replicas: 2
  selector: {matchLabels: {app: sleeper}}
  template:
    metadata: {labels: {app: sleeper}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.36
        command: ["sleep", "3600"]
"#;

/// Names of the Running, ready, not-deleting pods of the Deployment.
fn running(s: &Server) -> Vec<String> {
    let out = s
        .kubectl(&[
            "get",
            "pods",
            "-n",
            "real",
            "-l",
            "app=sleeper",
            "-o",
            "json",
        ])
        .stdout;
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let mut names: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["phase"] == "Running"
                && p["status"]["containerStatuses"][0]["ready"] == true
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn deployment_self_heals_rolls_and_scales_to_zero_with_real_containers() {
    if !common::agent_prerequisites(&[]) {
        return;
    }
    let s = Server::start_with_agent(NODE);
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", "real"]).ok();
    s.kubectl_stdin(&["apply", "-n", "real", "-f", "-"], DEPLOY)
        .ok();
    let first = eventually(120, || Some(running(&s)).filter(|r| r.len() == 2));
    let containers = s.node_containers().len();
    assert!(containers >= 2, "two app containers at least: {containers}");

    // Self-heal: a deleted pod is replaced by a new one that runs.
    s.kubectl(&["delete", "pod", "-n", "real", &first[0], "--wait=false"])
        .ok();
    let healed = eventually(90, || {
        Some(running(&s)).filter(|r| r.len() == 2 && !r.contains(&first[0]))
    });
    assert!(healed.contains(&first[1]), "{healed:?}");

    // A rolling update replaces every pod with one of the new template.
    s.kubectl(&["set", "env", "-n", "real", "deployment/sleeper", "V=2"])
        .ok();
    let out = s
        .kubectl(&[
            "rollout",
            "status",
            "-n",
            "real",
            "deployment/sleeper",
            "--timeout=120s",
        ])
        .ok();
    assert!(out.contains("successfully rolled out"), "{out}");
    let rolled = eventually(60, || {
        Some(running(&s)).filter(|r| r.len() == 2 && r.iter().all(|n| !healed.contains(n)))
    });
    assert_eq!(rolled.len(), 2);

    // Scale to zero: no container left on the node.
    s.kubectl(&["scale", "-n", "real", "deployment/sleeper", "--replicas=0"])
        .ok();
    eventually(90, || {
        let pods = s
            .kubectl(&["get", "pods", "-n", "real", "-o", "name"])
            .stdout;
        (pods.trim().is_empty() && s.node_containers().is_empty()).then_some(())
    });
}
