//! Pure pod status: containerStatuses (state, lastState, restartCount, ids, ready, started)
//! and conditions (kube 1.32's PodReadyToStartContainers, Initialized, Ready, ContainersReady,
//! PodScheduled, with their reasons and messages) from what CRI reports plus the worker's
//! own decisions (back-off, errors, probe results). The phase follows `podstatus::phase`.

use crate::podstatus::{self, Observed, RestartPolicy, State};
use serde_json::{json, Map, Value};

/// One run of a container as CRI reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Run {
    pub id: String,
    pub attempt: u32,
    pub running: bool,
    pub exited: bool,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image_ref: String,
}

impl Run {
    fn terminated(&self) -> Value {
        let mut t = Map::new();
        t.insert("exitCode".into(), json!(self.exit_code));
        let reason = if self.reason.is_empty() {
            podstatus::terminated_reason(self.exit_code, false).to_string()
        } else {
            self.reason.clone()
        };
        t.insert("reason".into(), json!(reason));
        if !self.message.is_empty() {
            t.insert("message".into(), json!(self.message));
        }
        // A container that never started reports the epoch, as kube does for StartError.
        let or_epoch = |t: &str| {
            if t.is_empty() {
                "1970-01-01T00:00:00Z".to_string()
            } else {
                t.to_string()
            }
        };
        t.insert("startedAt".into(), json!(or_epoch(&self.started_at)));
        t.insert("finishedAt".into(), json!(or_epoch(&self.finished_at)));
        t.insert(
            "containerID".into(),
            json!(format!("containerd://{}", self.id)),
        );
        json!({ "terminated": t })
    }
}

/// One container as the worker sees it.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub name: String,
    pub image: String,
    pub current: Option<Run>,
    pub previous: Option<Run>,
    /// A waiting reason and message the worker decided (CrashLoopBackOff, ErrImagePull,
    /// CreateContainerConfigError, …); overrides what CRI shows.
    pub waiting: Option<(String, String)>,
    pub ready: bool,
    pub started: bool,
    /// A restartable (sidecar) init container.
    pub sidecar: bool,
}

impl View {
    /// The state as the pod phase logic sees it.
    pub fn observed(&self) -> Observed {
        let state = match (&self.waiting, &self.current) {
            (Some((reason, message)), cur) => State::Waiting {
                reason: reason.clone(),
                message: message.clone(),
                last_exit: cur.as_ref().filter(|r| r.exited).map(|r| r.exit_code),
            },
            (None, Some(r)) if r.running => State::Running {
                started_at: r.started_at.clone(),
            },
            (None, Some(r)) if r.exited => State::Terminated {
                exit_code: r.exit_code,
                reason: r.reason.clone(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
            },
            _ => State::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
                last_exit: None,
            },
        };
        Observed {
            state,
            ready: self.ready,
        }
    }

    /// The containerStatus object.
    pub fn status(&self, default_waiting: &str) -> Value {
        let obs = self.observed();
        let mut state = podstatus::state_json(&obs.state);
        if let (None, Some(r)) = (&self.waiting, &self.current) {
            if r.exited {
                state = r.terminated();
            }
        }
        if self.current.is_none() && self.waiting.is_none() {
            state = json!({"waiting": {"reason": default_waiting}});
        }
        let last = match (&self.waiting, &self.current, &self.previous) {
            (Some(_), Some(cur), _) if cur.exited => cur.terminated(),
            (_, _, Some(prev)) => prev.terminated(),
            _ => json!({}),
        };
        let mut s = Map::new();
        s.insert("name".into(), json!(self.name));
        s.insert("state".into(), state);
        s.insert("lastState".into(), last);
        s.insert("ready".into(), json!(self.ready));
        s.insert(
            "restartCount".into(),
            json!(self.current.as_ref().map_or(0, |r| r.attempt)),
        );
        s.insert("image".into(), json!(self.image));
        let image_id = self
            .current
            .as_ref()
            .map(|r| r.image_ref.clone())
            .unwrap_or_default();
        s.insert("imageID".into(), json!(image_id));
        if let Some(r) = &self.current {
            s.insert(
                "containerID".into(),
                json!(format!("containerd://{}", r.id)),
            );
        }
        s.insert("started".into(), json!(self.started));
        Value::Object(s)
    }
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    previous: &[Value],
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c["type"] == kind && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if !ok && !reason.is_empty() {
        c["reason"] = json!(reason);
        if !message.is_empty() {
            c["message"] = json!(message);
        }
    }
    c
}

/// The pod's conditions in the order kube 1.32 reports them.
pub fn conditions(
    sandbox_ready: bool,
    init: &[View],
    app: &[View],
    phase: &str,
    previous: &[Value],
    now: &str,
) -> Vec<Value> {
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|v| {
            if v.sidecar {
                !v.started
            } else {
                !matches!(v.observed().state, State::Terminated { exit_code: 0, .. })
            }
        })
        .map(|v| v.name.as_str())
        .collect();
    let initialized = incomplete.is_empty() || phase == "Succeeded";
    let unready: Vec<&str> = init
        .iter()
        .filter(|v| v.sidecar && !v.ready)
        .chain(app.iter().filter(|v| !v.ready))
        .map(|v| v.name.as_str())
        .collect();
    let ready = unready.is_empty() && !app.is_empty() && initialized && phase == "Running";
    let (reason, msg) = if phase == "Succeeded" || phase == "Failed" {
        ("PodCompleted".to_string(), String::new())
    } else {
        (
            "ContainersNotReady".to_string(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let init_msg = format!(
        "containers with incomplete status: [{}]",
        incomplete.join(" ")
    );
    let scheduled = previous
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition("PodScheduled", true, "", "", previous, now));
    vec![
        condition(
            "PodReadyToStartContainers",
            sandbox_ready,
            "",
            "",
            previous,
            now,
        ),
        condition(
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            &init_msg,
            previous,
            now,
        ),
        condition("Ready", ready, &reason, &msg, previous, now),
        condition("ContainersReady", ready, &reason, &msg, previous, now),
        scheduled,
    ]
}

/// The pod phase (terminal phases are sticky).
pub fn phase(
    policy: RestartPolicy,
    init: &[View],
    app: &[View],
    previous_phase: &str,
) -> &'static str {
    if previous_phase == "Succeeded" {
        return "Succeeded";
    }
    if previous_phase == "Failed" {
        return "Failed";
    }
    let regular_init: Vec<Observed> = init
        .iter()
        .filter(|v| !v.sidecar)
        .map(View::observed)
        .collect();
    let app_obs: Vec<Observed> = app.iter().map(View::observed).collect();
    podstatus::phase(policy, &regular_init, &app_obs)
}

/// CRI nanoseconds as an RFC 3339 timestamp (seconds).
pub fn ts(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(attempt: u32, running: bool, code: i32) -> Run {
        Run {
            id: format!("id{attempt}"),
            attempt,
            running,
            exited: !running,
            started_at: "t0".into(),
            finished_at: if running { String::new() } else { "t1".into() },
            exit_code: code,
            reason: if running {
                String::new()
            } else {
                podstatus::terminated_reason(code, false).into()
            },
            message: String::new(),
            image_ref: "sha256:abc".into(),
        }
    }

    fn view(
        name: &str,
        current: Option<Run>,
        previous: Option<Run>,
        waiting: Option<&str>,
        ready: bool,
    ) -> View {
        View {
            name: name.into(),
            image: "docker.io/library/busybox:latest".into(),
            current,
            previous,
            waiting: waiting.map(|w| (w.to_string(), String::new())),
            ready,
            started: ready,
            sidecar: false,
        }
    }

    #[test]
    fn container_status_table() {
        // (case, view, state key, state reason, lastState key, restartCount)
        let cases = [
            (
                "creating",
                view("c", None, None, None, false),
                "waiting",
                "ContainerCreating",
                None,
                0,
            ),
            (
                "running first",
                view("c", Some(run(0, true, 0)), None, None, true),
                "running",
                "",
                None,
                0,
            ),
            (
                "running after restart",
                view(
                    "c",
                    Some(run(2, true, 0)),
                    Some(run(1, false, 1)),
                    None,
                    true,
                ),
                "running",
                "",
                Some("terminated"),
                2,
            ),
            (
                "crash loop",
                view(
                    "c",
                    Some(run(3, false, 1)),
                    Some(run(2, false, 1)),
                    Some("CrashLoopBackOff"),
                    false,
                ),
                "waiting",
                "CrashLoopBackOff",
                Some("terminated"),
                3,
            ),
            (
                "completed",
                view("c", Some(run(0, false, 0)), None, None, false),
                "terminated",
                "Completed",
                None,
                0,
            ),
            (
                "config error",
                view("c", None, None, Some("CreateContainerConfigError"), false),
                "waiting",
                "CreateContainerConfigError",
                None,
                0,
            ),
        ];
        for (name, v, key, reason, last, restarts) in cases {
            let s = v.status("ContainerCreating");
            assert!(s["state"][key].is_object(), "{name}: {s}");
            if !reason.is_empty() {
                assert_eq!(s["state"][key]["reason"], reason, "{name}");
            }
            match last {
                Some(k) => assert!(s["lastState"][k].is_object(), "{name}: {s}"),
                None => assert_eq!(s["lastState"], json!({}), "{name}"),
            }
            assert_eq!(s["restartCount"], restarts, "{name}");
        }
        // In back-off, lastState is the run that just ended.
        let s = view(
            "c",
            Some(run(3, false, 7)),
            Some(run(2, false, 1)),
            Some("CrashLoopBackOff"),
            false,
        )
        .status("");
        assert_eq!(s["lastState"]["terminated"]["exitCode"], 7);
    }

    #[test]
    fn conditions_and_phase() {
        let app = [
            view("a", Some(run(0, true, 0)), None, None, true),
            view("b", Some(run(0, true, 0)), None, None, false),
        ];
        let p = phase(RestartPolicy::Always, &[], &app, "Pending");
        assert_eq!(p, "Running");
        let c = conditions(true, &[], &app, p, &[], "t1");
        let types: Vec<&str> = c.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(c[2]["status"], "False");
        assert_eq!(c[2]["reason"], "ContainersNotReady");
        assert_eq!(c[2]["message"], "containers with unready status: [b]");
        // Transition times are kept while the status holds.
        let app2 = [view("a", Some(run(0, true, 0)), None, None, true)];
        let c2 = conditions(true, &[], &app2, "Running", &c, "t2");
        assert_eq!(c2[1]["lastTransitionTime"], "t1");
        assert_eq!(c2[2]["status"], "True");
        assert_eq!(c2[2]["lastTransitionTime"], "t2");
        // Init containers not done.
        let init = [view("i", Some(run(0, true, 0)), None, None, false)];
        let c3 = conditions(true, &init, &app2, "Pending", &[], "t1");
        assert_eq!(c3[1]["status"], "False");
        assert_eq!(c3[1]["message"], "containers with incomplete status: [i]");
        // Completed pods.
        let done = [view("a", Some(run(0, false, 0)), None, None, false)];
        let p = phase(RestartPolicy::Never, &[], &done, "Running");
        assert_eq!(p, "Succeeded");
        assert_eq!(
            conditions(false, &[], &done, p, &[], "t")[2]["reason"],
            "PodCompleted"
        );
        assert_eq!(
            phase(RestartPolicy::Always, &[], &app, "Failed"),
            "Failed",
            "terminal phases stick"
        );
    }
}
