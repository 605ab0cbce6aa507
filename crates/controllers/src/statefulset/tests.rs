use super::revision::{choose, new_revision, owned, prune};
use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn sts(replicas: i64, image: &str) -> Value {
    json!({"metadata": {"name": "web", "namespace": "d", "uid": "s-1", "generation": 3},
        "spec": {"replicas": replicas, "serviceName": "nginx",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

/// The set with its current revision recorded in status.
fn with_current(mut s: Value, rev: &Value) -> Value {
    s["status"] = json!({"currentRevision": name(rev)});
    s
}

fn rev_of(s: &Value, n: i64) -> Value {
    let mut r = new_revision(s, n, 0);
    r["metadata"]["uid"] = json!(format!("r-{n}"));
    r
}

/// A pod of `s` at `o` on revision `rev` in `state`: "ready", "pending", "failed", "deleting".
fn pod_at(s: &Value, o: i64, rev: &Value, state: &str) -> Value {
    let mut p = identity::new_pod(s, &revision::template(rev), o, name(rev));
    p["metadata"]["uid"] = json!(format!("u-{o}"));
    p["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    let ready = json!([{"type": "Ready", "status": "True",
        "lastTransitionTime": "2025-01-01T00:00:00Z"}]);
    p["status"] = match state {
        "pending" => json!({"phase": "Pending"}),
        "failed" => json!({"phase": "Failed"}),
        _ => json!({"phase": "Running", "conditions": ready}),
    };
    if state == "deleting" {
        p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:09:00Z");
    }
    p
}

fn names(v: &[Value]) -> Vec<String> {
    v.iter().map(|p| name(p).to_string()).collect()
}

fn deleted(p: &Plan) -> Vec<(String, Why)> {
    p.delete
        .iter()
        .map(|(p, w)| (name(p).to_string(), *w))
        .collect()
}

#[test]
fn ordering_and_scaling_table() {
    struct Case {
        what: &'static str,
        replicas: i64,
        parallel: bool,
        pods: Vec<(i64, &'static str)>,
        create: Vec<&'static str>,
        delete: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            what: "ordered: only the first pod",
            replicas: 3,
            parallel: false,
            pods: vec![],
            create: vec!["web-0"],
            delete: vec![],
        },
        Case {
            what: "ordered: waits for web-0 to be ready",
            replicas: 3,
            parallel: false,
            pods: vec![(0, "pending")],
            create: vec![],
            delete: vec![],
        },
        Case {
            what: "ordered: web-1 once web-0 is ready",
            replicas: 3,
            parallel: false,
            pods: vec![(0, "ready")],
            create: vec!["web-1"],
            delete: vec![],
        },
        Case {
            what: "ordered: a gap is filled first",
            replicas: 3,
            parallel: false,
            pods: vec![(0, "ready"), (2, "ready")],
            create: vec!["web-1"],
            delete: vec![],
        },
        Case {
            what: "parallel: all at once",
            replicas: 3,
            parallel: true,
            pods: vec![(1, "pending")],
            create: vec!["web-0", "web-2"],
            delete: vec![],
        },
        Case {
            what: "ordered scale down: highest first, one",
            replicas: 2,
            parallel: false,
            pods: vec![(0, "ready"), (1, "ready"), (2, "ready"), (3, "ready")],
            create: vec![],
            delete: vec!["web-3"],
        },
        Case {
            what: "ordered scale down waits for the terminating pod",
            replicas: 2,
            parallel: false,
            pods: vec![(0, "ready"), (1, "ready"), (2, "ready"), (3, "deleting")],
            create: vec![],
            delete: vec![],
        },
        Case {
            what: "ordered scale down waits for unready replicas",
            replicas: 2,
            parallel: false,
            pods: vec![(0, "ready"), (1, "pending"), (2, "ready")],
            create: vec![],
            delete: vec![],
        },
        Case {
            what: "parallel scale down: all condemned",
            replicas: 1,
            parallel: true,
            pods: vec![(0, "ready"), (1, "ready"), (2, "pending")],
            create: vec![],
            delete: vec!["web-2", "web-1"],
        },
        Case {
            what: "failed pod is deleted to be recreated",
            replicas: 2,
            parallel: false,
            pods: vec![(0, "failed"), (1, "ready")],
            create: vec![],
            delete: vec!["web-0"],
        },
        Case {
            what: "scale to zero",
            replicas: 0,
            parallel: false,
            pods: vec![(0, "ready"), (1, "ready")],
            create: vec![],
            delete: vec!["web-1"],
        },
    ];
    for c in cases {
        let mut s = sts(c.replicas, "nginx:1");
        if c.parallel {
            s["spec"]["podManagementPolicy"] = json!("Parallel");
        }
        let r = rev_of(&s, 1);
        let s = with_current(s, &r);
        let pods: Vec<Value> = c
            .pods
            .iter()
            .map(|(o, st)| pod_at(&s, *o, &r, st))
            .collect();
        let plan = reconcile(&s, &pods, std::slice::from_ref(&r), &[], now());
        assert_eq!(names(&plan.create), c.create, "{}", c.what);
        let del: Vec<String> = deleted(&plan).into_iter().map(|d| d.0).collect();
        assert_eq!(del, c.delete, "{}", c.what);
        assert!(plan.create_revision.is_none(), "{}", c.what);
    }
}

#[test]
fn new_pod_identity_and_claims() {
    let mut s = sts(2, "nginx:1");
    s["spec"]["ordinals"] = json!({"start": 5});
    s["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "www", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]);
    s["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "www"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    s["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
    let plan = reconcile(&s, &[], &[], &[], now());
    let rev = plan.create_revision.as_ref().expect("first revision");
    assert_eq!(rev["revision"], 1);
    assert_eq!(names(&plan.create), ["web-5"]);
    let p = &plan.create[0];
    let l = &p["metadata"]["labels"];
    assert_eq!(l["statefulset.kubernetes.io/pod-name"], "web-5");
    assert_eq!(l["apps.kubernetes.io/pod-index"], "5");
    assert_eq!(l["controller-revision-hash"], rev["metadata"]["name"]);
    assert_eq!(l["app"], "web");
    assert_eq!(p["spec"]["hostname"], "web-5");
    assert_eq!(p["spec"]["subdomain"], "nginx");
    assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        true
    );
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-5"}},
            {"name": "cfg", "emptyDir": {}}])
    );
    assert_eq!(names(&plan.create_claims), ["www-web-5"]);
    let c = &plan.create_claims[0];
    assert_eq!(c["metadata"]["labels"]["app"], "web");
    assert_eq!(c["metadata"]["ownerReferences"][0]["uid"], "s-1");
    // An existing claim is not created again; scaled down with whenScaled=Delete it is
    // handed to its pod.
    s["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
    s["spec"]["replicas"] = json!(1);
    let r = rev_of(&s, 1);
    let s = with_current(s, &r);
    let pods = vec![pod_at(&s, 5, &r, "ready"), pod_at(&s, 6, &r, "ready")];
    let claims: Vec<Value> = (5..7)
        .map(|o| {
            let mut c = identity::new_claim(&s, &identity::claim_templates(&s)[0], o);
            c["metadata"]["uid"] = json!(format!("c-{o}"));
            c
        })
        .collect();
    let plan = reconcile(&s, &pods, std::slice::from_ref(&r), &claims, now());
    assert!(plan.create_claims.is_empty());
    assert_eq!(plan.claim_refs.len(), 1, "{:?}", plan.claim_refs);
    assert_eq!(name(&plan.claim_refs[0].0), "www-web-6");
    assert_eq!(
        plan.claim_refs[0].1,
        [json!({"apiVersion": "v1", "kind": "Pod",
        "name": "web-6", "uid": "u-6"})]
    );
    assert_eq!(deleted(&plan), [("web-6".to_string(), Why::ScaleDown)]);
}

#[test]
fn rolling_update_partition_table() {
    // (what, partition, maxUnavailable, pods on new revision (ordinal, state), delete)
    type Case = (
        &'static str,
        i64,
        Option<i64>,
        Vec<(i64, &'static str)>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        ("highest first", 0, None, vec![], vec!["web-2"]),
        ("then the next", 0, None, vec![(2, "ready")], vec!["web-1"]),
        (
            "waits for the new pod",
            0,
            None,
            vec![(2, "pending")],
            vec![],
        ),
        (
            "waits for a terminating pod",
            0,
            None,
            vec![(2, "deleting")],
            vec![],
        ),
        (
            "partition keeps lower ordinals",
            2,
            None,
            vec![(2, "ready")],
            vec![],
        ),
        ("partition 1", 1, None, vec![(2, "ready")], vec!["web-1"]),
        (
            "maxUnavailable 2",
            0,
            Some(2),
            vec![],
            vec!["web-2", "web-1"],
        ),
        (
            "maxUnavailable counts unready",
            0,
            Some(2),
            vec![(2, "pending")],
            vec!["web-1"],
        ),
    ];
    for (what, part, max, new_pods, want) in cases {
        let old = sts(3, "nginx:1");
        let r1 = rev_of(&old, 1);
        let mut s = with_current(sts(3, "nginx:2"), &r1);
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(part);
        if let Some(m) = max {
            // (Parallel, so an unready pod does not block the whole sync.)
            s["spec"]["podManagementPolicy"] = json!("Parallel");
            s["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!(m);
        }
        let r2 = rev_of(&s, 2);
        let pods: Vec<Value> = (0..3)
            .map(|o| match new_pods.iter().find(|(n, _)| *n == o) {
                Some((_, st)) => pod_at(&s, o, &r2, st),
                None => pod_at(&old, o, &r1, "ready"),
            })
            .collect();
        let plan = reconcile(&s, &pods, &[r1.clone(), r2.clone()], &[], now());
        let del: Vec<String> = deleted(&plan).into_iter().map(|d| d.0).collect();
        assert_eq!(del, want, "{what}");
        assert!(plan.delete.iter().all(|d| d.1 == Why::Update), "{what}");
        let st = &plan.status;
        assert_eq!(st["currentRevision"], name(&r1), "{what}");
        assert_eq!(st["updateRevision"], name(&r2), "{what}");
        // Terminating pods count neither as current nor as updated.
        let live_new = new_pods.iter().filter(|p| p.1 != "deleting").count() as i64;
        assert_eq!(st["updatedReplicas"], live_new, "{what}");
        let cur = 3 - new_pods.len() as i64 - want.len() as i64;
        assert_eq!(st["currentReplicas"], cur, "{what}");
    }
    // A new pod below the partition is created from the current revision.
    let old = sts(3, "nginx:1");
    let r1 = rev_of(&old, 1);
    let mut s = with_current(sts(3, "nginx:2"), &r1);
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(2);
    let r2 = rev_of(&s, 2);
    let pods = vec![pod_at(&old, 1, &r1, "ready"), pod_at(&s, 2, &r2, "ready")];
    let plan = reconcile(&s, &pods, &[r1.clone(), r2.clone()], &[], now());
    assert_eq!(names(&plan.create), ["web-0"]);
    assert_eq!(plan.create[0]["spec"]["containers"][0]["image"], "nginx:1");
    assert_eq!(
        plan.create[0]["metadata"]["labels"]["controller-revision-hash"],
        name(&r1)
    );
    // OnDelete: nothing deleted, a recreated pod takes the update revision.
    let mut s = with_current(sts(2, "nginx:2"), &r1);
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let r2 = rev_of(&s, 2);
    let pods = vec![pod_at(&old, 1, &r1, "ready")];
    let plan = reconcile(&s, &pods, &[r1.clone(), r2.clone()], &[], now());
    assert!(plan.delete.is_empty());
    assert_eq!(plan.create[0]["spec"]["containers"][0]["image"], "nginx:2");
}

#[test]
fn revisions_table() {
    let a = sts(1, "nginx:1");
    let b = sts(1, "nginx:2");
    // The hash is kube's: FNV-32 of the patch bytes plus "0", SafeEncodeString'd.
    let r = new_revision(&a, 1, 0);
    let data = r["data"].to_string();
    assert!(data.contains(r#""$patch":"replace""#), "{data}");
    assert_eq!(
        revision::go_json(&json!({"b": "<&>", "a": 1})),
        r#"{"a":1,"b":"\u003c\u0026\u003e"}"#
    );
    assert_ne!(
        name(&r),
        name(&new_revision(&a, 1, 1)),
        "collisionCount changes the name"
    );
    assert_eq!(
        name(&r),
        name(&new_revision(&a, 7, 0)),
        "the number does not"
    );
    assert!(name(&r).starts_with("web-"));
    assert_eq!(r["metadata"]["labels"]["app"], "web");
    assert_eq!(
        r["metadata"]["labels"]["controller.kubernetes.io/hash"],
        name(&r).trim_start_matches("web-")
    );
    let (ra, rb) = (rev_of(&a, 1), rev_of(&b, 2));
    // New template: a revision numbered one past the newest.
    let got = choose(
        &with_current(b.clone(), &ra),
        &owned(&b, std::slice::from_ref(&ra)),
    );
    assert_eq!(
        got.create.as_ref().map(|r| r["revision"].clone()),
        Some(json!(2))
    );
    assert_eq!(name(&got.current), name(&ra));
    // Same as the newest: that one, nothing written.
    let got = choose(
        &with_current(b.clone(), &ra),
        &owned(&b, &[rb.clone(), ra.clone()]),
    );
    assert!(got.create.is_none() && got.renumber.is_none());
    assert_eq!(name(&got.update), name(&rb));
    // Rollback to an older one: renumbered to the next revision.
    let got = choose(
        &with_current(a.clone(), &rb),
        &owned(&a, &[ra.clone(), rb.clone()]),
    );
    assert_eq!(got.renumber, Some((name(&ra).to_string(), 3)));
    assert_eq!(name(&got.update), name(&ra));
    assert_eq!(name(&got.current), name(&rb));
    // No status yet: current is the update revision.
    let got = choose(&a, &[]);
    assert_eq!(name(&got.current), name(&got.update));
    // Someone else's revisions do not count.
    let mut other = rev_of(&a, 5);
    other["metadata"]["ownerReferences"][0]["uid"] = json!("x");
    assert!(owned(&a, &[other]).is_empty());

    // History: unused revisions beyond the limit go, oldest first.
    let mut s = with_current(sts(1, "nginx:9"), &ra);
    s["spec"]["revisionHistoryLimit"] = json!(1);
    let hist: Vec<Value> = (1..=5)
        .map(|i| rev_of(&sts(1, &format!("nginx:{i}")), i))
        .collect();
    let hist = owned(&s, &hist);
    let revs = choose(&s, &hist);
    let in_use = [name(&hist[1])];
    let gone = prune(&s, &hist, &revs, &in_use);
    // Live: hist[0] (current, same template as ra), hist[1] (a pod), the new update one.
    assert_eq!(
        gone,
        [name(&hist[2]).to_string(), name(&hist[3]).to_string()]
    );
}

#[test]
fn status_table() {
    let old = sts(3, "nginx:1");
    let r1 = rev_of(&old, 1);
    let mut s = with_current(sts(3, "nginx:2"), &r1);
    s["spec"]["minReadySeconds"] = json!(300);
    let r2 = rev_of(&s, 2);
    let mut young = pod_at(&s, 2, &r2, "ready");
    young["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T00:09:00Z");
    let pods = vec![
        pod_at(&old, 0, &r1, "ready"),
        pod_at(&old, 1, &r1, "pending"),
        young,
    ];
    let plan = reconcile(&s, &pods, &[r1.clone(), r2.clone()], &[], now());
    assert_eq!(
        plan.status,
        json!({"replicas": 3, "readyReplicas": 2, "availableReplicas": 1,
            "currentReplicas": 2, "updatedReplicas": 1, "currentRevision": name(&r1),
            "updateRevision": name(&r2), "collisionCount": 0, "observedGeneration": 3})
    );
    assert_eq!(plan.requeue_after, Some(300));
    // Everything updated and ready: the update revision becomes current.
    let s = with_current(sts(2, "nginx:2"), &r1);
    let pods = vec![pod_at(&s, 0, &r2, "ready"), pod_at(&s, 1, &r2, "ready")];
    let plan = reconcile(&s, &pods, &[r1.clone(), r2.clone()], &[], now());
    assert_eq!(plan.status["currentRevision"], name(&r2));
    assert_eq!(plan.status["currentReplicas"], 2);
    assert!(plan.prune.is_empty());
    assert!(status_changed(&s, &plan.status));
    let mut same = s.clone();
    same["status"] = plan.status.clone();
    assert!(!status_changed(&same, &plan.status));
}

#[test]
fn adoption_release_and_deletion() {
    let s = sts(2, "nginx:1");
    let r = rev_of(&s, 1);
    let s = with_current(s, &r);
    let mut orphan = pod_at(&s, 0, &r, "ready");
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let mut stray = orphan.clone();
    stray["metadata"]["name"] = json!("other-0");
    let mut moved = pod_at(&s, 1, &r, "ready");
    moved["metadata"]["labels"]["app"] = json!("else");
    let plan = reconcile(
        &s,
        &[orphan, stray, moved],
        std::slice::from_ref(&r),
        &[],
        now(),
    );
    assert_eq!(names(&plan.adopt), ["web-0"]);
    assert_eq!(names(&plan.release), ["web-1"]);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    // A set being deleted only reports status.
    let mut gone = s.clone();
    gone["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:09:00Z");
    let plan = reconcile(&gone, &[], std::slice::from_ref(&r), &[], now());
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.status["replicas"], 0);
}
