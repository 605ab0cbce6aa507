use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:10:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn job(completions: i64, parallelism: i64) -> Value {
    json!({"metadata": {"name": "pi", "namespace": "d", "uid": "job-1"},
        "spec": {"completions": completions, "parallelism": parallelism, "backoffLimit": 2,
            "template": {"metadata": {"labels": {"app": "pi"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"startTime": "2025-01-01T00:00:00Z"}})
}

/// A pod of the job: phase, ended (seconds before now), index.
fn pod(n: &str, phase: &str, ended_ago: i64, index: Option<i64>) -> Value {
    let mut p = pod_from_template(&job(1, 1), index);
    p["metadata"]["name"] = json!(n);
    p["metadata"]["uid"] = json!(format!("u-{n}"));
    let t = (now() - chrono::Duration::seconds(ended_ago)).to_rfc3339();
    p["status"] = json!({"phase": phase, "conditions": [{"type": "Ready",
        "status": if phase == "Running" { "True" } else { "False" }, "lastTransitionTime": t}]});
    p
}

fn types(plan: &Plan) -> Vec<String> {
    plan.status["conditions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["type"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn job_table() {
    struct Case {
        what: &'static str,
        job: Value,
        pods: Vec<Value>,
        create: usize,
        delete: usize,
        conditions: Vec<&'static str>,
        reason: &'static str,
        requeue: Option<i64>,
    }
    let mut deadline = job(3, 2);
    deadline["spec"]["activeDeadlineSeconds"] = json!(60);
    let cases = vec![
        Case {
            what: "start: parallelism pods",
            job: job(3, 2),
            pods: vec![],
            create: 2,
            delete: 0,
            conditions: vec![],
            reason: "",
            requeue: None,
        },
        Case {
            what: "one left: one pod",
            job: job(3, 2),
            pods: vec![
                pod("a", "Succeeded", 5, None),
                pod("b", "Succeeded", 5, None),
            ],
            create: 1,
            delete: 0,
            conditions: vec![],
            reason: "",
            requeue: None,
        },
        Case {
            what: "complete",
            job: job(2, 2),
            pods: vec![
                pod("a", "Succeeded", 5, None),
                pod("b", "Succeeded", 5, None),
            ],
            create: 0,
            delete: 0,
            conditions: vec!["SuccessCriteriaMet", "Complete"],
            reason: "CompletionsReached",
            requeue: None,
        },
        Case {
            what: "failure within backoff: wait 10 s after the first",
            job: job(1, 1),
            pods: vec![pod("a", "Failed", 4, None)],
            create: 0,
            delete: 0,
            conditions: vec![],
            reason: "",
            requeue: Some(6),
        },
        Case {
            what: "second failure: 20 s, past it a replacement",
            job: job(1, 1),
            pods: vec![pod("a", "Failed", 100, None), pod("b", "Failed", 25, None)],
            create: 1,
            delete: 0,
            conditions: vec![],
            reason: "",
            requeue: None,
        },
        Case {
            what: "over backoffLimit 2",
            job: job(2, 2),
            pods: vec![
                pod("a", "Failed", 100, None),
                pod("b", "Failed", 50, None),
                pod("c", "Failed", 1, None),
                pod("d", "Running", 1, None),
            ],
            create: 0,
            delete: 1,
            conditions: vec!["FailureTarget", "Failed"],
            reason: "BackoffLimitExceeded",
            requeue: None,
        },
        Case {
            what: "deadline passed: active pods deleted",
            job: deadline,
            pods: vec![pod("a", "Running", 1, None), pod("b", "Running", 1, None)],
            create: 0,
            delete: 2,
            conditions: vec!["FailureTarget", "Failed"],
            reason: "DeadlineExceeded",
            requeue: None,
        },
    ];
    for c in cases {
        let plan = reconcile(&c.job, &c.pods, now());
        assert_eq!(plan.create.len(), c.create, "{}", c.what);
        assert_eq!(plan.delete.len(), c.delete, "{}", c.what);
        assert_eq!(types(&plan), c.conditions, "{}", c.what);
        if !c.reason.is_empty() {
            assert_eq!(
                plan.status["conditions"][1]["reason"], c.reason,
                "{}",
                c.what
            );
        }
        assert_eq!(plan.requeue_secs, c.requeue, "{}", c.what);
    }
}

#[test]
fn indexed_and_ttl() {
    let mut j = job(4, 2);
    j["spec"]["completionMode"] = json!("Indexed");
    let pods = vec![
        pod("a", "Succeeded", 5, Some(0)),
        pod("b", "Running", 5, Some(1)),
    ];
    let plan = reconcile(&j, &pods, now());
    assert_eq!(plan.create, vec![Some(2)]);
    assert_eq!(plan.status["completedIndexes"], "0");
    assert_eq!(plan.status["active"], 1);
    assert_eq!(plan.status["ready"], 1);
    let p = pod_from_template(&j, Some(2));
    assert_eq!(p["metadata"]["annotations"][INDEX], "2");
    assert_eq!(p["metadata"]["labels"][JOB_NAME], "pi");
    assert_eq!(p["metadata"]["labels"]["controller-uid"], "job-1");
    assert_eq!(
        p["spec"]["containers"][0]["env"][0]["name"],
        "JOB_COMPLETION_INDEX"
    );
    assert_eq!(
        ranges(&[0, 1, 2, 5, 7, 8].into_iter().collect()),
        "0-2,5,7-8"
    );

    let mut done = job(1, 1);
    done["spec"]["ttlSecondsAfterFinished"] = json!(100);
    done["status"]["completionTime"] = json!("2025-01-01T00:09:00Z");
    done["status"]["conditions"] = json!([{"type": "Complete", "status": "True"}]);
    let plan = reconcile::<Value>(&done, &[], now());
    assert!(!plan.delete_job);
    assert_eq!(plan.requeue_secs, Some(40));
    done["spec"]["ttlSecondsAfterFinished"] = json!(60);
    assert!(reconcile::<Value>(&done, &[], now()).delete_job);
}

#[test]
fn on_failure_restarts_count_against_backoff_limit() {
    let mut j = job(1, 1);
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    let with_restarts = |n: i64| {
        let mut p = pod("pi-a", "Running", 0, None);
        p["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": n}]);
        p
    };
    for (restarts, limit, failed) in [(1, 2, false), (2, 2, true), (0, 0, false), (1, 0, true)] {
        let mut j = j.clone();
        j["spec"]["backoffLimit"] = json!(limit);
        let plan = reconcile(&j, &[with_restarts(restarts)], now());
        assert_eq!(
            types(&plan).contains(&"Failed".to_string()),
            failed,
            "{restarts} restarts, limit {limit}: {:?}",
            types(&plan)
        );
        if failed {
            assert_eq!(plan.delete.len(), 1);
            assert_eq!(
                plan.status["conditions"][1]["reason"],
                "BackoffLimitExceeded"
            );
        }
    }
    // restartPolicy Never: restarts are not failures (there are none to count).
    let plan = reconcile(&job(1, 1), &[with_restarts(5)], now());
    assert!(!types(&plan).contains(&"Failed".to_string()));
}
