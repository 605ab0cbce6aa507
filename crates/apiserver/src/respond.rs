//! Building HTTP responses: JSON bodies, `Status` errors, plain text and streams.

use crate::server::Body;
use crate::status::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use serde_json::Value;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_bytes(code: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("cache-control", "no-cache, private")
        .body(full(bytes))
        .expect("static headers are valid")
}

pub fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(v).expect("Value serializes"))
}

pub fn with_content_type(
    code: StatusCode,
    content_type: &str,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(full(bytes))
        .unwrap_or_else(|_| json_bytes(code, Vec::new()))
}

pub fn text(code: StatusCode, s: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(full(s.to_string()))
        .expect("static headers are valid")
}

pub fn error(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}
