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
    if user.is_none() && !auth::is_public(&path) {
        return respond::error(&ApiError::unauthorized());
    }
    match path.as_str() {
        "/version" | "/version/" => return json_response(StatusCode::OK, &crate::version_info()),
        "/livez" | "/healthz" => return respond::text(StatusCode::OK, "ok"),
        "/readyz" => {
            return match api.ready().await {
                Ok(()) => respond::text(StatusCode::OK, "ok"),
                Err(why) => respond::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("[-]{why}\nreadyz check failed"),
                ),
            }
        }
        _ => {}
    }
    if path.starts_with("/livez/") || path.starts_with("/healthz/") || path.starts_with("/readyz/")
    {
        return respond::text(StatusCode::OK, "ok");
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
