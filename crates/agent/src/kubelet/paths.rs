//! The kubelet's streaming URLs and their query options (pure): which endpoint a path names,
//! exec/attach stream options, log options.

/// What a request to the kubelet server is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Logs(Target),
    Exec(Target),
    Attach(Target),
    PortForward(Target),
}

/// A pod (and, except for port-forward, a container) on this node. `container` may be empty:
/// the pod's only container is meant then.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    pub container: String,
}

/// Resolve a kubelet path: `/containerLogs/{ns}/{pod}/{container}`,
/// `/exec|attach/{ns}/{pod}[/{uid}]/{container}`, `/portForward/{ns}/{pod}[/{uid}]`.
pub fn parse(path: &str) -> Option<Endpoint> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let t = |ns: &str, pod: &str, uid: Option<&str>, c: &str| {
        (!ns.is_empty() && !pod.is_empty()).then(|| Target {
            namespace: ns.into(),
            pod: pod.into(),
            uid: uid.filter(|u| !u.is_empty()).map(str::to_string),
            container: c.into(),
        })
    };
    match segs.as_slice() {
        ["containerLogs", ns, pod] => t(ns, pod, None, "").map(Endpoint::Logs),
        ["containerLogs", ns, pod, c] => t(ns, pod, None, c).map(Endpoint::Logs),
        [kind @ ("exec" | "attach"), ns, pod, rest @ ..] if rest.len() <= 2 => {
            let (uid, c) = match rest {
                [] => (None, ""),
                [c] => (None, *c),
                [uid, c] => (Some(*uid), *c),
                _ => return None,
            };
            let target = t(ns, pod, uid, c)?;
            Some(if *kind == "exec" {
                Endpoint::Exec(target)
            } else {
                Endpoint::Attach(target)
            })
        }
        ["portForward", ns, pod] => t(ns, pod, None, "").map(Endpoint::PortForward),
        ["portForward", ns, pod, uid] => t(ns, pod, Some(uid), "").map(Endpoint::PortForward),
        _ => None,
    }
}

/// Parsed `?a=b&c=d` (repeated keys kept in order).
pub fn query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn last<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE" | "")
}

/// Which streams an exec or attach wants, and the command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamOpts {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The kubelet's own parameters (`input`, `output`, `error`, `tty` = "1", as kube-apiserver
/// sends them) or the API's (`stdin`, `stdout`, `stderr`, `tty` = "true").
pub fn stream_opts(q: &[(String, String)]) -> Result<StreamOpts, String> {
    let flag = |a: &str, b: &str| last(q, a).or_else(|| last(q, b)).is_some_and(truthy);
    let mut o = StreamOpts {
        command: q
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        stdin: flag("input", "stdin"),
        stdout: flag("output", "stdout"),
        stderr: flag("error", "stderr"),
        tty: last(q, "tty").is_some_and(truthy),
    };
    // As the kubelet: a terminal merges stderr into stdout.
    if o.tty {
        o.stderr = false;
    }
    if !(o.stdin || o.stdout || o.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(o)
}

/// `kubectl logs` options, with `sinceSeconds`/`sinceTime` turned into one RFC 3339 UTC time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOpts {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
    pub since: Option<String>,
    pub limit_bytes: Option<usize>,
}

pub fn log_opts(
    q: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<LogOpts, String> {
    let flag = |k: &str| last(q, k).is_some_and(|v| v != "false" && truthy(v));
    let int = |k: &str| -> Result<Option<i64>, String> {
        last(q, k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid value for {k}: {v:?}"))
            })
            .transpose()
    };
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let since = match (int("sinceSeconds")?, last(q, "sinceTime")) {
        (Some(s), _) if s > 0 => Some(fmt(now - chrono::Duration::seconds(s))),
        (Some(_), _) => return Err("sinceSeconds must be greater than 0".into()),
        (None, Some(t)) => Some(fmt(chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|_| format!("invalid value for sinceTime: {t:?}"))?
            .with_timezone(&chrono::Utc))),
        (None, None) => None,
    };
    Ok(LogOpts {
        follow: flag("follow"),
        previous: flag("previous"),
        timestamps: flag("timestamps"),
        tail: int("tailLines")?.and_then(|n| usize::try_from(n).ok()),
        since,
        limit_bytes: int("limitBytes")?.filter(|n| *n > 0).map(|n| n as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ns: &str, pod: &str, uid: Option<&str>, c: &str) -> Target {
        Target {
            namespace: ns.into(),
            pod: pod.into(),
            uid: uid.map(str::to_string),
            container: c.into(),
        }
    }

    #[test]
    fn parses_kubelet_paths() {
        let cases: Vec<(&str, Option<Endpoint>)> = vec![
            (
                "/containerLogs/default/web/main",
                Some(Endpoint::Logs(target("default", "web", None, "main"))),
            ),
            (
                "/containerLogs/default/web",
                Some(Endpoint::Logs(target("default", "web", None, ""))),
            ),
            (
                "/exec/ns1/web/main",
                Some(Endpoint::Exec(target("ns1", "web", None, "main"))),
            ),
            (
                "/exec/ns1/web/u-1/main",
                Some(Endpoint::Exec(target("ns1", "web", Some("u-1"), "main"))),
            ),
            (
                "/attach/ns1/web/main",
                Some(Endpoint::Attach(target("ns1", "web", None, "main"))),
            ),
            (
                "/portForward/ns1/web",
                Some(Endpoint::PortForward(target("ns1", "web", None, ""))),
            ),
            (
                "/portForward/ns1/web/u-2",
                Some(Endpoint::PortForward(target("ns1", "web", Some("u-2"), ""))),
            ),
            ("/exec/ns1/web/a/b/c", None),
            ("/containerLogs//web/main", None),
            ("/portForward/ns1", None),
            ("/pods", None),
            ("/", None),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), want, "{path}");
        }
    }

    #[test]
    fn stream_options() {
        let q = |s: &str| query(Some(s));
        let cases: Vec<(&str, Result<StreamOpts, String>)> = vec![
            (
                "command=sh&command=-c&command=echo%20hi&input=1&output=1&error=1",
                Ok(StreamOpts {
                    command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    tty: false,
                }),
            ),
            (
                "command=ls&stdout=true&stderr=true&tty=true",
                Ok(StreamOpts {
                    command: vec!["ls".into()],
                    stdout: true,
                    tty: true,
                    ..Default::default()
                }),
            ),
            (
                "command=ls&stdin=false&stdout=false",
                Err("you must specify at least 1 of stdin, stdout, stderr".into()),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(stream_opts(&q(query)), want, "{query}");
        }
    }

    #[test]
    fn log_options() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let cases: Vec<(&str, Result<LogOpts, String>)> = vec![
            ("", Ok(LogOpts::default())),
            (
                "follow=true&tailLines=2&timestamps=true&limitBytes=10",
                Ok(LogOpts {
                    follow: true,
                    timestamps: true,
                    tail: Some(2),
                    limit_bytes: Some(10),
                    ..Default::default()
                }),
            ),
            (
                "sinceSeconds=30&previous=true",
                Ok(LogOpts {
                    previous: true,
                    since: Some("2026-01-01T00:00:30Z".into()),
                    ..Default::default()
                }),
            ),
            (
                "sinceTime=2026-01-01T02:00:00%2B02:00&follow=false",
                Ok(LogOpts {
                    since: Some("2026-01-01T00:00:00Z".into()),
                    ..Default::default()
                }),
            ),
            (
                "tailLines=x",
                Err("invalid value for tailLines: \"x\"".into()),
            ),
            (
                "sinceSeconds=0",
                Err("sinceSeconds must be greater than 0".into()),
            ),
        ];
        for (q, want) in cases {
            assert_eq!(log_opts(&query(Some(q)), now), want, "{q}");
        }
    }
}
