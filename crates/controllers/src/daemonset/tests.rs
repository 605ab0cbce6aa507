use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ds(image: &str) -> Value {
    json!({"metadata": {"name": "agent", "namespace": "d", "uid": "ds-1", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

fn node(n: &str, taint: Option<&str>) -> Value {
    let mut v = json!({"metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}});
    if let Some(t) = taint {
        v["spec"] = json!({"taints": [{"key": t, "effect": "NoSchedule"}]});
    }
    v
}

fn pod(n: &str, node: &str, d: &Value, created: u32) -> Value {
    let mut p = pod_for_node(d, node);
    p["metadata"]["name"] = json!(n);
    p["metadata"]["uid"] = json!(format!("u-{n}"));
    p["metadata"]["creationTimestamp"] = json!(format!("2025-01-01T00:0{created}:00Z"));
    p["spec"]["nodeName"] = json!(node);
    p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
        "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
    p
}

fn names(v: &[Value]) -> Vec<&str> {
    v.iter().map(name).collect()
}

#[test]
fn placement_table() {
    struct Case {
        what: &'static str,
        ds: Value,
        nodes: Vec<Value>,
        pods: Vec<Value>,
        create: Vec<&'static str>,
        delete: Vec<&'static str>,
        desired: i64,
        mis: i64,
    }
    let d = ds("busybox:1");
    let mut sel = ds("busybox:1");
    sel["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "n2"});
    let mut tol = ds("busybox:1");
    tol["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    let mut aff = ds("busybox:1");
    aff["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n1"]}]}]}}});
    let cases = vec![
        Case {
            what: "a pod per node",
            ds: d.clone(),
            nodes: vec![node("n1", None), node("n2", None)],
            pods: vec![],
            create: vec!["n1", "n2"],
            delete: vec![],
            desired: 2,
            mis: 0,
        },
        Case {
            what: "tainted node skipped, not-ready tolerated",
            ds: d.clone(),
            nodes: vec![
                node("n1", Some("gpu")),
                node("n2", Some("node.kubernetes.io/unschedulable")),
            ],
            pods: vec![],
            create: vec!["n2"],
            delete: vec![],
            desired: 1,
            mis: 0,
        },
        Case {
            what: "toleration",
            ds: tol,
            nodes: vec![node("n1", Some("gpu"))],
            pods: vec![],
            create: vec!["n1"],
            delete: vec![],
            desired: 1,
            mis: 0,
        },
        Case {
            what: "nodeSelector: pod on the other node is misscheduled",
            ds: sel.clone(),
            nodes: vec![node("n1", None), node("n2", None)],
            pods: vec![pod("a", "n1", &sel, 1)],
            create: vec!["n2"],
            delete: vec!["a"],
            desired: 1,
            mis: 1,
        },
        Case {
            what: "required affinity",
            ds: aff,
            nodes: vec![node("n1", None), node("n2", None)],
            pods: vec![],
            create: vec!["n2"],
            delete: vec![],
            desired: 1,
            mis: 0,
        },
        Case {
            what: "extra pod on a node and a gone node's pod",
            ds: d.clone(),
            nodes: vec![node("n1", None)],
            pods: vec![
                pod("old", "n1", &d, 1),
                pod("new", "n1", &d, 2),
                pod("gone", "n9", &d, 1),
            ],
            create: vec![],
            delete: vec!["new", "gone"],
            desired: 1,
            mis: 0,
        },
    ];
    for c in cases {
        let plan = reconcile(&c.ds, &c.nodes, &c.pods, now());
        assert_eq!(plan.create, c.create, "{}", c.what);
        assert_eq!(names(&plan.delete), c.delete, "{}", c.what);
        assert_eq!(
            plan.status["desiredNumberScheduled"], c.desired,
            "{}",
            c.what
        );
        assert_eq!(plan.status["numberMisscheduled"], c.mis, "{}", c.what);
    }
}

#[test]
fn pods_pinned_and_tolerating() {
    let p = pod_for_node(&ds("busybox:1"), "n3");
    assert_eq!(pod_node(&p), "n3");
    assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 6);
    assert!(p["metadata"]["labels"][HASH_LABEL].is_string());
}

#[test]
fn rolling_update_and_on_delete() {
    let old = ds("busybox:1");
    let nodes = vec![node("n1", None), node("n2", None), node("n3", None)];
    let pods = vec![
        pod("a", "n1", &old, 1),
        pod("b", "n2", &old, 1),
        pod("c", "n3", &old, 1),
    ];
    let new = ds("busybox:2");
    let plan = reconcile(&new, &nodes, &pods, now());
    assert_eq!(names(&plan.delete), vec!["a"], "maxUnavailable 1");
    assert_eq!(plan.status["updatedNumberScheduled"], 0);
    // One node already without a pod: no budget left.
    let plan = reconcile(&new, &nodes, &pods[1..], now());
    assert_eq!(plan.create, vec!["n1"]);
    assert!(plan.delete.is_empty());
    let mut two = new.clone();
    two["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "67%"}});
    assert_eq!(
        names(&reconcile(&two, &nodes, &pods, now()).delete),
        vec!["a", "b"]
    );
    let mut od = new.clone();
    od["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    assert!(reconcile(&od, &nodes, &pods, now()).delete.is_empty());
    let done = vec![
        pod("x", "n1", &new, 1),
        pod("y", "n2", &new, 1),
        pod("z", "n3", &new, 1),
    ];
    let plan = reconcile(&new, &nodes, &done, now());
    assert_eq!(plan.status["updatedNumberScheduled"], 3);
    assert_eq!(plan.status["numberAvailable"], 3);
    assert_eq!(plan.status["numberReady"], 3);
    assert_eq!(plan.status["currentNumberScheduled"], 3);
}
