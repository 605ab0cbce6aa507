//! Dispatch of one HTTP request: health and version endpoints, discovery, OpenAPI, and
//! resource requests (after authentication).

use crate::auth::{self, User};
use crate::handlers::{self, Req};
use crate::respond::{self, json_response};
use crate::server::Body;
use crate::status::ApiError;
use crate::{request, ApiServer};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// Request bodies over this size are refused with 413, as kube-apiserver does.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub async fn route(
    api: Arc<ApiServer>,
    req: Request<Incoming>,
    user: Option<User>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    // Joining nodes authenticate with the join token, not as API users.
    if path == crate::join::CACERTS_PATH && req.method() == http::Method::GET {
        return crate::join::cacerts(&api);
    }
    if path == crate::join::CREDENTIALS_PATH {
        let (parts, body) = req.into_parts();
        // The (small, size-capped) body is read first: an HTTP/2 answer sent before the request
        // body ends resets the stream, which clients report instead of the 401.
        let body = match read_body(body).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e),
        };
        return match crate::join::admit(&api, &parts.headers) {
            Ok(join) => crate::join::credentials(&api, join, &parts.method, &body).await,
            Err(resp) => resp,
        };
    }
    if user.is_none() && !auth::is_public(&path) {
        return respond::error(&ApiError::unauthorized());
    }
    if path == "/version" || path == "/version/" {
        return json_response(StatusCode::OK, &crate::version_info());
    }
    if let Some(resp) = health(&api, &path, req.uri().query().unwrap_or("")).await {
        return resp;
    }
    let (parts, body) = req.into_parts();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if let Some(resp) = crate::discovery::serve(&parts, &path, &query) {
        return resp;
    }
    let watch_param = query
        .iter()
        .any(|(k, v)| k == "watch" && request::is_true(v));
    let rr = match request::parse_request(&parts.method, &path, watch_param) {
        Ok(Some(rr)) => rr,
        Ok(None) => return respond::error(&ApiError::no_route()),
        Err(e) => return respond::error(&e),
    };
    // Read the body with a size cap.
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return respond::error(&e),
    };
    let req = Req::new(parts, query, body, user.expect("checked above"), rr);
    handlers::handle(api, req).await
}

async fn read_body(body: Incoming) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large())
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading request body: {e}"
                )))
            }
        }
    }
}

/// `Status` for a 404 on a non-resource path.
pub fn not_found() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}),
    )
}

/// /livez, /readyz, /healthz and their per-check paths, with `?verbose` as kube-apiserver
/// prints it. Readiness includes the store; liveness does not.
async fn health(api: &ApiServer, path: &str, query: &str) -> Option<Response<Body>> {
    let (endpoint, only) = match path
        .trim_end_matches('/')
        .split_once('/')
        .map(|(_, p)| p)?
        .split_once('/')
    {
        Some((e, check)) => (e.to_string(), Some(check.to_string())),
        None => (path.trim_matches('/').to_string(), None),
    };
    if !matches!(endpoint.as_str(), "livez" | "readyz" | "healthz") {
        return None;
    }
    let mut checks: Vec<(&str, Result<(), String>)> = vec![("ping", Ok(())), ("log", Ok(()))];
    if endpoint != "livez" {
        checks.push(("etcd", api.ready().await));
        checks.push(("informer-sync", Ok(())));
    }
    if let Some(one) = &only {
        return Some(match checks.iter().find(|(n, _)| n == one) {
            Some((_, Ok(()))) => respond::text(StatusCode::OK, "ok"),
            Some((_, Err(e))) => respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("internal server error: {e}"),
            ),
            None => not_found(),
        });
    }
    let failed = checks.iter().any(|(_, r)| r.is_err());
    let verbose = query
        .split('&')
        .any(|kv| kv == "verbose" || kv.starts_with("verbose="));
    let mut text = String::new();
    if verbose || failed {
        for (name, r) in &checks {
            match r {
                Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
                Err(_) => text.push_str(&format!("[-]{name} failed: reason withheld\n")),
            }
        }
        if failed {
            text.push_str(&format!("{endpoint} check failed"));
        } else {
            text.push_str(&format!("{endpoint} check passed\n"));
        }
    } else {
        text.push_str("ok");
    }
    let code = if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    Some(respond::text(code, &text))
}
