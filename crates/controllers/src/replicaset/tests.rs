use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn rs(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "d", "uid": "rs-1", "generation": 3},
        "spec": {"replicas": replicas, "minReadySeconds": 60, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

/// A pod: owner uid (or none), node, phase, ready since (minutes before now), created (minute).
fn pod(
    n: &str,
    owner: Option<&str>,
    node: &str,
    phase: &str,
    ready_min: Option<i64>,
    created: u32,
) -> Value {
    let mut p = json!({"metadata": {"name": n, "namespace": "d", "uid": format!("u-{n}"),
        "labels": {"app": "web", "tier": "fe"},
        "creationTimestamp": format!("2025-01-01T00:0{created}:00Z")},
        "spec": {"nodeName": node}, "status": {"phase": phase}});
    if let Some(o) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": o, "controller": true}]);
    }
    if let Some(m) = ready_min {
        let t = (now() - chrono::Duration::minutes(m)).to_rfc3339();
        p["status"]["conditions"] =
            json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
    }
    p
}

fn names(v: &[Value]) -> Vec<&str> {
    v.iter().map(name).collect()
}

#[test]
fn scale_up_down_adopt_release() {
    struct Case {
        what: &'static str,
        replicas: i64,
        pods: Vec<Value>,
        create: usize,
        delete: Vec<&'static str>,
        adopt: Vec<&'static str>,
        release: Vec<&'static str>,
    }
    let mut unlabeled = pod("moved", Some("rs-1"), "n1", "Running", Some(5), 1);
    unlabeled["metadata"]["labels"] = json!({"app": "other"});
    let mut deleted = pod("going", Some("rs-1"), "n1", "Running", Some(5), 1);
    deleted["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:09:00Z");
    let cases = vec![
        Case {
            what: "empty → create all",
            replicas: 3,
            pods: vec![],
            create: 3,
            delete: vec![],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "steady",
            replicas: 1,
            pods: vec![pod("a", Some("rs-1"), "n1", "Running", Some(5), 1)],
            create: 0,
            delete: vec![],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "orphan adopted counts",
            replicas: 2,
            pods: vec![
                pod("a", Some("rs-1"), "n1", "Running", Some(5), 1),
                pod("o", None, "n1", "Running", Some(5), 1),
            ],
            create: 0,
            delete: vec![],
            adopt: vec!["o"],
            release: vec![],
        },
        Case {
            what: "other controller's pod ignored",
            replicas: 1,
            pods: vec![pod("x", Some("rs-2"), "n1", "Running", Some(5), 1)],
            create: 1,
            delete: vec![],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "non-matching owned pod released and replaced",
            replicas: 1,
            pods: vec![unlabeled],
            create: 1,
            delete: vec![],
            adopt: vec![],
            release: vec!["moved"],
        },
        Case {
            what: "terminating pod does not count",
            replicas: 1,
            pods: vec![deleted],
            create: 1,
            delete: vec![],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "scale down: unscheduled, then pending, then not ready, then newer",
            replicas: 1,
            pods: vec![
                pod("old-ready", Some("rs-1"), "n1", "Running", Some(9), 1),
                pod("new-ready", Some("rs-1"), "n1", "Running", Some(2), 5),
                pod("notready", Some("rs-1"), "n1", "Running", None, 2),
                pod("pending", Some("rs-1"), "n1", "Pending", None, 2),
                pod("unscheduled", Some("rs-1"), "", "Pending", None, 1),
            ],
            create: 0,
            delete: vec!["unscheduled", "pending", "notready", "new-ready"],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "equal readiness: newer first",
            replicas: 1,
            pods: vec![
                pod("older", Some("rs-1"), "n1", "Running", None, 1),
                pod("newer", Some("rs-1"), "n1", "Running", None, 3),
            ],
            create: 0,
            delete: vec!["newer"],
            adopt: vec![],
            release: vec![],
        },
        Case {
            what: "burst limit",
            replicas: 900,
            pods: vec![],
            create: BURST,
            delete: vec![],
            adopt: vec![],
            release: vec![],
        },
    ];
    for c in cases {
        let plan = reconcile(&rs(c.replicas), Kind::ReplicaSet, &c.pods, now());
        assert_eq!(plan.create, c.create, "{}: create", c.what);
        assert_eq!(names(&plan.delete), c.delete, "{}: delete", c.what);
        assert_eq!(names(&plan.adopt), c.adopt, "{}: adopt", c.what);
        assert_eq!(names(&plan.release), c.release, "{}: release", c.what);
    }
}

#[test]
fn status_counts() {
    let mut partial = pod("partial", Some("rs-1"), "n1", "Running", Some(5), 1);
    partial["metadata"]["labels"] = json!({"app": "web"});
    let pods = vec![
        pod("avail", Some("rs-1"), "n1", "Running", Some(5), 1),
        pod("young", Some("rs-1"), "n1", "Running", Some(0), 1),
        pod("notready", Some("rs-1"), "n1", "Running", None, 1),
        pod("done", Some("rs-1"), "n1", "Succeeded", None, 1),
        partial,
    ];
    let plan = reconcile(&rs(4), Kind::ReplicaSet, &pods, now());
    assert_eq!(
        plan.status,
        json!({"replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 2, "observedGeneration": 3})
    );
    assert!(status_changed(&rs(4), &plan.status));
    let mut same = rs(4);
    same["status"] = plan.status.clone();
    assert!(!status_changed(&same, &plan.status));
}

#[test]
fn deleting_owner_does_nothing_but_status() {
    let mut r = rs(3);
    r["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:09:00Z");
    let plan = reconcile(
        &r,
        Kind::ReplicaSet,
        &[pod("o", None, "n1", "Running", None, 1)],
        now(),
    );
    assert_eq!(
        (plan.create, plan.delete.len(), plan.adopt.len()),
        (0, 0, 0)
    );
}

#[test]
fn replication_controller_map_selector_and_template() {
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "rc", "namespace": "d", "uid": "rc-1"},
        "spec": {"replicas": 2, "selector": {"app": "web"},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
    let plan = reconcile(
        &rc,
        Kind::ReplicationController,
        &[pod("o", None, "n1", "Running", None, 1)],
        now(),
    );
    assert_eq!((plan.create, names(&plan.adopt)), (1, vec!["o"]));
    let p = pod_from_template(&rc, Kind::ReplicationController);
    assert_eq!(p["metadata"]["generateName"], "rc-");
    assert_eq!(p["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        p["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "rc-1", "controller": true, "blockOwnerDeletion": true}])
    );
}

#[test]
fn slow_start() {
    for (n, want) in [
        (0, vec![]),
        (1, vec![1]),
        (5, vec![1, 2, 2]),
        (10, vec![1, 2, 4, 3]),
    ] {
        assert_eq!(slow_start_batches(n), want, "{n}");
    }
}
