//! Pod READY/STATUS/RESTARTS and wide-column tests.

use chrono::Duration;
use serde_json::{json, Value};

use super::super::*;
use super::{ago, cell_strings, now};

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "metadata": {"name": "p", "creationTimestamp": ago(Duration::minutes(10))},
        "spec": spec,
        "status": status,
    })
}

fn one_container() -> Value {
    json!({"containers": [{"name": "c", "image": "nginx"}]})
}

fn running(ready: bool, restarts: i64) -> Value {
    json!({"name": "c", "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(Duration::minutes(9))}}})
}

#[test]
fn pod_status_logic() {
    let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    let init =
        json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]});
    let sidecar = json!({"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "c"}]});
    let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
        (
            "pending",
            pod(one_container(), json!({"phase": "Pending"})),
            ("0/1", "Pending", "0"),
        ),
        (
            "scheduling gated",
            pod(
                one_container(),
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            ("0/1", "SchedulingGated", "0"),
        ),
        (
            "container creating",
            pod(
                one_container(),
                json!({"phase": "Pending", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            ),
            ("0/1", "ContainerCreating", "0"),
        ),
        (
            "running",
            pod(
                one_container(),
                json!({"phase": "Running", "containerStatuses": [running(true, 0)]}),
            ),
            ("1/1", "Running", "0"),
        ),
        (
            "running two, one ready",
            pod(
                two.clone(),
                json!({"phase": "Running", "containerStatuses": [running(true, 0), {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}]}),
            ),
            ("1/2", "Running", "0"),
        ),
        (
            "completed",
            pod(
                one_container(),
                json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
            ),
            ("0/1", "Completed", "0"),
        ),
        (
            "error",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
            ),
            ("0/1", "Error", "0"),
        ),
        (
            "exit code without reason",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]}),
            ),
            ("0/1", "ExitCode:3", "0"),
        ),
        (
            "signal without reason",
            pod(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
            ),
            ("0/1", "Signal:9", "0"),
        ),
        (
            "crash loop with restarts",
            pod(
                one_container(),
                json!({"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(125))}}}]}),
            ),
            ("0/1", "CrashLoopBackOff", "3 (2m5s ago)"),
        ),
        (
            "completed but one still running and ready",
            pod(
                two.clone(),
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running(true, 0)]}),
            ),
            ("1/2", "Running", "0"),
        ),
        (
            "completed but one still running, pod not ready",
            pod(
                two,
                json!({"phase": "Running",
                "containerStatuses": [{"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running(true, 0)]}),
            ),
            ("1/2", "NotReady", "0"),
        ),
        (
            "init waiting",
            pod(
                init.clone(),
                json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
                {"name": "i2", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}),
            ),
            ("0/1", "Init:0/2", "0"),
        ),
        (
            "init second running",
            pod(
                init.clone(),
                json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "i2", "restartCount": 0, "state": {"running": {}}}]}),
            ),
            ("0/1", "Init:1/2", "0"),
        ),
        (
            "init error",
            pod(
                init.clone(),
                json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::seconds(30))}}}]}),
            ),
            ("0/1", "Init:Error", "2 (30s ago)"),
        ),
        (
            "init crash loop",
            pod(
                init.clone(),
                json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
            ),
            ("0/1", "Init:CrashLoopBackOff", "1"),
        ),
        (
            "init exit code",
            pod(
                init,
                json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}),
            ),
            ("0/1", "Init:ExitCode:2", "0"),
        ),
        (
            "sidecar counted in total and ready",
            pod(
                sidecar,
                json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [running(true, 0)]}),
            ),
            ("2/2", "Running", "1"),
        ),
        (
            "terminating",
            {
                let mut p = pod(
                    one_container(),
                    json!({"phase": "Running", "containerStatuses": [running(true, 0)]}),
                );
                p["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(1)));
                p
            },
            ("1/1", "Terminating", "0"),
        ),
        (
            "terminating but already succeeded",
            {
                let mut p = pod(
                    one_container(),
                    json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                );
                p["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(1)));
                p
            },
            ("0/1", "Completed", "0"),
        ),
        (
            "node lost",
            {
                let mut p = pod(
                    one_container(),
                    json!({"phase": "Running", "reason": "NodeLost"}),
                );
                p["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(1)));
                p
            },
            ("0/1", "Unknown", "0"),
        ),
        (
            "evicted",
            pod(
                one_container(),
                json!({"phase": "Failed", "reason": "Evicted"}),
            ),
            ("0/1", "Evicted", "0"),
        ),
    ];
    for (label, p, (ready, status, restarts)) in cases {
        let got = pod_ready_status_restarts(&p, now());
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2.as_str()),
            (ready, status, restarts),
            "{label}"
        );
    }
}

#[test]
fn pod_wide_cells_and_conditions() {
    let mut p = pod(
        json!({"containers": [{"name": "c"}], "nodeName": "n1", "readinessGates": [{"conditionType": "x/ready"}, {"conditionType": "y"}]}),
        json!({"phase": "Succeeded", "podIPs": [{"ip": "10.42.0.5"}], "conditions": [{"type": "x/ready", "status": "True"}]}),
    );
    assert_eq!(
        cell_strings("Pod", &p)[4..],
        ["10m", "10.42.0.5", "n1", "<none>", "1/2"]
    );
    let got = rows("Pod", &[&p], "None", now());
    assert_eq!(got[0]["conditions"][0]["reason"], "Succeeded");
    p["spec"] = one_container();
    p["status"] = json!({"phase": "Running"});
    assert_eq!(
        cell_strings("Pod", &p)[5..],
        ["<none>", "<none>", "<none>", "<none>"]
    );
    let got = rows("Pod", &[&p], "None", now());
    assert!(got[0].get("conditions").is_none());
}
