use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn pdb(spec: Value) -> Value {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    json!({"metadata": {"name": "b", "namespace": "d", "generation": 2}, "spec": spec})
}

fn pod(n: &str, ready: bool, owner: Option<&str>) -> Value {
    let mut p = json!({"metadata": {"name": n, "namespace": "d", "labels": {"app": "web"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
    if let Some(o) = owner {
        p["metadata"]["ownerReferences"] =
            json!([{"kind": "ReplicaSet", "name": o, "uid": o, "controller": true}]);
    }
    p
}

fn scale_of(p: &Value) -> Result<(String, i64), String> {
    let r = crate::controller_ref(p).ok_or("no ref")?;
    let uid = r["uid"].as_str().unwrap_or("").to_string();
    match uid.as_str() {
        "rs4" => Ok((uid, 4)),
        "rs10" => Ok((uid, 10)),
        _ => Err(format!("found no controllers for pod {:?}", name(p))),
    }
}

fn summary(s: &Value) -> (i64, i64, i64, i64, String) {
    (
        s["expectedPods"].as_i64().unwrap_or(-1),
        s["desiredHealthy"].as_i64().unwrap_or(-1),
        s["currentHealthy"].as_i64().unwrap_or(-1),
        s["disruptionsAllowed"].as_i64().unwrap_or(-1),
        s["conditions"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed, condition reason.
type Want = (i64, i64, i64, i64, &'static str);

#[test]
fn budgets() {
    let four = |ready: usize| -> Vec<Value> {
        (0..4)
            .map(|i| pod(&format!("p{i}"), i < ready, Some("rs4")))
            .collect()
    };
    let mut other = pod("x", true, None);
    other["metadata"]["labels"] = json!({"app": "db"});
    let cases: Vec<(&str, Value, Vec<Value>, Want)> = vec![
        (
            "minAvailable int",
            json!({"minAvailable": 2}),
            four(3),
            (4, 2, 3, 1, "SufficientPods"),
        ),
        (
            "minAvailable int, bare pods work",
            json!({"minAvailable": 1}),
            vec![pod("a", true, None), pod("b", true, None)],
            (2, 1, 2, 1, "SufficientPods"),
        ),
        (
            "minAvailable = healthy",
            json!({"minAvailable": 3}),
            four(3),
            (4, 3, 3, 0, "InsufficientPods"),
        ),
        (
            "minAvailable percent rounds up",
            json!({"minAvailable": "50%"}),
            four(4),
            (4, 2, 4, 2, "SufficientPods"),
        ),
        (
            "maxUnavailable int",
            json!({"maxUnavailable": 1}),
            four(4),
            (4, 3, 4, 1, "SufficientPods"),
        ),
        (
            "maxUnavailable int, one not ready",
            json!({"maxUnavailable": 1}),
            four(3),
            (4, 3, 3, 0, "InsufficientPods"),
        ),
        (
            "maxUnavailable percent against scale",
            json!({"maxUnavailable": "30%"}),
            vec![pod("a", true, Some("rs10"))],
            (10, 7, 1, 0, "InsufficientPods"),
        ),
        (
            "maxUnavailable on bare pods fails",
            json!({"maxUnavailable": 1}),
            vec![pod("a", true, None)],
            (-1, -1, -1, 0, "SyncFailed"),
        ),
        (
            "selector filters",
            json!({"minAvailable": 0}),
            vec![other],
            (0, 0, 0, 0, "InsufficientPods"),
        ),
    ];
    for (what, spec, pods, want) in cases {
        let s = status(&pdb(spec), &pods, &scale_of, now());
        let got = summary(&s);
        assert_eq!(
            (got.0, got.1, got.2, got.3, got.4.as_str()),
            want,
            "{what}: {s:#}"
        );
        assert_eq!(s["observedGeneration"], 2, "{what}");
    }
}

#[test]
fn disrupted_pods_are_not_healthy_until_they_expire() {
    let mut b = pdb(json!({"minAvailable": 1}));
    b["status"] = json!({"disruptedPods": {"p0": "2025-01-01T00:09:30Z", "p1": "2025-01-01T00:01:00Z", "gone": "2025-01-01T00:09:30Z"}});
    let pods = vec![
        pod("p0", true, None),
        pod("p1", true, None),
        pod("p2", true, None),
    ];
    let s = status(&b, &pods, &scale_of, now());
    assert_eq!(s["currentHealthy"], 2);
    assert_eq!(s["disruptionsAllowed"], 1);
    assert_eq!(s["disruptedPods"], json!({"p0": "2025-01-01T00:09:30Z"}));
    assert!(status_changed(&b, &s));
}

#[test]
fn scaled_values() {
    assert_eq!(scaled(&json!(3), 10), Ok((3, false)));
    assert_eq!(scaled(&json!("25%"), 10), Ok((3, true)));
    assert_eq!(scaled(&json!("100%"), 7), Ok((7, true)));
    assert!(scaled(&json!("x"), 7).is_err());
}
