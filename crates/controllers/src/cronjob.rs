//! CronJob (kube's pkg/controller/cronjob, the v2 controller of kube 1.32): a Job named
//! `<cronjob>-<scheduled time in minutes since the epoch>` per due time of the schedule
//! (robfig/cron semantics, `spec.timeZone`), startingDeadlineSeconds, concurrencyPolicy
//! Allow/Forbid/Replace, suspend, successful/failed history limits, status.active /
//! lastScheduleTime / lastSuccessfulTime, and the requeue at the next schedule time.
//!
//! As in kube, nothing is scheduled for times before the CronJob's creationTimestamp (or its
//! lastScheduleTime), and of several missed times only the most recent one runs.

use crate::{controller_ref, deleting, name, namespace, str_at, time_at, uid};
use capstan_validation::cron::{self, Schedule, Zone};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// kube's nextScheduleDelta: wake a little after the due time.
pub const NEXT_DELTA_MS: i64 = 100;
/// More missed times than this since the last one: the TooManyMissedTimes warning.
pub const MANY_MISSED: i64 = 100;

/// An event: (warning, reason, message).
pub type Event = (bool, &'static str, String);

/// What one sync of a CronJob should do.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// The status to write (when it differs from the CronJob's), assuming the deletes below
    /// succeed; a create adds to it with [`record_created`].
    pub status: Value,
    /// Finished Jobs past the history limits, oldest first (SuccessfulDelete each).
    pub delete: Vec<Value>,
    pub events: Vec<Event>,
    pub create: Option<Create>,
    /// Sync again after this long (None: only when something changes).
    pub requeue: Option<Duration>,
}

/// The Job to create for a due time.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    pub job: Value,
    pub scheduled: DateTime<Utc>,
    /// concurrencyPolicy Replace: the active Jobs (object references) to delete first.
    pub replace: Vec<Value>,
    /// Sync again after this long once the Job is created.
    pub requeue: Option<Duration>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Jobs a CronJob reconciles: those whose controller reference names it (kube matches
/// the name only).
pub fn owned_jobs<'a>(cj: &Value, jobs: &'a [Value]) -> Vec<&'a Value> {
    jobs.iter()
        .filter(|j| {
            namespace(j) == namespace(cj)
                && controller_ref(j).is_some_and(|r| r["name"].as_str() == Some(name(cj)))
        })
        .collect()
}

fn active(status: &Value) -> Vec<Value> {
    status["active"].as_array().cloned().unwrap_or_default()
}

fn in_active(status: &Value, job_uid: &str) -> bool {
    active(status).iter().any(|r| r["uid"] == job_uid)
}

/// Drop the reference to the Job with `job_uid` from status.active (kube omits an empty list).
pub fn remove_active(status: &mut Value, job_uid: &str) {
    let mut a = active(status);
    a.retain(|r| r["uid"] != job_uid);
    if let Some(m) = status.as_object_mut() {
        if a.is_empty() {
            m.remove("active");
        } else {
            m.insert("active".into(), Value::Array(a));
        }
    }
}

/// The first finished condition's type ("Complete" or "Failed").
pub fn finished_condition(job: &Value) -> Option<&str> {
    job.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["type"].as_str())
}

fn succeeded(job: &Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        })
}

/// Unfinished Jobs the CronJob does not list as active: the edge re-reads the CronJob live
/// before believing its cache (kube's GetCronJob in syncCronJob).
pub fn unexpected<'a>(cj: &Value, jobs: &[&'a Value]) -> Vec<&'a Value> {
    let st = &cj["status"];
    jobs.iter()
        .copied()
        .filter(|j| finished_condition(j).is_none() && !in_active(st, uid(j)))
        .collect()
}

/// Active references with no Job in the cache: the edge GETs each; the uids of those the API
/// answers 404 for are `gone`.
pub fn unlisted_active(cj: &Value, jobs: &[&Value]) -> Vec<Value> {
    let have: HashSet<&str> = jobs.iter().map(|j| uid(j)).collect();
    active(&cj["status"])
        .into_iter()
        .filter(|r| !have.contains(r["uid"].as_str().unwrap_or("")))
        .collect()
}

/// The Job name for a due time.
pub fn job_name(cj: &Value, scheduled: DateTime<Utc>) -> String {
    format!("{}-{}", name(cj), scheduled.timestamp().div_euclid(60))
}

/// The owner reference a CronJob's Jobs carry.
pub fn owner_ref(cj: &Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": name(cj), "uid": uid(cj),
        "controller": true, "blockOwnerDeletion": true})
}

/// The scheduled-timestamp annotation: RFC 3339 in the CronJob's timeZone (UTC without one).
pub fn scheduled_stamp(scheduled: DateTime<Utc>, zone: Zone) -> String {
    let f = |t: DateTime<chrono::FixedOffset>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match zone {
        Zone::Utc => f(scheduled.fixed_offset()),
        Zone::Local => f(scheduled.with_timezone(&chrono::Local).fixed_offset()),
        Zone::Named(tz) => f(scheduled.with_timezone(&tz).fixed_offset()),
    }
}

/// kube's getJobFromTemplate2.
pub fn job_from_template(cj: &Value, scheduled: DateTime<Utc>) -> Value {
    let tpl = &cj["spec"]["jobTemplate"];
    let zone = cron::load_location(str_at(cj, "/spec/timeZone")).unwrap_or(Zone::Utc);
    let mut meta = json!({"name": job_name(cj, scheduled), "namespace": namespace(cj),
        "ownerReferences": [owner_ref(cj)]});
    if let Some(l) = tpl["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty())
    {
        meta["labels"] = Value::Object(l.clone());
    }
    let mut ann = tpl["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    ann.insert(
        SCHEDULED_TIMESTAMP.into(),
        json!(scheduled_stamp(scheduled, zone)),
    );
    meta["annotations"] = Value::Object(ann);
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": tpl["spec"].clone()})
}

/// The object reference status.active holds for a created Job.
pub fn job_ref(job: &Value) -> Value {
    json!({"kind": "Job", "namespace": namespace(job), "name": name(job), "uid": uid(job),
        "apiVersion": "batch/v1", "resourceVersion": job["metadata"]["resourceVersion"]})
}

/// After the Job for `scheduled` was created (or found already there, controlled by us).
pub fn record_created(status: &mut Value, job: &Value, scheduled: DateTime<Utc>) {
    let mut a = active(status);
    a.push(job_ref(job));
    if !status.is_object() {
        *status = json!({});
    }
    status["active"] = Value::Array(a);
    status["lastScheduleTime"] = json!(stamp(scheduled));
}

/// Inputs that bound the search for due times.
struct Times {
    created: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    deadline: Option<i64>,
}

fn times(cj: &Value, status: &Value) -> Times {
    Times {
        created: time_at(cj, "/metadata/creationTimestamp").unwrap_or(DateTime::UNIX_EPOCH),
        last: time_at(status, "/lastScheduleTime"),
        deadline: cj["spec"]["startingDeadlineSeconds"].as_i64(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missed {
    None,
    Few,
    Many,
}

/// (earliest time considered, most recent due time, how many were missed).
type Recent = (DateTime<Utc>, Option<DateTime<Utc>>, Missed);

/// kube's mostRecentScheduleTime: (earliest time considered, the most recent due time at or
/// before now, how many were missed) or the error for a schedule that never fires twice.
fn most_recent(
    t: &Times,
    now: DateTime<Utc>,
    sched: &Schedule,
    with_deadline: bool,
) -> Result<Recent, String> {
    let mut earliest = t.last.unwrap_or(t.created);
    if let (true, Some(d)) = (with_deadline, t.deadline) {
        earliest = earliest.max(now - Duration::seconds(d));
    }
    let (t1, t2) = match sched.next(earliest) {
        Some(t1) => (Some(t1), sched.next(t1)),
        None => (None, None),
    };
    if t1.is_some_and(|t1| now < t1) {
        return Ok((earliest, None, Missed::None));
    }
    if let (Some(t1), Some(t2)) = (t1, t2) {
        if now < t2 {
            return Ok((earliest, Some(t1), Missed::None));
        }
    }
    let between = match (t1, t2) {
        (Some(t1), Some(t2)) => ((t2 - t1).num_milliseconds() as f64 / 1000.0).round() as i64,
        _ => 0,
    };
    let (Some(t1), true) = (t1, between >= 1) else {
        return Err("time difference between two schedules is less than 1 second".into());
    };
    let elapsed = (now - t1).num_seconds();
    let missed = elapsed / between + 1;
    let potential = t1 + Duration::seconds((missed - 2) * between);
    let mut recent = None;
    let mut cur = sched.next(potential);
    while let Some(x) = cur.filter(|x| *x <= now) {
        recent = Some(x);
        cur = sched.next(x);
    }
    let m = if missed > MANY_MISSED {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok((earliest, recent, m))
}

/// kube's nextScheduleTimeDuration: how long until the next due time (plus 100 ms).
fn next_duration(t: &Times, now: DateTime<Utc>, sched: &Schedule) -> Option<Duration> {
    let from = match most_recent(t, now, sched, false) {
        Err(_) => now,
        Ok((_, Some(r), _)) => r,
        Ok((earliest, None, Missed::None)) => earliest,
        Ok((_, None, _)) => now,
    };
    sched
        .next(from)
        .map(|n| n + Duration::milliseconds(NEXT_DELTA_MS) - now)
}

/// One sync of `cj` (kube's cleanupFinishedJobs + syncCronJob). `jobs` are the CronJob's
/// ([`owned_jobs`]); `gone` the uids of active Jobs the API no longer has; `local` the zone a
/// schedule without timeZone runs in (the controller manager's own).
pub fn reconcile(
    cj: &Value,
    jobs: &[&Value],
    gone: &HashSet<String>,
    now: DateTime<Utc>,
    local: Zone,
) -> Plan {
    let mut plan = Plan {
        status: cj["status"].clone(),
        ..Plan::default()
    };
    if !plan.status.is_object() {
        plan.status = json!({});
    }
    let spec = &cj["spec"];
    let st = &mut plan.status;

    // History limits, oldest first by start time (unstarted last), then name.
    let (ok_limit, failed_limit) = (
        spec["successfulJobsHistoryLimit"].as_i64(),
        spec["failedJobsHistoryLimit"].as_i64(),
    );
    for (kind, limit) in [("Complete", ok_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Value> = jobs
            .iter()
            .copied()
            .filter(|j| finished_condition(j) == Some(kind))
            .collect();
        let excess = done.len() as i64 - limit;
        if excess <= 0 {
            continue;
        }
        done.sort_by(|a, b| {
            let (sa, sb) = (
                time_at(a, "/status/startTime"),
                time_at(b, "/status/startTime"),
            );
            match (sa, sb) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => name(a).cmp(name(b)),
            }
        });
        for j in done.into_iter().take(excess as usize) {
            remove_active(st, uid(j));
            plan.delete.push(j.clone());
        }
    }

    // Finished Jobs leave status.active; the newest completion is lastSuccessfulTime.
    for j in jobs {
        let found = in_active(st, uid(j));
        match finished_condition(j) {
            None if !found => plan.events.push((
                true,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    name(j)
                ),
            )),
            None => {}
            Some(cond) => {
                if found {
                    remove_active(st, uid(j));
                    plan.events.push((
                        false,
                        "SawCompletedJob",
                        format!("Saw completed job: {}, condition: {cond}", name(j)),
                    ));
                }
                if succeeded(j) {
                    let done = time_at(j, "/status/completionTime");
                    let last = time_at(st, "/lastSuccessfulTime");
                    if let Some(d) = done.filter(|d| last.is_none_or(|l| *d > l)) {
                        st["lastSuccessfulTime"] = json!(stamp(d));
                    }
                }
            }
        }
    }
    for r in active(st) {
        let u = r["uid"].as_str().unwrap_or("");
        if gone.contains(u) {
            plan.events.push((
                false,
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    r["name"].as_str().unwrap_or("")
                ),
            ));
            remove_active(st, u);
        }
    }
    if deleting(cj) {
        return plan;
    }

    let tz = spec["timeZone"].as_str();
    if let Some(tz) = tz {
        if let Err(e) = cron::load_location(tz) {
            plan.events.push((
                true,
                "UnknownTimeZone",
                format!("invalid timeZone: {tz:?}: {e}"),
            ));
            return plan;
        }
    }
    if spec["suspend"].as_bool() == Some(true) {
        return plan;
    }
    let schedule = str_at(cj, "/spec/schedule");
    if schedule.contains("TZ") {
        plan.events.push((true, "UnsupportedSchedule", format!("CRON_TZ or TZ used in schedule {schedule:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details")));
    }
    let mut sched = match cron::parse_standard(&cron::format_schedule(schedule, tz)) {
        Ok(s) => s,
        Err(e) => {
            plan.events.push((
                true,
                "UnparseableSchedule",
                format!("unparseable schedule: {schedule:?} : {e}"),
            ));
            return plan;
        }
    };
    if sched.zone == Zone::Local {
        sched.zone = local;
    }

    let t = times(cj, st);
    let scheduled = match most_recent(&t, now, &sched, true) {
        Err(e) => {
            plan.events.push((
                true,
                "InvalidSchedule",
                format!("invalid schedule: {schedule} : {e}"),
            ));
            return plan;
        }
        Ok((_, Some(r), missed)) if r <= now => {
            if missed == Missed::Many {
                plan.events.push((true, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into()));
            }
            r
        }
        Ok(_) => {
            plan.requeue = next_duration(&t, now, &sched);
            return plan;
        }
    };
    plan.requeue = next_duration(&t, now, &sched);
    if t.deadline
        .is_some_and(|d| scheduled + Duration::seconds(d) < now)
    {
        plan.events.push((
            true,
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                scheduled.format("%a, %d %b %Y %H:%M:%S %z")
            ),
        ));
        return plan;
    }
    let jname = job_name(cj, scheduled);
    if active(st).iter().any(|r| r["name"] == jname.as_str()) || t.last == Some(scheduled) {
        return plan;
    }
    let policy = spec["concurrencyPolicy"].as_str().unwrap_or("Allow");
    if policy == "Forbid" && !active(st).is_empty() {
        plan.events.push((
            false,
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        ));
        return plan;
    }
    let replace = if policy == "Replace" {
        active(st)
    } else {
        Vec::new()
    };
    let after = Times {
        last: Some(scheduled),
        ..t
    };
    plan.create = Some(Create {
        job: job_from_template(cj, scheduled),
        scheduled,
        replace,
        requeue: next_duration(&after, now, &sched),
    });
    plan
}

/// When to look at a CronJob whose schedule or timeZone changed (kube's updateCronJob): at
/// its next due time; None when the schedule does not parse (the sync reports that).
pub fn next_sync(cj: &Value, now: DateTime<Utc>, local: Zone) -> Option<Duration> {
    let tz = cj["spec"]["timeZone"].as_str();
    let mut sched =
        cron::parse_standard(&cron::format_schedule(str_at(cj, "/spec/schedule"), tz)).ok()?;
    if sched.zone == Zone::Local {
        sched.zone = local;
    }
    next_duration(&times(cj, &cj["status"]), now, &sched)
}

/// Whether `want` differs from the CronJob's status.
pub fn status_changed(cj: &Value, want: &Value) -> bool {
    let empty = Value::Object(Map::new());
    let have = cj.get("status").filter(|s| !s.is_null()).unwrap_or(&empty);
    have != want
}

#[cfg(test)]
mod tests;
