//! Joining nodes, as k3s does: `GET /cacerts` (public) returns the cluster CA so an agent can
//! pin it against the hash its join token carries; `POST /capstan/v1/node-credentials`, for
//! holders of the join token (bearer, or basic with the secret as password), returns the CA,
//! a client credential for the node (`system:node:<name>`, group `system:nodes`) and a kubelet
//! serving certificate. The certificates come from the binary's PKI through
//! [`IssueNodeCredentials`]; this module only authenticates, validates and answers.

use crate::respond::{self, json_response};
use crate::server::Body;
use crate::status::ApiError;
use crate::ApiServer;
use base64::Engine;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// The public CA endpoint.
pub const CACERTS_PATH: &str = "/cacerts";
/// The credential endpoint for joining nodes.
pub const CREDENTIALS_PATH: &str = "/capstan/v1/node-credentials";
/// The most addresses (IPs or DNS names) a node may ask to have in its serving certificate.
pub const MAX_ADDRESSES: usize = 16;

/// What a joining node receives (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCredentials {
    pub client_cert: String,
    pub client_key: String,
    pub serving_cert: String,
    pub serving_key: String,
}

/// Issues node credentials from the cluster CA (implemented by the binary, which owns the PKI).
pub trait IssueNodeCredentials: Send + Sync {
    /// `addresses` are the node's IPs and DNS names for its kubelet serving certificate.
    fn issue(&self, node_name: &str, addresses: &[String]) -> Result<NodeCredentials, String>;
}

/// Node joining: the CA handed out, the accepted join secrets and the issuer.
#[derive(Clone)]
pub struct NodeJoin {
    pub ca_cert: String,
    /// Accepted values: the whole token and its secret part.
    pub secrets: Vec<String>,
    pub issuer: Arc<dyn IssueNodeCredentials>,
}

impl std::fmt::Debug for NodeJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeJoin")
            .field("secrets", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Equal length and contents, without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the Authorization header carries one of the join secrets (`Bearer <token>` or
/// `Basic base64(<user>:<token>)`, as k3s agents send it).
pub fn authorized(join: &NodeJoin, headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let presented = if let Some(t) = value.strip_prefix("Bearer ") {
        t.trim().to_string()
    } else if let Some(b) = value.strip_prefix("Basic ") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
            return false;
        };
        let Ok(s) = String::from_utf8(raw) else {
            return false;
        };
        match s.split_once(':') {
            Some((_, password)) => password.to_string(),
            None => return false,
        }
    } else {
        return false;
    };
    !presented.is_empty()
        && join
            .secrets
            .iter()
            .any(|s| same(s.as_bytes(), presented.as_bytes()))
}

/// A requested address is an IP or a DNS-1123 subdomain.
fn valid_address(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok()
        || capstan_validation::names::is_dns1123_subdomain(a).is_empty()
}

/// Parse and validate the request body: `{"nodeName": …, "addresses": [...]}`.
pub fn parse_request(body: &[u8]) -> Result<(String, Vec<String>), ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("decoding the request: {e}")))?;
    let name = v["nodeName"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("nodeName: Required value"));
    }
    let errs = capstan_validation::names::is_dns1123_subdomain(&name);
    if !errs.is_empty() {
        return Err(ApiError::bad_request(format!(
            "nodeName: Invalid value: \"{name}\": {}",
            errs.join("; ")
        )));
    }
    let mut addresses = Vec::new();
    for a in v["addresses"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap_or("");
        if !valid_address(a) {
            return Err(ApiError::bad_request(format!(
                "addresses: Invalid value: \"{a}\": must be an IP address or a DNS name"
            )));
        }
        if !addresses.iter().any(|x| x == a) {
            addresses.push(a.to_string());
        }
    }
    if addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::bad_request(format!(
            "addresses: Too many: {}: must have at most {MAX_ADDRESSES} items",
            addresses.len()
        )));
    }
    Ok((name, addresses))
}

/// `GET /cacerts`: the CA in PEM (404 when the server does not join nodes).
pub fn cacerts(api: &ApiServer) -> Response<Body> {
    match &api.config.node_join {
        Some(j) => {
            respond::with_content_type(StatusCode::OK, "application/x-pem-file", j.ca_cert.clone())
        }
        None => crate::router::not_found(),
    }
}

/// The join settings when the request carries the join token; 404 when the server does not
/// join nodes, 401 (Status) otherwise.
#[allow(clippy::result_large_err)]
pub fn admit(api: &ApiServer, headers: &http::HeaderMap) -> Result<NodeJoin, Response<Body>> {
    let Some(join) = api.config.node_join.clone() else {
        return Err(crate::router::not_found());
    };
    if !authorized(&join, headers) {
        return Err(respond::error(&ApiError::unauthorized()));
    }
    Ok(join)
}

/// `POST /capstan/v1/node-credentials` (after [`admit`]).
pub async fn credentials(
    api: &ApiServer,
    join: NodeJoin,
    method: &http::Method,
    body: &[u8],
) -> Response<Body> {
    if method != http::Method::POST {
        return respond::error(&ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {CREDENTIALS_PATH}; use POST"),
        ));
    }
    let (name, addresses) = match parse_request(body) {
        Ok(r) => r,
        Err(e) => return respond::error(&e),
    };
    let issued = {
        let (name, addresses) = (name.clone(), addresses.clone());
        tokio::task::spawn_blocking(move || join.issuer.issue(&name, &addresses)).await
    };
    match issued {
        Ok(Ok(c)) => {
            tracing::info!(node = %name, addresses = ?addresses, "node credentials issued");
            json_response(
                StatusCode::OK,
                &json!({
                    "kind": "NodeCredentials",
                    "apiVersion": "capstan.io/v1",
                    "nodeName": name,
                    "caCert": join.ca_cert,
                    "clientCert": c.client_cert,
                    "clientKey": c.client_key,
                    "servingCert": c.serving_cert,
                    "servingKey": c.serving_key,
                    "clusterCIDR": api.config.cluster_cidr,
                }),
            )
        }
        Ok(Err(e)) => respond::error(&ApiError::new(
            500,
            "InternalError",
            format!("issuing node credentials: {e}"),
        )),
        Err(e) => respond::error(&ApiError::new(500, "InternalError", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Never;
    impl IssueNodeCredentials for Never {
        fn issue(&self, _: &str, _: &[String]) -> Result<NodeCredentials, String> {
            Err("unused".into())
        }
    }

    fn join() -> NodeJoin {
        NodeJoin {
            ca_cert: String::new(),
            secrets: vec!["K10abc::server:s3cret".into(), "s3cret".into()],
            issuer: Arc::new(Never),
        }
    }

    #[test]
    fn authorization_header_forms() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cases: &[(Option<String>, bool)] = &[
            (None, false),
            (Some("Bearer s3cret".into()), true),
            (Some("Bearer K10abc::server:s3cret".into()), true),
            (Some("Bearer s3cre".into()), false),
            (Some("Bearer ".into()), false),
            (Some(format!("Basic {}", b64("node:s3cret"))), true),
            (
                Some(format!("Basic {}", b64("server:K10abc::server:s3cret"))),
                true,
            ),
            (Some(format!("Basic {}", b64("node:wrong"))), false),
            (Some(format!("Basic {}", b64("s3cret"))), false),
            (Some("Basic !!!".into()), false),
            (Some("Token s3cret".into()), false),
        ];
        for (header, want) in cases {
            let mut h = http::HeaderMap::new();
            if let Some(v) = header {
                h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            assert_eq!(authorized(&join(), &h), *want, "{header:?}");
        }
    }

    #[test]
    fn request_validation() {
        type Case<'a> = (&'a str, Result<(&'a str, &'a [&'a str]), &'a str>);
        let cases: &[Case] = &[
            (
                r#"{"nodeName":"n2","addresses":["10.0.0.2","host2","10.0.0.2"]}"#,
                Ok(("n2", &["10.0.0.2", "host2"])),
            ),
            (r#"{"nodeName":"n2"}"#, Ok(("n2", &[]))),
            (r#"{}"#, Err("nodeName: Required value")),
            (r#"{"nodeName":"N_2"}"#, Err("nodeName: Invalid value")),
            (
                r#"{"nodeName":"n2","addresses":["bad name"]}"#,
                Err("addresses: Invalid value"),
            ),
            ("not json", Err("decoding the request")),
        ];
        for (body, want) in cases {
            let got = parse_request(body.as_bytes());
            match (got, want) {
                (Ok((n, a)), Ok((wn, wa))) => {
                    assert_eq!(n, *wn, "{body}");
                    assert_eq!(a, wa.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                }
                (Err(e), Err(prefix)) => {
                    assert_eq!(e.code, 400, "{body}");
                    assert!(e.message.starts_with(prefix), "{body}: {}", e.message);
                }
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
        let many: Vec<String> = (0..17).map(|i| format!("\"10.0.0.{i}\"")).collect();
        let body = format!(r#"{{"nodeName":"n","addresses":[{}]}}"#, many.join(","));
        assert!(parse_request(body.as_bytes())
            .unwrap_err()
            .message
            .starts_with("addresses: Too many"));
    }
}
