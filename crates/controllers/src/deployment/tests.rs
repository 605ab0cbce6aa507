use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn deploy(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "d", "uid": "d-1", "generation": 2,
            "annotations": {"kubernetes.io/change-cause": "set image"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

/// The RS the Deployment would create for `image`, at `spec` replicas with `avail` available.
fn rs(d: &Value, spec: i64, avail: i64, rev: i64, created: &str) -> Value {
    let h = pod_template_hash(&d["spec"]["template"], 0);
    let mut r = new_replica_set(d, &h, spec, rev);
    r["metadata"]["uid"] = json!(format!("rs-{h}"));
    r["metadata"]["creationTimestamp"] = json!(created);
    r["status"] = json!({"replicas": spec, "readyReplicas": avail, "availableReplicas": avail});
    r
}

#[test]
fn hash_is_stable_and_safe() {
    let d = deploy(3, "busybox:1.36");
    let h = pod_template_hash(&d["spec"]["template"], 0);
    assert_eq!(h, pod_template_hash(&d["spec"]["template"], 0));
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    assert_ne!(h, pod_template_hash(&d["spec"]["template"], 1));
    assert_ne!(h, pod_template_hash(&deploy(3, "x")["spec"]["template"], 0));
    // Key order does not matter.
    let t2: Value = serde_json::from_str(r#"{"spec":{"containers":[{"image":"busybox:1.36","name":"c"}]},"metadata":{"labels":{"app":"web"}}}"#).unwrap();
    assert_eq!(h, pod_template_hash(&t2, 0));
}

#[test]
fn fenceposts_round_as_kube() {
    let mut d = deploy(10, "a");
    assert_eq!(fenceposts(&d), (3, 2));
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
    assert_eq!(fenceposts(&d), (0, 1));
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 4}});
    assert_eq!(fenceposts(&d), (5, 4));
}

#[test]
fn first_sync_creates_the_new_replica_set() {
    let d = deploy(3, "busybox:1.36");
    let p = reconcile(&d, &[], now());
    let c = p.create.expect("create");
    let h = pod_template_hash(&d["spec"]["template"], 0);
    assert_eq!(name(&c), format!("web-{h}"));
    assert_eq!(c["spec"]["replicas"], 3);
    assert_eq!(c["spec"]["selector"]["matchLabels"][HASH_LABEL], json!(h));
    assert_eq!(
        c["spec"]["template"]["metadata"]["labels"][HASH_LABEL],
        json!(h)
    );
    assert_eq!(c["metadata"]["annotations"][REVISION], "1");
    assert_eq!(c["metadata"]["annotations"][DESIRED], "3");
    assert_eq!(c["metadata"]["annotations"][MAX_REPLICAS], "4");
    assert_eq!(c["metadata"]["annotations"][CHANGE_CAUSE], "set image");
    assert_eq!(c["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        p.events,
        vec![format!("Scaled up replica set web-{h} from 0 to 3")]
    );
    let prog = &p.status["conditions"][1];
    assert_eq!(
        (prog["type"].clone(), prog["reason"].clone()),
        (json!("Progressing"), json!("NewReplicaSetCreated"))
    );
    assert_eq!(
        p.status["conditions"][0]["reason"],
        "MinimumReplicasUnavailable"
    );
}

#[test]
fn complete_rollout_reports_available() {
    let d = deploy(3, "a");
    let r = rs(&d, 3, 3, 1, "2025-01-01T00:00:00Z");
    let p = reconcile(&d, &[r], now());
    assert!(p.create.is_none() && p.update.is_empty() && !p.again);
    assert_eq!(p.status["availableReplicas"], 3);
    assert_eq!(p.status["updatedReplicas"], 3);
    assert_eq!(p.status["unavailableReplicas"], 0);
    assert_eq!(
        p.status["conditions"][0]["reason"],
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        p.status["conditions"][1]["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(p.annotations, Some(json!({REVISION: "1"})));
}

#[test]
fn rolling_update_respects_surge_and_unavailable() {
    // 4 replicas: surge 1, unavailable 1.
    let v1 = deploy(4, "a");
    let old = rs(&v1, 4, 4, 1, "2025-01-01T00:00:00Z");
    let d = deploy(4, "b");
    let p = reconcile(&d, std::slice::from_ref(&old), now());
    let c = p.create.clone().expect("new rs");
    assert_eq!(c["spec"]["replicas"], 1, "surge 1");
    assert_eq!(c["metadata"]["annotations"][REVISION], "2");
    // Old scaled down by maxUnavailable at most: 4 total spec → 5 − 3 − (0 unavailable new) = 1.
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].1["spec"]["replicas"], 3);
    assert!(p
        .events
        .iter()
        .any(|e| e.starts_with("Scaled down replica set") && e.ends_with("from 4 to 3")));
    // Next: new RS at 1 not available, old at 3: total 4 → new may go to 2; old cannot drop.
    let mut new = rs(&d, 1, 0, 2, "2025-01-01T00:05:00Z");
    let mut old3 = old.clone();
    old3["spec"]["replicas"] = json!(3);
    old3["status"] = json!({"replicas": 3, "availableReplicas": 3, "readyReplicas": 3});
    let p = reconcile(&d, &[old3.clone(), new.clone()], now());
    assert_eq!(
        p.update
            .iter()
            .find(|(r, _)| name(r) == name(&new))
            .unwrap()
            .1["spec"]["replicas"],
        2
    );
    assert!(p.update.iter().all(|(r, _)| name(r) != name(&old3)));
    // New available: old goes down.
    new["spec"]["replicas"] = json!(2);
    new["status"] = json!({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2});
    let p = reconcile(&d, &[old3.clone(), new.clone()], now());
    let down = p
        .update
        .iter()
        .find(|(r, _)| name(r) == name(&old3))
        .unwrap();
    assert_eq!(down.1["spec"]["replicas"], 1);
}

#[test]
fn recreate_scales_old_to_zero_then_waits() {
    let v1 = deploy(3, "a");
    let old = rs(&v1, 3, 3, 1, "2025-01-01T00:00:00Z");
    let mut d = deploy(3, "b");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    let p = reconcile(&d, std::slice::from_ref(&old), now());
    assert!(p.create.is_none());
    assert_eq!(p.update[0].1["spec"]["replicas"], 0);
    let mut gone = old.clone();
    gone["spec"]["replicas"] = json!(0);
    let p = reconcile(&d, &[gone.clone()], now());
    assert!(p.create.is_none() && p.again, "pods still there");
    gone["status"] = json!({"replicas": 0});
    let p = reconcile(&d, &[gone], now());
    assert_eq!(p.create.unwrap()["spec"]["replicas"], 3);
}

#[test]
fn rollback_gives_the_old_replica_set_the_next_revision() {
    let v1 = deploy(2, "a");
    let v2 = deploy(2, "b");
    let mut r1 = rs(&v1, 0, 0, 1, "2025-01-01T00:00:00Z");
    r1["status"] = json!({"replicas": 0});
    let r2 = rs(&v2, 2, 2, 2, "2025-01-01T00:05:00Z");
    let p = reconcile(&v1, &[r1.clone(), r2], now());
    let up = p.update.iter().find(|(r, _)| name(r) == name(&r1)).unwrap();
    assert_eq!(up.1["metadata"]["annotations"][REVISION], "3");
    assert_eq!(p.annotations, Some(json!({REVISION: "3"})));
}

#[test]
fn scaling_and_history_limit_and_pause() {
    let d = deploy(5, "a");
    let r = rs(&deploy(3, "a"), 3, 3, 4, "2025-01-01T00:04:00Z");
    let p = reconcile(&d, std::slice::from_ref(&r), now());
    assert_eq!(p.update[0].1["spec"]["replicas"], 5);
    // Three old ones at 0, limit 1: the two oldest revisions go.
    let mut d1 = deploy(3, "a");
    d1["spec"]["revisionHistoryLimit"] = json!(1);
    let olds: Vec<Value> = (1..=3)
        .map(|i| {
            let mut o = rs(
                &deploy(3, &format!("old{i}")),
                0,
                0,
                i,
                &format!("2025-01-01T00:0{i}:00Z"),
            );
            o["status"] = json!({"replicas": 0});
            o
        })
        .collect();
    let mut all = olds.clone();
    all.push(r.clone());
    let p = reconcile(&d1, &all, now());
    let gone: Vec<&str> = p.delete.iter().map(name).collect();
    assert_eq!(gone, vec![name(&olds[0]), name(&olds[1])]);
    // Paused: a new template makes no RS.
    let mut d2 = deploy(3, "new");
    d2["spec"]["paused"] = json!(true);
    let p = reconcile(&d2, &[r], now());
    assert!(p.create.is_none() && p.update.is_empty());
    assert_eq!(p.status["conditions"][1]["reason"], "DeploymentPaused");
}

#[test]
fn adopts_orphans_and_times_out() {
    let d = deploy(3, "a");
    let mut orphan = rs(&d, 3, 1, 1, "2025-01-01T00:00:00Z");
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let mut d2 = d.clone();
    d2["status"] = json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
            "lastUpdateTime": "2024-12-31T00:00:00Z", "lastTransitionTime": "2024-12-31T00:00:00Z"}]});
    let p = reconcile(&d2, &[orphan], now());
    assert_eq!(p.adopt.len(), 1);
    let prog = p.status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(prog["reason"], "ProgressDeadlineExceeded");
    assert_eq!(prog["status"], "False");
}

#[test]
fn paused_still_scales_and_found_new_replica_set() {
    let mut d = deploy(5, "a");
    d["spec"]["paused"] = json!(true);
    let r = rs(&deploy(3, "a"), 3, 3, 1, "2025-01-01T00:00:00Z");
    let p = reconcile(&d, std::slice::from_ref(&r), now());
    assert_eq!(p.update[0].1["spec"]["replicas"], 5);
    let d = deploy(3, "a");
    let mut r2 = r.clone();
    r2["status"]["availableReplicas"] = json!(1);
    let p = reconcile(&d, &[r2], now());
    let prog = &p.status["conditions"][1];
    assert_eq!(prog["reason"], "FoundNewReplicaSet");
    assert!(prog["message"]
        .as_str()
        .unwrap()
        .starts_with("Found new replica set \"web-"));
}
