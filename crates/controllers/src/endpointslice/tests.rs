use super::*;
use serde_json::json;

fn svc() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "d", "uid": "s-1", "labels": {"team": "a"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.10", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}})
}

fn pod(n: &str, ip: &str, ready: bool) -> Value {
    json!({"metadata": {"name": n, "namespace": "d", "uid": format!("u-{n}"),
            "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
}

fn zone(node: &str) -> Option<Option<String>> {
    match node {
        "n1" => Some(Some("z1".into())),
        "n2" => Some(None),
        _ => None,
    }
}

fn run(svc: &Value, pods: &[Value], slices: &[Value], max: usize) -> Plan {
    let p: Vec<&Value> = pods.iter().collect();
    let s: Vec<&Value> = slices.iter().collect();
    reconcile(svc, &p, &slices_of(svc, &s), &zone, None, max)
}

/// Give the plan's creates names and resourceVersions, as the API server would, and return
/// the slices that exist afterwards.
fn apply(before: &[Value], plan: &Plan) -> Vec<Value> {
    let mut out: Vec<Value> = before
        .iter()
        .filter(|s| {
            !plan
                .delete
                .iter()
                .any(|d| d["metadata"]["name"] == s["metadata"]["name"])
                && !plan
                    .update
                    .iter()
                    .any(|u| u["metadata"]["name"] == s["metadata"]["name"])
        })
        .cloned()
        .collect();
    out.extend(plan.update.iter().cloned());
    for (i, c) in plan.create.iter().enumerate() {
        let mut c = c.clone();
        c["metadata"]["name"] = json!(format!("web-{}{i}", before.len()));
        out.push(c);
    }
    out.sort_by_key(|s| s["metadata"]["name"].as_str().unwrap_or("").to_string());
    out
}

fn sizes(slices: &[Value]) -> Vec<usize> {
    let mut v: Vec<usize> = slices.iter().map(len).collect();
    v.sort();
    v
}

#[test]
fn endpoint_conditions_table() {
    let s = svc();
    let mut publish = svc();
    publish["spec"]["publishNotReadyAddresses"] = json!(true);
    let mut terminating = pod("t", "10.0.0.4", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let mut terminating_unready = pod("u", "10.0.0.5", false);
    terminating_unready["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    // (service, pod, ready, serving, terminating)
    let cases = [
        ("ready", &s, pod("a", "10.0.0.1", true), true, true, false),
        (
            "not ready",
            &s,
            pod("b", "10.0.0.2", false),
            false,
            false,
            false,
        ),
        ("terminating", &s, terminating.clone(), false, true, true),
        (
            "terminating not ready",
            &s,
            terminating_unready,
            false,
            false,
            true,
        ),
        (
            "publishNotReadyAddresses",
            &publish,
            pod("c", "10.0.0.3", false),
            true,
            false,
            false,
        ),
        (
            "publishNotReadyAddresses terminating",
            &publish,
            terminating,
            true,
            true,
            true,
        ),
    ];
    for (what, svc, p, ready, serving, term) in cases {
        let e = pod_endpoint(&p, Some("z1"), svc, "IPv4");
        assert_eq!(
            e["conditions"],
            json!({"ready": ready, "serving": serving, "terminating": term}),
            "{what}"
        );
    }
}

#[test]
fn new_slice_shape() {
    let mut p = pod("web-0", "10.0.0.1", true);
    p["spec"]["hostname"] = json!("web-0");
    p["spec"]["subdomain"] = json!("web");
    let plan = run(&svc(), &[p], &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.update.is_empty() && plan.delete.is_empty());
    let sl = &plan.create[0];
    assert_eq!(sl["metadata"]["generateName"], "web-");
    assert_eq!(
        sl["metadata"]["labels"],
        json!({"team": "a", SERVICE_NAME: "web", MANAGED_BY: CONTROLLER_NAME})
    );
    assert_eq!(
        sl["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "s-1",
            "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(sl["addressType"], "IPv4");
    assert_eq!(
        sl["ports"],
        json!([{"name": "http", "protocol": "TCP", "port": 8080}])
    );
    assert_eq!(
        sl["endpoints"],
        json!([{"addresses": ["10.0.0.1"],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "hostname": "web-0",
            "targetRef": {"kind": "Pod", "namespace": "d", "name": "web-0", "uid": "u-web-0"},
            "nodeName": "n1", "zone": "z1"}])
    );
    // Up to date afterwards: nothing to write.
    let after = apply(&[], &plan);
    assert_eq!(
        run(
            &svc(),
            &[{
                let mut p = pod("web-0", "10.0.0.1", true);
                p["spec"]["hostname"] = json!("web-0");
                p["spec"]["subdomain"] = json!("web");
                p
            }],
            &after,
            100
        ),
        Plan::default()
    );
}

#[test]
fn placeholder_when_empty_and_kept() {
    let plan = run(&svc(), &[], &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0]["endpoints"], json!([]));
    assert_eq!(plan.create[0]["ports"], json!([]));
    let after = apply(&[], &plan);
    assert_eq!(
        run(&svc(), &[], &after, 100),
        Plan::default(),
        "the placeholder is kept, not recreated"
    );
    // Pods arrive: the placeholder is reused (its create became an update), not deleted.
    let plan = run(&svc(), &[pod("a", "10.0.0.1", true)], &after, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0]["metadata"]["name"], "web-00");
    assert_eq!(len(&plan.update[0]), 1);
    // And gone again: back to a placeholder, in place.
    let after = apply(&after, &plan);
    let plan = run(&svc(), &[], &after, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert_eq!(plan.update[0]["endpoints"], json!([]));
}

#[test]
fn split_over_max_and_fill_in_place() {
    let pods: Vec<Value> = (0..250)
        .map(|i| {
            pod(
                &format!("p{i:03}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                true,
            )
        })
        .collect();
    let plan = run(&svc(), &pods, &[], 100);
    assert_eq!(sizes(&plan.create), vec![50, 100, 100]);
    let after = apply(&[], &plan);
    assert_eq!(run(&svc(), &pods, &after, 100), Plan::default());
    // One pod changes readiness: only its slice is written.
    let mut changed = pods.clone();
    changed[7]["status"]["conditions"][0]["status"] = json!("False");
    let plan = run(&svc(), &changed, &after, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(sizes(&plan.update), vec![100]);
    // 30 more pods: into the updated slice first? No slice is being updated, so into the
    // unchanged slice with room (the 50), in place.
    let more: Vec<Value> = (250..280)
        .map(|i| pod(&format!("p{i:03}"), &format!("10.0.2.{}", i - 249), true))
        .collect();
    let all: Vec<Value> = pods.iter().chain(&more).cloned().collect();
    let plan = run(&svc(), &all, &after, 100);
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert_eq!(sizes(&plan.update), vec![80]);
    // 60 more than fit in the remaining room: a new slice.
    let after2 = apply(&after, &plan);
    let extra: Vec<Value> = (280..340)
        .map(|i| pod(&format!("p{i:03}"), &format!("10.0.3.{}", i - 279), true))
        .collect();
    let all2: Vec<Value> = all.iter().chain(&extra).cloned().collect();
    let plan = run(&svc(), &all2, &after2, 100);
    assert_eq!(plan.create.len() + plan.update.len(), 1, "{plan:?}");
    // Scale to 1: the slices emptied are deleted (or reused), one endpoint is left.
    let plan = run(&svc(), &pods[..1], &after, 100);
    let left = apply(&after, &plan);
    let total: usize = left.iter().map(len).sum();
    assert_eq!(total, 1);
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn ports_group_slices_and_others_are_deleted() {
    // A pod without the named port gets a slice of its own (no ports).
    let mut bare = pod("b", "10.0.0.2", true);
    bare["spec"]["containers"][0]["ports"] = json!([]);
    let plan = run(&svc(), &[pod("a", "10.0.0.1", true), bare], &[], 100);
    assert_eq!(plan.create.len(), 2);
    let ports: Vec<String> = plan.create.iter().map(|s| s["ports"].to_string()).collect();
    assert!(ports.contains(&"[]".to_string()), "{ports:?}");
    // A slice of an older service of the same name (another uid) is deleted.
    let mut stale = plan.create[0].clone();
    stale["metadata"]["name"] = json!("web-old");
    stale["metadata"]["ownerReferences"][0]["uid"] = json!("s-0");
    let plan = run(&svc(), &[pod("a", "10.0.0.1", true)], &[stale], 100);
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.create.len(), 1);
    // Slices of another controller or being deleted are not ours.
    let mut foreign = plan.create[0].clone();
    foreign["metadata"]["labels"][MANAGED_BY] = json!("someone-else");
    let mut going = plan.create[0].clone();
    going["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    assert!(slices_of(&svc(), &[foreign, going]).is_empty());
}

#[test]
fn labels_headless_and_missing_nodes() {
    let mut h = svc();
    h["spec"]["clusterIP"] = json!("None");
    h["spec"].as_object_mut().unwrap().remove("ipFamilies");
    h["spec"]["ports"] = json!([]);
    let plan = run(&h, &[pod("a", "10.0.0.1", true)], &[], 100);
    assert_eq!(plan.create.len(), 1, "one IPv4 slice: {plan:?}");
    assert_eq!(plan.create[0]["metadata"]["labels"][HEADLESS], "");
    assert_eq!(plan.create[0]["ports"], json!([]));
    // A service label change is written to the slices.
    let after = apply(&[], &plan);
    let mut relabeled = h.clone();
    relabeled["metadata"]["labels"] = json!({"team": "b"});
    let plan = run(&relabeled, &[pod("a", "10.0.0.1", true)], &after, 100);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0]["metadata"]["labels"]["team"], "b");
    // A pod on an unknown node is left out (and the sync retried); a node without a zone
    // label gives no zone.
    let mut lost = pod("l", "10.0.0.9", true);
    lost["spec"]["nodeName"] = json!("gone");
    let mut n2 = pod("m", "10.0.0.8", true);
    n2["spec"]["nodeName"] = json!("n2");
    let plan = run(&svc(), &[lost, n2], &[], 100);
    assert!(plan.missing_node);
    assert_eq!(len(&plan.create[0]), 1);
    assert!(plan.create[0]["endpoints"][0].get("zone").is_none());
}

#[test]
fn trigger_annotation_and_deleting_service() {
    let t = DateTime::parse_from_rfc3339("2025-01-01T00:01:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let p = [pod("a", "10.0.0.1", true)];
    let pods: Vec<&Value> = p.iter().collect();
    let plan = reconcile(&svc(), &pods, &[], &zone, Some(t), 100);
    assert_eq!(
        plan.create[0]["metadata"]["annotations"][TRIGGER_TIME],
        "2025-01-01T00:01:00Z"
    );
    let mut going = svc();
    going["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:02:00Z");
    let plan = reconcile(&going, &pods, &[], &zone, Some(t), 100);
    assert!(
        plan.create.is_empty(),
        "no creates for a service being deleted"
    );
}
