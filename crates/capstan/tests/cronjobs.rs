//! The CronJob controller end to end on a simulated node, driven with the real kubectl: an
//! every-minute CronJob (Forbid, timeZone Etc/UTC) whose pods the simulator completes gets a
//! Job `<name>-<minutes since the epoch>` at the first minute after its creation, the Job
//! completes and lastSuccessfulTime is set; `kubectl create job --from=cronjob/…` works;
//! `kubectl get cronjobs` shows kube's columns; suspend stops further runs; schedules and
//! time zones that do not parse are refused with 422 as kube-apiserver refuses them.
//! One minute boundary to wait for the first run and one more to see suspend hold: ~2 min.

mod common;

use common::{Backend, Server, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

const NS: &str = "cj";

const TICK: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "* * * * *"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  jobTemplate:
    metadata:
      labels: {app: tick}
    spec:
      template:
        metadata:
          labels: {app: tick}
          annotations: {sim.capstan.io/complete-after-seconds: "2"}
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: busybox:1.36
"#;

fn get(s: &Server, what: &[&str]) -> Value {
    let mut a = vec!["-n", NS, "get"];
    a.extend_from_slice(what);
    a.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&s.kubectl(&a).stdout).unwrap_or(Value::Null)
}

fn until(s: &Server, secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} not within {secs}s\ncronjobs:\n{}\njobs:\n{}\nevents:\n{}",
            s.kubectl(&["-n", NS, "get", "cronjobs", "-o", "yaml"])
                .stdout,
            s.kubectl(&["-n", NS, "get", "jobs", "-o", "wide"]).stdout,
            s.kubectl(&["-n", NS, "get", "events"]).stdout
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn time(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The scheduled (not manually created) Jobs of `tick`.
fn scheduled_jobs(s: &Server) -> Vec<Value> {
    get(s, &["jobs"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("tick-")
        })
        .collect()
}

fn refused(s: &Server, yaml: &str) -> String {
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], yaml).err()
}

#[test]
fn every_minute_cronjob_runs_completes_and_suspends() {
    let s = Server::start_backend(Backend::Embedded, &[]);
    let _sim = Simulator::start(&s, 1, "c", &[]);
    s.wait_nodes_ready(1);
    s.kubectl(&["create", "namespace", NS]).ok();

    // Validation: 422 naming the field, as kube-apiserver words it.
    let e = s
        .kubectl(&[
            "-n",
            NS,
            "create",
            "cronjob",
            "bad",
            "--image=busybox",
            "--schedule=61 * * * *",
        ])
        .err();
    assert!(
        e.contains(r#"spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61"#),
        "{e}"
    );
    let e = refused(
        &s,
        &TICK
            .replace("name: tick", "name: tz")
            .replace("Etc/UTC", "Mars/Olympus"),
    );
    assert!(
        e.contains(
            r#"spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#
        ),
        "{e}"
    );
    let e = refused(
        &s,
        &TICK
            .replace("name: tick", "name: tzs")
            .replace(r#""* * * * *""#, r#""TZ=UTC * * * * *""#)
            .replace("  timeZone: Etc/UTC\n", ""),
    );
    assert!(
        e.contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{e}"
    );

    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], TICK).ok();
    let created = time(&get(&s, &["cronjob", "tick"])["metadata"]["creationTimestamp"]).unwrap();

    // kubectl get cronjobs: kube's columns, nothing scheduled yet (kube never runs times
    // before the CronJob existed).
    let out = s.kubectl(&["-n", NS, "get", "cronjobs"]).ok();
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        "{out}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("tick"), "{out}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    // tick * * * * * Etc/UTC False 0 <none> AGE
    assert_eq!(&cells[6..10], ["Etc/UTC", "False", "0", "<none>"], "{out}");

    // A Job by hand from the CronJob's template (kubectl builds it client-side).
    let out = s
        .kubectl(&["-n", NS, "create", "job", "--from=cronjob/tick", "manual"])
        .ok();
    assert!(out.contains("job.batch/manual created"), "{out}");
    let m = get(&s, &["job", "manual"]);
    assert_eq!(m["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(m["metadata"]["ownerReferences"][0]["name"], "tick");
    assert_eq!(
        m["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    until(&s, 30, "manual job complete", || {
        get(&s, &["job", "manual"])["status"]["succeeded"] == 1
    });

    // The first run: at the first minute boundary after creation.
    until(&s, 70, "first scheduled job", || {
        !scheduled_jobs(&s).is_empty()
    });
    let j = scheduled_jobs(&s).remove(0);
    let cj = get(&s, &["cronjob", "tick"]);
    let last = time(&cj["status"]["lastScheduleTime"]).expect("lastScheduleTime");
    assert!(
        last > created && last.timestamp() % 60 == 0,
        "{last} vs {created}"
    );
    assert!(last - created <= chrono::Duration::seconds(60));
    assert_eq!(
        j["metadata"]["name"],
        format!("tick-{}", last.timestamp() / 60)
    );
    assert_eq!(
        j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        last.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert_eq!(j["metadata"]["labels"]["app"], "tick");
    let owner = &j["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["uid"], cj["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    // Created on time: within a few seconds of the due time.
    let made = time(&j["metadata"]["creationTimestamp"]).unwrap();
    assert!(
        made - last <= chrono::Duration::seconds(5),
        "{made} vs {last}"
    );

    // It completes; the CronJob sees it.
    until(&s, 30, "lastSuccessfulTime", || {
        let st = &get(&s, &["cronjob", "tick"])["status"];
        st["lastSuccessfulTime"].is_string() && st["active"].as_array().is_none_or(|a| a.is_empty())
    });
    let events = s
        .kubectl(&[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=tick",
        ])
        .ok();
    let jn = j["metadata"]["name"].as_str().unwrap();
    assert!(events.contains(&format!("Created job {jn}")), "{events}");
    assert!(events.contains("SawCompletedJob"), "{events}");

    // Suspended: no run at the next minute boundary.
    s.kubectl(&[
        "-n",
        NS,
        "patch",
        "cronjob",
        "tick",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ])
    .ok();
    let out = s.kubectl(&["-n", NS, "get", "cronjobs"]).ok();
    let cells: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&cells[7..9], ["True", "0"], "{out}");
    assert_ne!(cells[9], "<none>", "{out}");
    let next = last + chrono::Duration::seconds(60);
    while chrono::Utc::now() < next + chrono::Duration::seconds(4) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(scheduled_jobs(&s).len(), 1, "a run while suspended");
    let st = &get(&s, &["cronjob", "tick"])["status"];
    assert_eq!(time(&st["lastScheduleTime"]), Some(last));
    assert!(st["active"].as_array().is_none_or(|a| a.is_empty()), "{st}");
}
