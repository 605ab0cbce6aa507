use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn node(ready: Option<&str>, taints: Value) -> Value {
    let mut conds = vec![json!({"type": "MemoryPressure", "status": "False",
        "lastHeartbeatTime": "2025-01-01T00:00:00Z"})];
    if let Some(r) = ready {
        conds.push(json!({"type": "Ready", "status": r, "reason": "KubeletReady",
            "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}));
    }
    json!({"metadata": {"name": "n1", "creationTimestamp": "2024-12-31T00:00:00Z",
            "labels": {ZONE: "z1"}},
        "spec": {"taints": taints}, "status": {"conditions": conds}})
}

#[test]
fn health_from_ready_condition() {
    for (ready, want) in [
        (Some("True"), Health::Ready),
        (Some("False"), Health::NotReady),
        (Some("Unknown"), Health::Unknown),
        (None, Health::Unknown),
    ] {
        assert_eq!(health(&node(ready, json!([]))), want, "{ready:?}");
    }
}

#[test]
fn stale_conditions_go_unknown_once() {
    let n = node(Some("True"), json!([]));
    let c = stale_conditions(&n, now()).expect("changed");
    let by = |t: &str| c.iter().find(|c| c["type"] == t).unwrap().clone();
    assert_eq!(by("Ready")["status"], "Unknown");
    assert_eq!(by("Ready")["reason"], "NodeStatusUnknown");
    assert_eq!(
        by("Ready")["message"],
        "Kubelet stopped posting node status."
    );
    assert_eq!(by("Ready")["lastTransitionTime"], "2025-01-01T00:10:00Z");
    // The heartbeat is the agent's last one.
    assert_eq!(by("Ready")["lastHeartbeatTime"], "2025-01-01T00:00:00Z");
    assert_eq!(by("MemoryPressure")["status"], "Unknown");
    // Never posted: NodeStatusNeverUpdated.
    assert_eq!(by("DiskPressure")["reason"], "NodeStatusNeverUpdated");
    assert_eq!(
        by("PIDPressure")["message"],
        "Kubelet never posted node status."
    );
    let mut again = n.clone();
    again["status"]["conditions"] = json!(c);
    assert_eq!(stale_conditions(&again, now()), None);
}

#[test]
fn taints_follow_conditions() {
    let t = |k: &str, e: &str| json!({"key": k, "effect": e});
    type Case<'a> = (
        &'a str,
        Value,
        Vec<&'a str>,
        Option<&'a str>,
        Option<Vec<Value>>,
    );
    let cases: Vec<Case> = vec![
        // Ready, nothing to do.
        ("ready", node(Some("True"), json!([])), vec![], None, None),
        // Unreachable: both taints, the NoExecute one stamped.
        (
            "unknown",
            node(Some("Unknown"), json!([])),
            vec![UNREACHABLE],
            Some(UNREACHABLE),
            Some(vec![
                t(UNREACHABLE, "NoSchedule"),
                json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-01-01T00:10:00Z"}),
            ]),
        ),
        // Back to ready: managed taints go, a user's taint stays.
        (
            "recovered",
            node(
                Some("True"),
                json!([t(UNREACHABLE, "NoSchedule"), t("gpu", "NoSchedule"),
                    {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-01-01T00:00:00Z"}]),
            ),
            vec![],
            None,
            Some(vec![t("gpu", "NoSchedule")]),
        ),
        // Swap not-ready for unreachable.
        (
            "swap",
            node(
                Some("Unknown"),
                json!([t(NOT_READY, "NoSchedule"), t(NOT_READY, "NoExecute")]),
            ),
            vec![UNREACHABLE],
            Some(UNREACHABLE),
            Some(vec![
                t(UNREACHABLE, "NoSchedule"),
                json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-01-01T00:10:00Z"}),
            ]),
        ),
        // A user's NoExecute taint of another key is not ours.
        (
            "user noexecute",
            node(Some("True"), json!([t("evict", "NoExecute")])),
            vec![],
            None,
            None,
        ),
    ];
    for (name, n, ns, ne, want) in cases {
        assert_eq!(no_schedule_keys(&n), ns, "{name}: keys");
        assert_eq!(no_execute_key(health(&n)), ne, "{name}: noexecute key");
        assert_eq!(desired_taints(&n, &ns, ne, now()), want, "{name}");
    }
}

#[test]
fn condition_and_unschedulable_taints() {
    let mut n = node(Some("True"), json!([]));
    n["status"]["conditions"][0]["status"] = json!("True");
    n["spec"]["unschedulable"] = json!(true);
    assert_eq!(
        no_schedule_keys(&n),
        vec!["node.kubernetes.io/memory-pressure", UNSCHEDULABLE]
    );
    n["status"]["conditions"][1]["status"] = json!("False");
    assert_eq!(no_schedule_keys(&n)[0], NOT_READY);
}

#[test]
fn zone_states_and_rates() {
    let r = Rates {
        primary: 0.1,
        secondary: 0.01,
        large_cluster_size: 50,
    };
    for (ready, not_ready, size, want, rate) in [
        (3, 0, 3, ZoneState::Normal, 0.1),
        (0, 1, 1, ZoneState::FullDisruption, 0.1),
        (2, 2, 4, ZoneState::Normal, 0.1),
        (2, 3, 5, ZoneState::PartialDisruption, 0.0),
        (40, 60, 100, ZoneState::PartialDisruption, 0.01),
        (0, 0, 0, ZoneState::Normal, 0.1),
    ] {
        let s = zone_state(ready, not_ready, 0.55);
        assert_eq!(s, want, "{ready}/{not_ready}");
        assert_eq!(zone_rate(s, size, r), rate, "{ready}/{not_ready}");
    }
    assert_eq!(zone(&node(None, json!([]))), ":\0:z1");
    assert_eq!(zone(&json!({"metadata": {}})), "");
}

#[test]
fn eviction_by_tolerations() {
    let unreachable =
        json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-01-01T00:09:00Z"});
    let user = json!({"key": "evict", "value": "now", "effect": "NoExecute"});
    let pod = |tols: Value| json!({"spec": {"tolerations": tols}});
    let tol = |k: &str, secs: Option<i64>| {
        let mut t = json!({"key": k, "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        t
    };
    let cases = vec![
        ("no taints", pod(json!([])), vec![], Eviction::Keep),
        (
            "no toleration",
            pod(json!([])),
            vec![unreachable.clone()],
            Eviction::Now,
        ),
        (
            "default 300",
            pod(json!([tol(UNREACHABLE, Some(300))])),
            vec![unreachable.clone()],
            Eviction::After(300),
        ),
        (
            "for ever",
            pod(json!([tol(UNREACHABLE, None)])),
            vec![unreachable.clone()],
            Eviction::Keep,
        ),
        (
            "zero",
            pod(json!([tol(UNREACHABLE, Some(0))])),
            vec![unreachable.clone()],
            Eviction::Now,
        ),
        (
            "min of two",
            pod(json!([tol(UNREACHABLE, Some(300)), tol("", Some(30))])),
            vec![unreachable.clone()],
            Eviction::After(30),
        ),
        (
            "one untolerated",
            pod(json!([tol(UNREACHABLE, None)])),
            vec![unreachable.clone(), user.clone()],
            Eviction::Now,
        ),
        (
            "wildcard",
            pod(json!([{"operator": "Exists"}])),
            vec![unreachable.clone(), user.clone()],
            Eviction::Keep,
        ),
        (
            "NoSchedule ignored",
            pod(json!([])),
            vec![json!({"key": "x", "effect": "NoSchedule"})],
            Eviction::Keep,
        ),
        (
            "equal value",
            pod(
                json!([{"key": "evict", "operator": "Equal", "value": "now", "effect": "NoExecute", "tolerationSeconds": 5}]),
            ),
            vec![user.clone()],
            Eviction::After(5),
        ),
    ];
    for (name, p, taints, want) in cases {
        assert_eq!(pod_eviction(&p, &taints), want, "{name}");
    }
    assert_eq!(
        no_execute_since(&[user, unreachable]),
        Some(now() - chrono::Duration::minutes(1))
    );
}

#[test]
fn pods_marked_not_ready_and_disruption_target() {
    let p = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}});
    let c = pod_not_ready(&p, now()).unwrap();
    assert_eq!(c[0]["status"], "False");
    assert_eq!(c[0]["reason"], "NodeNotReady");
    assert_eq!(c[1]["status"], "True");
    let mut q = p.clone();
    q["status"]["conditions"] = json!(c);
    assert_eq!(pod_not_ready(&q, now()), None);
    let e = eviction_conditions(&q, now());
    assert_eq!(e.len(), 3);
    assert_eq!(e[2]["reason"], "DeletionByTaintManager");
}
