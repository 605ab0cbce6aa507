use super::*;
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn pod(name: &str, phase: &str, created: &str, node: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "d", "uid": name, "creationTimestamp": created},
        "spec": {"nodeName": node}, "status": {"phase": phase}})
}

fn names(v: &[&Value]) -> Vec<String> {
    v.iter().map(|p| name(p).to_string()).collect()
}

#[test]
fn terminated_phases() {
    for (phase, done) in [
        ("Pending", false),
        ("Running", false),
        ("Unknown", false),
        ("", false),
        ("Succeeded", true),
        ("Failed", true),
    ] {
        assert_eq!(terminated(&pod("p", phase, "", "n")), done, "{phase}");
    }
}

#[test]
fn threshold_deletes_evicted_then_oldest() {
    let mut evicted = pod("ev", "Failed", "2025-01-01T00:09:00Z", "n");
    evicted["status"]["reason"] = json!("Evicted");
    let pods = vec![
        pod("c", "Succeeded", "2025-01-01T00:03:00Z", "n"),
        pod("a", "Failed", "2025-01-01T00:01:00Z", "n"),
        pod("running-old", "Running", "2025-01-01T00:00:00Z", "n"),
        pod("b2", "Succeeded", "2025-01-01T00:02:00Z", "n"),
        pod("b1", "Succeeded", "2025-01-01T00:02:00Z", "n"),
        evicted,
    ];
    // 5 terminated, threshold 2: 3 go — the evicted one first, then a, then b1 (name breaks the tie).
    assert_eq!(names(&over_threshold(&pods, 2)), ["ev", "a", "b1"]);
    assert_eq!(names(&over_threshold(&pods, 4)), ["ev"]);
    assert!(over_threshold(&pods, 5).is_empty());
    assert!(over_threshold(&pods, 0).is_empty(), "0 disables");
    assert!(over_threshold(&pods, -1).is_empty());
}

#[test]
fn orphans_wait_out_the_quarantine() {
    let pods = vec![
        pod("on-live", "Running", "", "live"),
        pod("on-gone", "Running", "", "gone"),
        pod("on-gone-2", "Succeeded", "", "gone"),
        pod("unbound", "Pending", "", ""),
    ];
    let nodes: HashSet<String> = ["live".to_string()].into();
    let missing = missing_nodes(&pods, &nodes);
    assert_eq!(missing, BTreeSet::from(["gone".to_string()]));
    let mut q = Quarantine::default();
    let t0 = t("2025-01-01T00:00:00Z");
    q.observe(&missing, t0);
    assert!(q.expired(t0).is_empty());
    assert_eq!(q.next_expiry(t0), Some(chrono::Duration::seconds(40)));
    // Seen missing again later: the quarantine still counts from the first sighting.
    q.observe(&missing, t("2025-01-01T00:00:20Z"));
    assert!(q.expired(t("2025-01-01T00:00:39Z")).is_empty());
    assert_eq!(q.expired(t("2025-01-01T00:00:40Z")), ["gone"]);
    let gone: HashSet<String> = q.expired(t("2025-01-01T00:00:40Z")).into_iter().collect();
    assert_eq!(names(&orphaned(&pods, &gone)), ["on-gone", "on-gone-2"]);
    // A node that comes back leaves the quarantine and starts over if it goes again.
    q.observe(&BTreeSet::new(), t("2025-01-01T00:00:41Z"));
    assert!(q.expired(t("2025-01-01T00:01:00Z")).is_empty());
    assert_eq!(q.next_expiry(t0), None);
    q.observe(&missing, t("2025-01-01T00:01:00Z"));
    assert!(q.expired(t("2025-01-01T00:01:39Z")).is_empty());
}

#[test]
fn unscheduled_terminating_pods() {
    let mut a = pod("a", "Pending", "", "");
    a["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let mut b = pod("b", "Running", "", "n");
    b["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let c = pod("c", "Pending", "", "");
    let pods = vec![a, b, c];
    assert_eq!(names(&unscheduled_terminating(&pods)), ["a"]);
}

#[test]
fn failed_status_with_disruption_target() {
    let now = t("2025-01-01T00:05:00Z");
    let mut p = pod("p", "Running", "", "gone");
    p["status"]["conditions"] =
        json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]);
    let s = failed_status(&p, Some(orphan_condition()), now).unwrap();
    assert_eq!(s["phase"], "Failed");
    let c = s["conditions"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["type"], "Ready");
    assert_eq!(
        c[1],
        json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": "2025-01-01T00:05:00Z"})
    );
    // An existing True DisruptionTarget keeps its transition time; a False one moves.
    p["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True",
        "reason": "Other", "lastTransitionTime": "2025-01-01T00:01:00Z"}]);
    let s = failed_status(&p, Some(orphan_condition()), now).unwrap();
    assert_eq!(
        s["conditions"][0]["lastTransitionTime"],
        "2025-01-01T00:01:00Z"
    );
    assert_eq!(s["conditions"][0]["reason"], "DeletionByPodGC");
    p["status"]["conditions"][0]["status"] = json!("False");
    let s = failed_status(&p, Some(orphan_condition()), now).unwrap();
    assert_eq!(
        s["conditions"][0]["lastTransitionTime"],
        "2025-01-01T00:05:00Z"
    );
    // Without a condition only the phase changes.
    let s = failed_status(&pod("q", "Pending", "", ""), None, now).unwrap();
    assert_eq!(s, json!({"phase": "Failed"}));
    // Terminal pods are deleted as they are.
    assert_eq!(
        failed_status(&pod("r", "Succeeded", "", "gone"), None, now),
        None
    );
}
