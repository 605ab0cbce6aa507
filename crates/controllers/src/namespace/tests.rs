use super::*;
use serde_json::json;

fn gvr(group: &str, resource: &str) -> Gvr {
    Gvr {
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        delete_collection: true,
        list: true,
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn group_versions_parse_as_kube() {
    let ok = |gv: &str, g: &str, v: &str| {
        assert_eq!(
            parse_group_version(gv).unwrap(),
            (g.to_string(), v.to_string()),
            "{gv}"
        )
    };
    ok("v1", "", "v1");
    ok("apps/v1", "apps", "v1");
    ok("", "", "");
    assert_eq!(
        parse_group_version("a/b/c").unwrap_err(),
        "unexpected GroupVersion string: a/b/c"
    );
}

#[test]
fn deletable_filters_discovery() {
    let core = json!({"groupVersion": "v1", "resources": [
        {"name": "pods", "namespaced": true, "verbs": ["create", "delete", "deletecollection", "get", "list"]},
        {"name": "pods/status", "namespaced": true, "verbs": ["get", "patch"]},
        {"name": "nodes", "namespaced": false, "verbs": ["delete", "list"]},
        {"name": "bindings", "namespaced": true, "verbs": ["create"]},
        {"name": "events", "namespaced": true, "verbs": ["delete", "list"]},
    ]});
    let apps_v1 = json!({"groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "namespaced": true, "verbs": ["delete", "deletecollection", "list"]}]});
    let apps_old = json!({"groupVersion": "apps/v1beta1", "resources": [
        {"name": "deployments", "namespaced": true, "verbs": ["delete", "list"]},
        {"name": "oldthings", "namespaced": true, "verbs": ["delete"]}]});
    let got = deletable(&[core, apps_v1, apps_old]).unwrap();
    let names: Vec<(String, String, String, bool, bool)> = got
        .iter()
        .map(|g| {
            (
                g.group.clone(),
                g.version.clone(),
                g.resource.clone(),
                g.delete_collection,
                g.list,
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d, l| (a.into(), b.into(), c.into(), d, l);
    assert_eq!(
        names,
        vec![
            s("", "v1", "pods", true, true),
            s("", "v1", "events", false, true),
            s("apps", "v1", "deployments", true, true),
            s("apps", "v1beta1", "oldthings", false, false),
        ]
    );
    // A list without deletable resources is dropped before its groupVersion is parsed.
    let bad_empty = json!({"groupVersion": "x/y/z", "resources": [{"name": "a", "namespaced": false, "verbs": ["delete"]}]});
    assert!(deletable(&[bad_empty]).unwrap().is_empty());
    let bad = json!({"groupVersion": "x/y/z", "resources": [{"name": "a", "namespaced": true, "verbs": ["delete"]}]});
    assert_eq!(
        deletable(&[bad]).unwrap_err(),
        "unexpected GroupVersion string: x/y/z"
    );
}

#[test]
fn pod_grace_estimate() {
    let pod = |phase: &str, grace: i64| json!({"spec": {"terminationGracePeriodSeconds": grace}, "status": {"phase": phase}});
    let deleted = t("2025-01-01T00:00:00Z");
    let pods = [pod("Running", 30), pod("Pending", 10), pod("Succeeded", 99)];
    assert_eq!(pods_estimate(&pods, deleted, t("2025-01-01T00:00:05Z")), 30);
    assert_eq!(pods_estimate(&pods, deleted, t("2025-01-01T00:00:30Z")), 0);
    assert_eq!(pods_estimate(&[], deleted, deleted), 0);
    assert_eq!(
        pods_estimate(&[pod("Failed", 30)], deleted, deleted),
        0,
        "terminal pods wait for nothing"
    );
}

#[test]
fn remaining_content() {
    let g = gvr("", "configmaps");
    assert_eq!(remaining(&g, "x", &[], 0), Ok(Remaining::default()));
    let held = json!({"metadata": {"name": "a", "finalizers": ["foo", "bar"]}});
    let held2 = json!({"metadata": {"name": "b", "finalizers": ["foo"]}});
    let r = remaining(&g, "x", &[held.clone(), held2], 0).unwrap();
    assert_eq!(r.estimate, FINALIZER_ESTIMATE_SECS);
    assert_eq!(r.count, 2);
    assert_eq!(
        r.finalizers,
        BTreeMap::from([("bar".into(), 1), ("foo".into(), 2)])
    );
    // Pods still in their grace period keep the grace estimate.
    let pod = json!({"metadata": {"name": "p"}});
    let r = remaining(&gvr("", "pods"), "x", std::slice::from_ref(&pod), 30).unwrap();
    assert_eq!((r.estimate, r.count), (30, 1));
    // Left over with no reason: an error naming the gvr as Go prints it.
    let (r, e) = remaining(&g, "x", &[pod], 0).unwrap_err();
    assert_eq!(r.count, 0);
    assert_eq!(
        e,
        "unexpected items still remain in namespace: x for gvr: /v1, Resource=configmaps"
    );
}

fn cond<'a>(c: &'a [Value], ty: &str) -> &'a Value {
    c.iter().find(|c| c["type"] == ty).unwrap()
}

#[test]
fn conditions_report_remaining_and_finalizers() {
    let mut pass = Pass::default();
    let pods = gvr("", "pods");
    let cms = gvr("", "configmaps");
    let deploys = gvr("apps", "deployments");
    pass.add(
        &pods,
        Ok(Remaining {
            estimate: 30,
            count: 2,
            ..Default::default()
        }),
    );
    pass.add(
        &cms,
        Ok(Remaining {
            estimate: 15,
            count: 1,
            finalizers: BTreeMap::from([("foo".into(), 1)]),
        }),
    );
    pass.add(&deploys, Ok(Remaining::default()));
    assert_eq!(pass.estimate, 30);
    assert!(!pass.done());
    let ns = json!({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}});
    let c = conditions(&ns, &pass, "2025-01-01T00:00:00Z").unwrap();
    assert_eq!(c.len(), 5);
    let types: Vec<&str> = c.iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "NamespaceDeletionDiscoveryFailure",
            "NamespaceDeletionGroupVersionParsingFailure",
            "NamespaceDeletionContentFailure",
            "NamespaceContentRemaining",
            "NamespaceFinalizersRemaining"
        ]
    );
    let r = cond(&c, "NamespaceContentRemaining");
    assert_eq!(r["status"], "True");
    assert_eq!(r["reason"], "SomeResourcesRemain");
    assert_eq!(
        r["message"],
        "Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances"
    );
    let f = cond(&c, "NamespaceFinalizersRemaining");
    assert_eq!(f["reason"], "SomeFinalizersRemain");
    assert_eq!(
        f["message"],
        "Some content in the namespace has finalizers remaining: foo in 1 resource instances"
    );
    let d = cond(&c, "NamespaceDeletionDiscoveryFailure");
    assert_eq!(
        (&d["status"], &d["reason"], &d["message"]),
        (
            &json!("False"),
            &json!("ResourcesDiscovered"),
            &json!("All resources successfully discovered")
        )
    );
    // Unchanged on a second pass: no update.
    let ns2 = json!({"status": {"conditions": c}});
    assert_eq!(conditions(&ns2, &pass, "2025-01-01T00:01:00Z"), None);
    // Content gone: flips to OK, the transition time moves, the others keep theirs.
    let clean = Pass::default();
    assert!(clean.done());
    let c2 = conditions(&ns2, &clean, "2025-01-01T00:02:00Z").unwrap();
    let r = cond(&c2, "NamespaceContentRemaining");
    assert_eq!(
        (&r["status"], &r["reason"], &r["message"]),
        (
            &json!("False"),
            &json!("ContentRemoved"),
            &json!("All content successfully removed")
        )
    );
    assert_eq!(r["lastTransitionTime"], "2025-01-01T00:02:00Z");
    assert_eq!(
        cond(&c2, "NamespaceDeletionDiscoveryFailure")["lastTransitionTime"],
        "2025-01-01T00:00:00Z"
    );
}

#[test]
fn conditions_report_failures() {
    let mut pass = Pass {
        discovery_error: Some(discovery_message(&["metrics.k8s.io/v1beta1: 503".into()])),
        group_version_error: Some("unexpected GroupVersion string: a/b/c".into()),
        ..Default::default()
    };
    pass.add(
        &gvr("", "secrets"),
        Err((Remaining::default(), "secrets is forbidden".into())),
    );
    pass.add(
        &gvr("", "configmaps"),
        Err((Remaining::default(), "configmaps failed".into())),
    );
    assert!(!pass.done());
    assert_eq!(pass.estimate, 0);
    let c = conditions(&json!({}), &pass, "2025-01-01T00:00:00Z").unwrap();
    let d = cond(&c, "NamespaceDeletionDiscoveryFailure");
    assert_eq!(d["status"], "True");
    assert_eq!(d["reason"], "DiscoveryFailed");
    assert_eq!(d["message"], "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: 503");
    let g = cond(&c, "NamespaceDeletionGroupVersionParsingFailure");
    assert_eq!(g["reason"], "GroupVersionParsingFailed");
    assert_eq!(g["message"], "unexpected GroupVersion string: a/b/c");
    let f = cond(&c, "NamespaceDeletionContentFailure");
    assert_eq!(f["reason"], "ContentDeletionFailed");
    assert_eq!(
        f["message"],
        "Failed to delete all resource types, 2 remaining: configmaps failed, secrets is forbidden"
    );
    assert_eq!(cond(&c, "NamespaceContentRemaining")["status"], "False");
}

#[test]
fn finalize_removes_only_kubernetes() {
    let ns = json!({"metadata": {"name": "x", "uid": "u", "resourceVersion": "7"},
        "spec": {"finalizers": ["kubernetes", "z.io/b", "a.io/a", "z.io/b"]}});
    assert!(!finalized(&ns));
    let b = finalize_body(&ns);
    assert_eq!(b["spec"]["finalizers"], json!(["a.io/a", "z.io/b"]));
    assert_eq!(b["metadata"]["resourceVersion"], "7");
    assert_eq!(b["kind"], "Namespace");
    assert!(finalized(&b));
    assert!(finalized(&json!({"spec": {}})));
    assert_eq!(
        deleted_at(&json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}})),
        Some(t("2025-01-01T00:00:00Z"))
    );
}
