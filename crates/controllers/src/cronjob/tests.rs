use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cron_job(spec: Value, status: Value) -> Value {
    let mut s = json!({"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": false,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
        "jobTemplate": {"metadata": {"labels": {"app": "tick"}, "annotations": {"a": "b"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                "restartPolicy": "OnFailure"}}}}});
    for (k, v) in spec.as_object().unwrap() {
        if v.is_null() {
            s.as_object_mut().unwrap().remove(k);
        } else {
            s[k] = v.clone();
        }
    }
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "ns", "uid": "cj-uid",
            "creationTimestamp": "2024-01-01T10:00:30Z"},
        "spec": s, "status": status})
}

/// A Job of the CronJob: `state` is "" (running), "Complete" or "Failed".
fn job(n: &str, state: &str, start: Option<&str>, done: Option<&str>) -> Value {
    let mut j = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": n, "namespace": "ns", "uid": format!("uid-{n}"), "resourceVersion": "7",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                "uid": "cj-uid", "controller": true}]},
        "status": {}});
    if let Some(s) = start {
        j["status"]["startTime"] = json!(s);
    }
    if let Some(d) = done {
        j["status"]["completionTime"] = json!(d);
    }
    if !state.is_empty() {
        j["status"]["conditions"] = json!([{"type": state, "status": "True"}]);
    }
    j
}

fn active_ref(n: &str) -> Value {
    json!({"kind": "Job", "namespace": "ns", "name": n, "uid": format!("uid-{n}"),
        "apiVersion": "batch/v1"})
}

struct Case {
    name: &'static str,
    cj: Value,
    jobs: Vec<Value>,
    gone: &'static [&'static str],
    now: &'static str,
    /// The Job created (None: none).
    create: Option<&'static str>,
    /// Active Jobs a Replace deletes first.
    replace: &'static [&'static str],
    deleted: &'static [&'static str],
    reasons: &'static [&'static str],
    /// Requeue in ms (after the create, if any); None: none.
    requeue_ms: Option<i64>,
    /// Active Job names in the status to write (before any create).
    active: &'static [&'static str],
}

fn base(name: &'static str, cj: Value, now: &'static str) -> Case {
    Case {
        name,
        cj,
        jobs: vec![],
        gone: &[],
        now,
        create: None,
        replace: &[],
        deleted: &[],
        reasons: &[],
        requeue_ms: None,
        active: &[],
    }
}

// 2024-01-01T10:01:00Z is minute 28401721 since the epoch.
const M1001: &str = "tick-28401721";

#[test]
fn reconcile_table() {
    let cases = vec![
        Case {
            requeue_ms: Some(15_100),
            ..base(
                "not due yet",
                cron_job(json!({}), json!({})),
                "2024-01-01T10:00:45Z",
            )
        },
        // 10:00:00 is before creationTimestamp (10:00:30): never run, even with a deadline.
        Case {
            requeue_ms: Some(1_100),
            ..base(
                "nothing before creation",
                cron_job(json!({"startingDeadlineSeconds": 3600}), json!({})),
                "2024-01-01T10:00:59Z",
            )
        },
        Case {
            create: Some(M1001),
            requeue_ms: Some(55_100),
            ..base(
                "due",
                cron_job(json!({}), json!({})),
                "2024-01-01T10:01:05Z",
            )
        },
        // Several missed: only the most recent runs.
        Case {
            create: Some("tick-28401725"),
            requeue_ms: Some(30_100),
            ..base(
                "missed a few",
                cron_job(
                    json!({}),
                    json!({"lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:05:30Z",
            )
        },
        Case {
            create: Some("tick-28401725"),
            reasons: &["TooManyMissedTimes"],
            requeue_ms: Some(30_100),
            ..base(
                "missed many",
                cron_job(
                    json!({}),
                    json!({"lastScheduleTime": "2023-12-31T10:00:00Z"}),
                ),
                "2024-01-01T10:05:30Z",
            )
        },
        // The deadline hides 10:05 (more than 10 s ago): wait for 10:06.
        Case {
            requeue_ms: Some(30_100),
            ..base(
                "past the starting deadline",
                cron_job(
                    json!({"startingDeadlineSeconds": 10}),
                    json!({"lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:05:30Z",
            )
        },
        Case {
            create: Some("tick-28401725"),
            requeue_ms: Some(30_100),
            ..base(
                "within the starting deadline",
                cron_job(
                    json!({"startingDeadlineSeconds": 60}),
                    json!({"lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:05:30Z",
            )
        },
        // With the deadline, 100+ missed times are not counted: no warning.
        Case {
            create: Some("tick-28401725"),
            requeue_ms: Some(30_100),
            ..base(
                "deadline bounds the missed count",
                cron_job(
                    json!({"startingDeadlineSeconds": 60}),
                    json!({"lastScheduleTime": "2023-12-31T10:00:00Z"}),
                ),
                "2024-01-01T10:05:30Z",
            )
        },
        Case {
            requeue_ms: Some(55_100),
            ..base(
                "already scheduled",
                cron_job(
                    json!({}),
                    json!({"lastScheduleTime": "2024-01-01T10:01:00Z"}),
                ),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job(M1001, "", None, None)],
            requeue_ms: Some(55_100),
            active: &[M1001],
            ..base(
                "already active by name",
                cron_job(json!({}), json!({"active": [active_ref(M1001)]})),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job("tick-28401720", "", None, None)],
            reasons: &["JobAlreadyActive"],
            requeue_ms: Some(55_100),
            active: &["tick-28401720"],
            ..base(
                "forbid while one runs",
                cron_job(
                    json!({"concurrencyPolicy": "Forbid"}),
                    json!({"active": [active_ref("tick-28401720")], "lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job(
                "tick-28401720",
                "Complete",
                Some("2024-01-01T10:00:01Z"),
                Some("2024-01-01T10:00:20Z"),
            )],
            create: Some(M1001),
            reasons: &["SawCompletedJob"],
            requeue_ms: Some(55_100),
            ..base(
                "forbid after it finished",
                cron_job(
                    json!({"concurrencyPolicy": "Forbid"}),
                    json!({"active": [active_ref("tick-28401720")], "lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job("tick-28401720", "", None, None)],
            create: Some(M1001),
            replace: &["tick-28401720"],
            requeue_ms: Some(55_100),
            active: &["tick-28401720"],
            ..base(
                "replace deletes the running one",
                cron_job(
                    json!({"concurrencyPolicy": "Replace"}),
                    json!({"active": [active_ref("tick-28401720")], "lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job("tick-28401720", "", None, None)],
            create: Some(M1001),
            requeue_ms: Some(55_100),
            active: &["tick-28401720"],
            ..base(
                "allow runs alongside",
                cron_job(
                    json!({}),
                    json!({"active": [active_ref("tick-28401720")], "lastScheduleTime": "2024-01-01T10:00:00Z"}),
                ),
                "2024-01-01T10:01:05Z",
            )
        },
        base(
            "suspended",
            cron_job(json!({"suspend": true}), json!({})),
            "2024-01-01T10:01:05Z",
        ),
        Case {
            jobs: vec![
                job(
                    "tick-1",
                    "Complete",
                    Some("2024-01-01T09:01:00Z"),
                    Some("2024-01-01T09:01:10Z"),
                ),
                job(
                    "tick-2",
                    "Complete",
                    Some("2024-01-01T09:02:00Z"),
                    Some("2024-01-01T09:02:10Z"),
                ),
                job(
                    "tick-3",
                    "Complete",
                    Some("2024-01-01T09:03:00Z"),
                    Some("2024-01-01T09:03:10Z"),
                ),
                job("tick-0", "Complete", None, Some("2024-01-01T09:00:10Z")),
                job(
                    "tick-4",
                    "Complete",
                    Some("2024-01-01T09:04:00Z"),
                    Some("2024-01-01T09:04:10Z"),
                ),
                job("tick-5", "Failed", Some("2024-01-01T09:05:00Z"), None),
                job("tick-6", "Failed", Some("2024-01-01T09:06:00Z"), None),
            ],
            deleted: &["tick-1", "tick-2", "tick-5"],
            requeue_ms: Some(15_100),
            ..base(
                "history limits: oldest first, unstarted last",
                cron_job(json!({}), json!({})),
                "2024-01-01T10:00:45Z",
            )
        },
        Case {
            jobs: vec![job(
                "tick-1",
                "Complete",
                Some("2024-01-01T09:01:00Z"),
                None,
            )],
            deleted: &["tick-1"],
            requeue_ms: Some(15_100),
            ..base(
                "history limit zero",
                cron_job(json!({"successfulJobsHistoryLimit": 0}), json!({})),
                "2024-01-01T10:00:45Z",
            )
        },
        Case {
            jobs: vec![job("other", "", None, None)],
            gone: &["uid-lost"],
            reasons: &["UnexpectedJob", "MissingJob"],
            requeue_ms: Some(15_100),
            active: &["kept"],
            ..base(
                "unexpected and missing jobs",
                cron_job(
                    json!({}),
                    json!({"active": [active_ref("lost"), active_ref("kept")]}),
                ),
                "2024-01-01T10:00:45Z",
            )
        },
        Case {
            reasons: &["UnknownTimeZone"],
            ..base(
                "unknown time zone",
                cron_job(json!({"timeZone": "Mars/Olympus"}), json!({})),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            reasons: &["UnparseableSchedule"],
            ..base(
                "unparseable",
                cron_job(json!({"schedule": "every minute"}), json!({})),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            reasons: &["InvalidSchedule"],
            ..base(
                "never fires",
                cron_job(json!({"schedule": "0 0 30 2 *"}), json!({})),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            reasons: &["UnsupportedSchedule"],
            create: Some(M1001),
            requeue_ms: Some(55_100),
            ..base(
                "TZ in the schedule still runs",
                cron_job(json!({"schedule": "TZ=UTC * * * * *"}), json!({})),
                "2024-01-01T10:01:05Z",
            )
        },
        Case {
            jobs: vec![job(
                "tick-28401720",
                "Complete",
                None,
                Some("2024-01-01T10:00:50Z"),
            )],
            reasons: &["SawCompletedJob"],
            ..base(
                "being deleted: status only",
                {
                    let mut c =
                        cron_job(json!({}), json!({"active": [active_ref("tick-28401720")]}));
                    c["metadata"]["deletionTimestamp"] = json!("2024-01-01T10:01:00Z");
                    c
                },
                "2024-01-01T10:01:05Z",
            )
        },
    ];
    for c in cases {
        let jobs: Vec<&Value> = c.jobs.iter().collect();
        let gone: HashSet<String> = c.gone.iter().map(|s| s.to_string()).collect();
        let p = reconcile(&c.cj, &jobs, &gone, at(c.now), Zone::Utc);
        let n = c.name;
        assert_eq!(
            p.create.as_ref().map(|x| name(&x.job).to_string()),
            c.create.map(str::to_string),
            "{n}: create"
        );
        let replace: Vec<&str> = p
            .create
            .as_ref()
            .map(|x| {
                x.replace
                    .iter()
                    .map(|r| r["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(replace, c.replace, "{n}: replace");
        let deleted: Vec<&str> = p.delete.iter().map(name).collect();
        assert_eq!(deleted, c.deleted, "{n}: deleted");
        let reasons: Vec<&str> = p.events.iter().map(|e| e.1).collect();
        assert_eq!(reasons, c.reasons, "{n}: events {:?}", p.events);
        let requeue = p
            .create
            .as_ref()
            .map_or(p.requeue, |x| x.requeue)
            .map(|d| d.num_milliseconds());
        assert_eq!(requeue, c.requeue_ms, "{n}: requeue");
        let active: Vec<&str> = p.status["active"]
            .as_array()
            .map(|a| a.iter().map(|r| r["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(active, c.active, "{n}: active");
    }
}

#[test]
fn the_job_and_status() {
    let cj = cron_job(json!({}), json!({}));
    let p = reconcile(
        &cj,
        &[],
        &HashSet::new(),
        at("2024-01-01T10:01:05Z"),
        Zone::Utc,
    );
    let c = p.create.unwrap();
    assert_eq!(c.scheduled, at("2024-01-01T10:01:00Z"));
    assert_eq!(
        c.job,
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": M1001,
            "namespace": "ns",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                "uid": "cj-uid", "controller": true, "blockOwnerDeletion": true}],
            "labels": {"app": "tick"},
            "annotations": {"a": "b", SCHEDULED_TIMESTAMP: "2024-01-01T10:01:00Z"}},
            "spec": cj["spec"]["jobTemplate"]["spec"]})
    );
    let mut st = p.status.clone();
    let mut created = c.job.clone();
    created["metadata"]["uid"] = json!("u1");
    created["metadata"]["resourceVersion"] = json!("42");
    record_created(&mut st, &created, c.scheduled);
    assert_eq!(
        st,
        json!({"active": [{"kind": "Job", "namespace": "ns", "name": M1001, "uid": "u1",
            "apiVersion": "batch/v1", "resourceVersion": "42"}],
            "lastScheduleTime": "2024-01-01T10:01:00Z"})
    );
    assert!(status_changed(&cj, &st));
    assert!(!status_changed(
        &cron_job(json!({}), json!(null)),
        &json!({})
    ));
    remove_active(&mut st, "u1");
    assert_eq!(st, json!({"lastScheduleTime": "2024-01-01T10:01:00Z"}));
}

#[test]
fn time_zone_schedules() {
    // 09:00 in Tokyo is 00:00 UTC; the annotation is in the CronJob's zone.
    let cj = cron_job(
        json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}),
        json!({}),
    );
    let p = reconcile(
        &cj,
        &[],
        &HashSet::new(),
        at("2024-01-02T00:00:30Z"),
        Zone::Utc,
    );
    let c = p.create.unwrap();
    assert_eq!(c.scheduled, at("2024-01-02T00:00:00Z"));
    assert_eq!(
        c.job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
        "2024-01-02T09:00:00+09:00"
    );
    // The next run is tomorrow 09:00 Tokyo.
    assert_eq!(
        c.requeue.unwrap().num_milliseconds(),
        (24 * 3600 - 30) * 1000 + 100
    );
    // Without timeZone the schedule is in the controller manager's zone (`local`).
    let cj = cron_job(json!({"schedule": "0 9 * * *"}), json!({}));
    let tokyo = cron::load_location("Asia/Tokyo").unwrap();
    let p = reconcile(&cj, &[], &HashSet::new(), at("2024-01-02T00:00:30Z"), tokyo);
    assert_eq!(p.create.unwrap().scheduled, at("2024-01-02T00:00:00Z"));
    let p = reconcile(
        &cj,
        &[],
        &HashSet::new(),
        at("2024-01-02T00:00:30Z"),
        Zone::Utc,
    );
    assert!(p.create.is_none());
}

#[test]
fn last_successful_time_is_the_newest_completion() {
    let cj = cron_job(
        json!({"successfulJobsHistoryLimit": 5}),
        json!({"lastSuccessfulTime": "2024-01-01T09:30:00Z"}),
    );
    let jobs = [
        job("a", "Complete", None, Some("2024-01-01T09:00:00Z")),
        job("b", "Complete", None, Some("2024-01-01T09:45:00Z")),
        job("c", "Failed", None, Some("2024-01-01T09:50:00Z")),
    ];
    let js: Vec<&Value> = jobs.iter().collect();
    let p = reconcile(
        &cj,
        &js,
        &HashSet::new(),
        at("2024-01-01T10:00:45Z"),
        Zone::Utc,
    );
    assert_eq!(p.status["lastSuccessfulTime"], "2024-01-01T09:45:00Z");
}

#[test]
fn owned_unexpected_unlisted() {
    let cj = cron_job(
        json!({}),
        json!({"active": [active_ref("a"), active_ref("gone")]}),
    );
    let mut foreign = job("x", "", None, None);
    foreign["metadata"]["ownerReferences"][0]["name"] = json!("other");
    let all = [job("a", "", None, None), job("b", "", None, None), foreign];
    let owned = owned_jobs(&cj, &all);
    assert_eq!(
        owned.iter().map(|j| name(j)).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let unexp: Vec<&str> = unexpected(&cj, &owned).into_iter().map(name).collect();
    assert_eq!(unexp, ["b"]);
    let unlisted = unlisted_active(&cj, &owned);
    assert_eq!(unlisted.len(), 1);
    assert_eq!(unlisted[0]["name"], "gone");
}
