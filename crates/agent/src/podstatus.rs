//! Pure pod-status logic of the node agent: the pod phase from the observed
//! container states (the kubelet's `getPhase` rules), restart decisions with the kubelet's
//! exponential back-off (10 s doubling to 5 min), terminated reasons, `$(VAR)` expansion of
//! command/args/env, and the CRI log line format. No I/O: the sync loop feeds it what CRI reports.

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Parse `spec.restartPolicy` (absent or unknown → Always, the API default).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Never") => Self::Never,
            Some("OnFailure") => Self::OnFailure,
            _ => Self::Always,
        }
    }

    /// Whether a container that exited with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }
}

/// What CRI reports for one container (absent from CRI → `Waiting`, reason ContainerCreating).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: String,
        /// The exit code of the previous run, when this is a restart in back-off.
        last_exit: Option<i32>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        started_at: String,
        finished_at: String,
    },
}

/// One container's observed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: State,
    pub ready: bool,
}

/// `phase` of a pod from its init and app containers, following the kubelet.
pub fn phase(policy: RestartPolicy, init: &[Observed], app: &[Observed]) -> &'static str {
    // Init containers run in order; any one not yet succeeded keeps the pod Pending, and a
    // failed one with restartPolicy Never fails the pod.
    for c in init {
        match &c.state {
            State::Terminated { exit_code: 0, .. } => continue,
            State::Terminated { .. } if policy == RestartPolicy::Never => return "Failed",
            _ => return "Pending",
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in app {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting {
                last_exit: Some(_), ..
            } => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    if policy == RestartPolicy::Always {
        return "Running";
    }
    if stopped == succeeded {
        return "Succeeded";
    }
    if policy == RestartPolicy::Never {
        return "Failed";
    }
    "Running"
}

/// The back-off before restart number `restart_count + 1`: 10 s doubling, capped at 5 min.
pub fn backoff(restart_count: u32) -> Duration {
    let secs = 10u64.saturating_mul(1u64 << restart_count.min(16));
    Duration::from_secs(secs.min(300))
}

/// `state.terminated.reason` for an exit.
pub fn terminated_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// The `state` object of a containerStatus.
pub fn state_json(s: &State) -> Value {
    match s {
        State::Waiting {
            reason, message, ..
        } => {
            let mut w = Map::new();
            w.insert("reason".into(), json!(reason));
            if !message.is_empty() {
                w.insert("message".into(), json!(message));
            }
            json!({ "waiting": w })
        }
        State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        State::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
        } => json!({"terminated": {
            "exitCode": exit_code, "reason": reason,
            "startedAt": started_at, "finishedAt": finished_at,
        }}),
    }
}

/// Expand `$(VAR)` references as Kubernetes does: `$$` escapes a `$`, unknown references and
/// unterminated `$(` stay as written.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One line of a CRI log file (`<RFC3339Nano ts> <stream> <P|F> <text>`), as `kubectl logs`
/// shows it: the text, or `<ts> <text>` with `timestamps`. Returns the text and whether the
/// line is complete (`F`; a `P` partial continues on the next line). Malformed lines pass as is.
pub fn cri_log_line(line: &str, timestamps: bool) -> (String, bool) {
    let mut parts = line.splitn(4, ' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(ts), Some("stdout" | "stderr"), Some(tag @ ("F" | "P")), text) => {
            let text = text.unwrap_or("");
            let shown = if timestamps {
                format!("{ts} {text}")
            } else {
                text.to_string()
            };
            (shown, tag == "F")
        }
        _ => (line.to_string(), true),
    }
}

/// Render a whole CRI log file as `kubectl logs` shows it: partial (`P`) lines joined, only
/// lines whose timestamp is at or after `since` (RFC 3339 UTC; compared to the second, the
/// resolution of `sinceSeconds`/`sinceTime`, so fractional digits do not matter), then the last
/// `tail` lines. Every output line ends with a newline.
pub fn render_cri_log(
    content: &str,
    timestamps: bool,
    since: Option<&str>,
    tail: Option<usize>,
) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for raw in content.lines() {
        if let Some(since) = since {
            let ts = raw.split(' ').next().unwrap_or("");
            if ts.get(..19).unwrap_or(ts) < since.get(..19).unwrap_or(since) {
                continue;
            }
        }
        let (text, complete) = cri_log_line(raw, timestamps && pending.is_empty());
        pending.push_str(&text);
        if complete {
            lines.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    lines[skip..].iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Observed {
        Observed {
            state: State::Running {
                started_at: "t0".into(),
            },
            ready: true,
        }
    }
    fn waiting() -> Observed {
        Observed {
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
                last_exit: None,
            },
            ready: false,
        }
    }
    fn backing_off(code: i32) -> Observed {
        Observed {
            state: State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: String::new(),
                last_exit: Some(code),
            },
            ready: false,
        }
    }
    fn exited(code: i32) -> Observed {
        Observed {
            state: State::Terminated {
                exit_code: code,
                reason: terminated_reason(code, false).into(),
                started_at: "t0".into(),
                finished_at: "t1".into(),
            },
            ready: false,
        }
    }

    /// name, restartPolicy, init containers, app containers, expected phase.
    type PhaseCase = (
        &'static str,
        RestartPolicy,
        Vec<Observed>,
        Vec<Observed>,
        &'static str,
    );

    #[test]
    fn phase_table() {
        use RestartPolicy::*;
        let cases: Vec<PhaseCase> = vec![
            ("creating", Always, vec![], vec![waiting()], "Pending"),
            ("running", Always, vec![], vec![running()], "Running"),
            (
                "one of two creating",
                Always,
                vec![],
                vec![running(), waiting()],
                "Pending",
            ),
            (
                "init pending",
                Always,
                vec![waiting()],
                vec![waiting()],
                "Pending",
            ),
            (
                "init running",
                Never,
                vec![running()],
                vec![waiting()],
                "Pending",
            ),
            (
                "init failed never",
                Never,
                vec![exited(1)],
                vec![waiting()],
                "Failed",
            ),
            (
                "init failed onfailure",
                OnFailure,
                vec![exited(1)],
                vec![waiting()],
                "Pending",
            ),
            (
                "init done",
                Never,
                vec![exited(0)],
                vec![running()],
                "Running",
            ),
            ("exit 3 never", Never, vec![], vec![exited(3)], "Failed"),
            ("exit 0 never", Never, vec![], vec![exited(0)], "Succeeded"),
            (
                "exit 0 onfailure",
                OnFailure,
                vec![],
                vec![exited(0)],
                "Succeeded",
            ),
            (
                "exit 1 onfailure",
                OnFailure,
                vec![],
                vec![exited(1)],
                "Running",
            ),
            ("exit 0 always", Always, vec![], vec![exited(0)], "Running"),
            (
                "crashloop always",
                Always,
                vec![],
                vec![backing_off(1)],
                "Running",
            ),
            (
                "one ok one failed never",
                Never,
                vec![],
                vec![exited(0), exited(2)],
                "Failed",
            ),
            (
                "one running one done",
                Never,
                vec![],
                vec![running(), exited(0)],
                "Running",
            ),
            ("no containers", Always, vec![], vec![], "Pending"),
        ];
        for (name, policy, init, app, want) in cases {
            assert_eq!(phase(policy, &init, &app), want, "{name}");
        }
    }

    #[test]
    fn restart_policy_table() {
        use RestartPolicy::*;
        for (p, code, want) in [
            (Always, 0, true),
            (Always, 1, true),
            (OnFailure, 0, false),
            (OnFailure, 137, true),
            (Never, 1, false),
        ] {
            assert_eq!(p.restarts(code), want, "{p:?} {code}");
        }
        assert_eq!(RestartPolicy::parse(None), Always);
        assert_eq!(RestartPolicy::parse(Some("Never")), Never);
        assert_eq!(RestartPolicy::parse(Some("OnFailure")), OnFailure);
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        for (n, secs) in [
            (0, 10),
            (1, 20),
            (2, 40),
            (3, 80),
            (4, 160),
            (5, 300),
            (40, 300),
        ] {
            assert_eq!(backoff(n), Duration::from_secs(secs), "restart {n}");
        }
    }

    #[test]
    fn terminated_reasons() {
        assert_eq!(terminated_reason(0, false), "Completed");
        assert_eq!(terminated_reason(3, false), "Error");
        assert_eq!(terminated_reason(137, true), "OOMKilled");
    }

    #[test]
    fn state_json_shapes() {
        assert_eq!(
            state_json(&exited(3).state),
            json!({"terminated": {"exitCode": 3, "reason": "Error", "startedAt": "t0", "finishedAt": "t1"}})
        );
        assert_eq!(
            state_json(&waiting().state),
            json!({"waiting": {"reason": "ContainerCreating"}})
        );
        assert_eq!(
            state_json(&running().state),
            json!({"running": {"startedAt": "t0"}})
        );
    }

    #[test]
    fn expand_table() {
        let vars: HashMap<String, String> = [("A", "1"), ("NAME", "pod-x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (input, want) in [
            ("plain", "plain"),
            ("$(A)", "1"),
            ("x$(A)y$(NAME)", "x1ypod-x"),
            ("$$(A)", "$(A)"),
            ("$(MISSING)", "$(MISSING)"),
            ("$(unterminated", "$(unterminated"),
            ("cost $5", "cost $5"),
            ("end $", "end $"),
        ] {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }

    #[test]
    fn cri_log_lines() {
        let l = "2026-11-22T15:00:00.123456789Z stdout F hello world";
        assert_eq!(cri_log_line(l, false), ("hello world".into(), true));
        assert_eq!(
            cri_log_line(l, true),
            ("2026-11-22T15:00:00.123456789Z hello world".into(), true)
        );
        let p = "2026-11-22T15:00:00Z stderr P part";
        assert_eq!(cri_log_line(p, false), ("part".into(), false));
        assert_eq!(cri_log_line("2026 stdout F", false), (String::new(), true));
        assert_eq!(cri_log_line("garbage", false), ("garbage".into(), true));
    }

    #[test]
    fn render_cri_log_table() {
        let log = "2026-01-01T00:00:01.999Z stdout F one\n\
                   2026-01-01T00:00:02.5Z stdout P tw\n\
                   2026-01-01T00:00:02Z stdout F o\n\
                   2026-01-01T00:00:03Z stderr F three\n";
        assert_eq!(render_cri_log(log, false, None, None), "one\ntwo\nthree\n");
        assert_eq!(render_cri_log(log, false, None, Some(1)), "three\n");
        assert_eq!(render_cri_log(log, false, None, Some(0)), "");
        assert_eq!(
            render_cri_log(log, false, None, Some(9)),
            "one\ntwo\nthree\n"
        );
        assert_eq!(
            render_cri_log(log, false, Some("2026-01-01T00:00:02Z"), None),
            "two\nthree\n"
        );
        assert_eq!(
            render_cri_log(log, true, None, Some(2)),
            "2026-01-01T00:00:02.5Z two\n2026-01-01T00:00:03Z three\n"
        );
        assert_eq!(render_cri_log("", false, None, None), "");
    }
}
