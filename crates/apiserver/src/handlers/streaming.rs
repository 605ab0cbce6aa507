//! Pod streaming subresources: `pods/log` (GET; text, streamed with `follow`), `pods/exec`,
//! `pods/attach`, `pods/portforward` (GET/POST connection upgrades). The pod is looked up and
//! checked as kube-apiserver does (container choice, host assigned), then the request goes to
//! the kubelet of the pod's node ([`crate::kubelet`]) on the path the kubelet serves.

use super::read::read_object;
use super::Req;
use crate::kubelet;
use crate::request::Verb;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::{meta, ApiServer};
use capstan_api::resources;
use hyper::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// The streaming subresources of pods.
pub const SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward"];

pub async fn handle(api: &Arc<ApiServer>, req: &Req, sub: &str) -> ApiResult<Response<Body>> {
    let allowed = match sub {
        "log" => req.rr.verb == Verb::Get,
        _ => matches!(req.rr.verb, Verb::Get | Verb::Create),
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource (pods {sub})"
        )));
    }
    let name = req.name().to_string();
    let (pod, _) = read_object(api, req, &name).await?;
    let ns = req.namespace().unwrap_or("default").to_string();
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if sub == "log" {
        let container = log_container(&pod, &name, req.param("container").unwrap_or(""))?;
        let query = log_query(req, &name)?;
        if node_name.is_empty() {
            // kube-apiserver answers an empty log for a pod not yet scheduled.
            return Ok(crate::respond::with_content_type(
                hyper::StatusCode::OK,
                "text/plain",
                "",
            ));
        }
        let path = format!("/containerLogs/{ns}/{name}/{container}{query}");
        let node = kubelet::endpoint(api, node_name).await?;
        return kubelet::logs(api, &node, &path).await;
    }
    let kind = if sub == "portforward" {
        Kind::PortForward
    } else {
        Kind::RemoteCommand
    };
    let container = if kind == Kind::PortForward {
        String::new()
    } else {
        stream_container(&pod, &name, req.param("container").unwrap_or(""))?
    };
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let query = match kind {
        Kind::PortForward => portforward_query(&req.query)?,
        Kind::RemoteCommand => stream_query(&req.query, sub == "exec")?,
    };
    if !req.headers.contains_key(http::header::UPGRADE) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    if is_websocket(&req.headers) {
        websocket_decision(kind, &offered(&req.headers)).map_err(ApiError::bad_request)?;
    }
    let uid = meta::uid(&pod).unwrap_or("");
    let path = match sub {
        "portforward" => format!("/portForward/{ns}/{name}/{uid}{query}"),
        _ => format!("/{sub}/{ns}/{name}/{uid}/{container}{query}"),
    };
    let node = kubelet::endpoint(api, node_name).await?;
    let upgrade = req
        .upgrade
        .lock()
        .ok()
        .and_then(|mut u| u.take())
        .ok_or_else(|| ApiError::bad_request("Upgrade request required"))?;
    kubelet::upgrade(api, &node, req, &path, upgrade).await
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn has_container(pod: &Value, c: &str) -> bool {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .any(|l| names(pod, l).iter().any(|n| n == c))
}

/// The container `pods/log` reads (kube-apiserver's validateContainer).
pub fn log_container(pod: &Value, name: &str, requested: &str) -> ApiResult<String> {
    if !requested.is_empty() {
        if !has_container(pod, requested) {
            return Err(ApiError::bad_request(format!(
                "container {requested} is not valid for pod {name}"
            )));
        }
        return Ok(requested.to_string());
    }
    let containers = names(pod, "containers");
    match containers.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => {
            let mut all = names(pod, "initContainers");
            all.extend(containers);
            all.extend(names(pod, "ephemeralContainers"));
            Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                all.join(" ")
            )))
        }
    }
}

/// The container exec/attach use (kube-apiserver's streamLocation).
pub fn stream_container(pod: &Value, name: &str, requested: &str) -> ApiResult<String> {
    if !requested.is_empty() {
        if !has_container(pod, requested) {
            return Err(ApiError::bad_request(format!(
                "container {requested} is not valid for pod {name}"
            )));
        }
        return Ok(requested.to_string());
    }
    let containers = names(pod, "containers");
    match containers.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            let init = names(pod, "initContainers");
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

fn encode(params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let mut s = form_urlencoded::Serializer::new(String::from("?"));
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let out = s.finish();
    out.replacen("?&", "?", 1)
}

fn invalid_log(name: &str, field: &str, value: &str, why: &str) -> ApiError {
    let msg = if field.is_empty() {
        why.to_string()
    } else {
        format!("{field}: Invalid value: {value}: {why}")
    };
    ApiError::invalid(
        "PodLogOptions",
        "",
        name,
        format!("PodLogOptions \"{name}\" is invalid: {msg}"),
        vec![
            json!({"reason": if field.is_empty() { "FieldValueForbidden" } else { "FieldValueInvalid" }, "message": why, "field": field}),
        ],
    )
}

/// The kubelet query of `pods/log` (PodLogOptions, validated as kube-apiserver does).
pub fn log_query(req: &Req, name: &str) -> ApiResult<String> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for flag in ["follow", "previous", "timestamps"] {
        if req.flag(flag) {
            out.push((flag, "true".into()));
        }
    }
    let int = |k: &str| -> ApiResult<Option<i64>> {
        req.param(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ))
                })
            })
            .transpose()
    };
    if let Some(n) = int("tailLines")? {
        if n < 0 {
            return Err(invalid_log(
                name,
                "tailLines",
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        out.push(("tailLines", n.to_string()));
    }
    if let Some(n) = int("limitBytes")? {
        if n < 1 {
            return Err(invalid_log(
                name,
                "limitBytes",
                &n.to_string(),
                "must be greater than 0",
            ));
        }
        out.push(("limitBytes", n.to_string()));
    }
    let since_seconds = int("sinceSeconds")?;
    let since_time = req.param("sinceTime");
    if since_seconds.is_some() && since_time.is_some() {
        return Err(invalid_log(
            name,
            "",
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if let Some(n) = since_seconds {
        if n < 1 {
            return Err(invalid_log(
                name,
                "sinceSeconds",
                &n.to_string(),
                "must be greater than 0",
            ));
        }
        out.push(("sinceSeconds", n.to_string()));
    }
    if let Some(t) = since_time {
        if chrono::DateTime::parse_from_rfc3339(t).is_err() {
            return Err(ApiError::bad_request(format!(
                "parsing time {t:?} as RFC3339: cannot parse"
            )));
        }
        out.push(("sinceTime", t.to_string()));
    }
    Ok(encode(&out))
}

fn last<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
}

/// The kubelet query of exec/attach: `command=…` and `input`/`output`/`error`/`tty`=1 from
/// PodExecOptions (stdout and stderr default to true, as in the v1 API).
pub fn stream_query(q: &[(String, String)], exec: bool) -> ApiResult<String> {
    let flag = |k: &str, default: bool| last(q, k).map_or(default, crate::request::is_true);
    let (stdin, stdout, stderr, tty) = (
        flag("stdin", false),
        flag("stdout", true),
        flag("stderr", true),
        flag("tty", false),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let mut out: Vec<(&str, String)> = Vec::new();
    if exec {
        let command: Vec<&str> = q
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        if command.is_empty() {
            return Err(ApiError::bad_request("you must specify a command"));
        }
        out.extend(command.into_iter().map(|c| ("command", c.to_string())));
    }
    for (on, key) in [
        (stdin, "input"),
        (stdout, "output"),
        (stderr, "error"),
        (tty, "tty"),
    ] {
        if on {
            out.push((key, "1".into()));
        }
    }
    Ok(encode(&out))
}

/// The kubelet query of port-forward: `port=a,b` from PodPortForwardOptions `ports`.
pub fn portforward_query(q: &[(String, String)]) -> ApiResult<String> {
    let mut ports = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "ports" || k == "port") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n.to_string()),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid port {p:?}: port must be between 1 and 65535"
                    )))
                }
            }
        }
    }
    if ports.is_empty() {
        return Ok(String::new());
    }
    Ok(encode(&[("port", ports.join(","))]))
}

/// What is streamed: a command's stdio or ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RemoteCommand,
    PortForward,
}

/// Websocket subprotocols the kubelet's runtime (containerd 1.6) serves.
pub fn supported(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::RemoteCommand => &[
            "v4.channel.k8s.io",
            "v4.base64.channel.k8s.io",
            "channel.k8s.io",
            "base64.channel.k8s.io",
        ],
        Kind::PortForward => &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"],
    }
}

pub fn offered(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Pass a websocket request on when it offers no subprotocol or one the runtime speaks;
/// otherwise refuse it (non-101), so kubectl (v5 exec, tunnelled port-forward) retries with
/// SPDY/3.1, which is passed through unchanged.
pub fn websocket_decision(kind: Kind, offered: &[String]) -> Result<(), String> {
    let ok = supported(kind);
    if offered.is_empty() || offered.iter().any(|p| ok.contains(&p.as_str())) {
        Ok(())
    } else {
        Err(format!(
            "unable to upgrade connection: websocket subprotocol(s) {offered:?} are not supported by the node's container runtime (it supports {ok:?}); retry with SPDY/3.1"
        ))
    }
}

/// A Node's kubelet endpoint: (address, port), the InternalIP preferred.
pub fn node_address(node: &Value) -> Option<(String, u16)> {
    let addrs = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)?;
    let find = |t: &str| {
        addrs
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
            .filter(|a| !a.is_empty())
    };
    let host = find("InternalIP")
        .or_else(|| find("Hostname"))
        .or_else(|| find("ExternalIP"))?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .unwrap_or(10250) as u16;
    Some((host.to_string(), port))
}

/// The Node object named `name`, from the store.
pub async fn read_node(api: &ApiServer, name: &str) -> ApiResult<Value> {
    let res = resources::find("", "v1", "nodes").expect("registered");
    let kv = api
        .store
        .get(&res.key(None, name))
        .await?
        .ok_or_else(|| ApiError::not_found("", "nodes", name))?;
    crate::watchcache::decode_stored(&kv.value, kv.mod_revision)
        .ok_or_else(|| ApiError::internal(format!("stored node {name} is not valid JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn chooses_containers_as_kube_apiserver() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        let two = json!({"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]}});
        let none = json!({"spec": {}});
        type F = fn(&Value, &str, &str) -> ApiResult<String>;
        let cases: Vec<(F, &Value, &str, Result<&str, &str>)> = vec![
            (log_container, &one, "", Ok("a")),
            (log_container, &one, "a", Ok("a")),
            (log_container, &one, "zz", Err("container zz is not valid for pod web")),
            (log_container, &two, "i", Ok("i")),
            (log_container, &two, "", Err("a container name must be specified for pod web, choose one of: [i a b]")),
            (log_container, &none, "", Err("a container name must be specified for pod web")),
            (stream_container, &one, "", Ok("a")),
            (stream_container, &two, "b", Ok("b")),
            (stream_container, &two, "", Err("a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [i]")),
            (stream_container, &two, "x", Err("container x is not valid for pod web")),
        ];
        for (f, pod, req, want) in cases {
            let got = f(pod, "web", req);
            match want {
                Ok(c) => assert_eq!(got.unwrap(), c, "{pod} {req}"),
                Err(m) => {
                    let e = got.unwrap_err();
                    assert_eq!((e.code, e.message.as_str()), (400, m), "{pod} {req}");
                }
            }
        }
    }

    #[test]
    fn maps_exec_and_portforward_queries() {
        let cases: Vec<(&str, bool, Result<&str, &str>)> = vec![
            (
                "command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&stderr=true&tty=false&container=main",
                true,
                Ok("?command=sh&command=-c&command=echo+hi&input=1&output=1&error=1"),
            ),
            ("command=ls", true, Ok("?command=ls&output=1&error=1")),
            ("stdin=true&stdout=false&stderr=false&tty=true", false, Ok("?input=1&tty=1")),
            ("stdout=false&stderr=false", false, Err("you must specify at least 1 of stdin, stdout, stderr")),
            ("stdout=true", true, Err("you must specify a command")),
        ];
        for (query, exec, want) in cases {
            let got = stream_query(&q(query), exec);
            match want {
                Ok(s) => assert_eq!(got.unwrap(), s, "{query}"),
                Err(m) => assert_eq!(got.unwrap_err().message, m, "{query}"),
            }
        }
        assert_eq!(
            portforward_query(&q("ports=8080&ports=9090")).unwrap(),
            "?port=8080%2C9090"
        );
        assert_eq!(portforward_query(&q("")).unwrap(), "");
        assert_eq!(portforward_query(&q("ports=0")).unwrap_err().code, 400);
        assert_eq!(portforward_query(&q("ports=x")).unwrap_err().code, 400);
    }

    #[test]
    fn websocket_protocol_decisions() {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let cases: Vec<(Kind, Vec<String>, bool)> = vec![
            (Kind::RemoteCommand, v(&["v5.channel.k8s.io"]), false),
            (Kind::RemoteCommand, v(&["v4.channel.k8s.io"]), true),
            (
                Kind::RemoteCommand,
                v(&["v5.channel.k8s.io", "v4.channel.k8s.io"]),
                true,
            ),
            (Kind::RemoteCommand, v(&["channel.k8s.io"]), true),
            (Kind::RemoteCommand, v(&[]), true),
            (
                Kind::PortForward,
                v(&["SPDY/3.1+portforward.k8s.io"]),
                false,
            ),
            (Kind::PortForward, v(&["v4.channel.k8s.io"]), true),
            (Kind::PortForward, v(&["portforward.k8s.io"]), false),
        ];
        for (kind, offered, ok) in cases {
            assert_eq!(
                websocket_decision(kind, &offered).is_ok(),
                ok,
                "{kind:?} {offered:?}"
            );
        }
        let mut h = http::HeaderMap::new();
        h.append(
            "sec-websocket-protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        h.insert("upgrade", "websocket".parse().unwrap());
        assert_eq!(offered(&h), ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
        assert!(is_websocket(&h));
    }

    #[test]
    fn finds_the_kubelet_endpoint() {
        let cases = vec![
            (
                json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 31000}}}}),
                Some(("10.0.0.5".to_string(), 31000)),
            ),
            (
                json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}),
                Some(("n1".to_string(), 10250)),
            ),
            (json!({"status": {}}), None),
        ];
        for (node, want) in cases {
            assert_eq!(node_address(&node), want, "{node}");
        }
    }
}
