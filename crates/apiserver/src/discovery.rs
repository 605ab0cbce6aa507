//! Discovery (/api, /apis, /api/v1, /apis/G, /apis/G/V; legacy and aggregated forms) and
//! OpenAPI (/openapi/v2, /openapi/v3, /openapi/v3/<gv>) endpoints. The documents themselves
//! come from `capstan-openapi`; this module picks the form from the Accept header.

use crate::respond::{self, json_response};
use crate::server::Body;
use hyper::{Response, StatusCode};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Which aggregated discovery version the client accepts, if any ("v2" preferred over "v2beta1").
fn wants_aggregated(parts: &http::request::Parts) -> Option<&'static str> {
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())?;
    let mut best = None;
    for m in accept.split(',') {
        let m = m.replace(' ', "");
        if !(m.contains("g=apidiscovery.k8s.io") && m.contains("as=APIGroupDiscoveryList")) {
            continue;
        }
        if m.split(';').any(|p| p == "v=v2") {
            return Some("v2");
        }
        if m.split(';').any(|p| p == "v=v2beta1") {
            best = Some("v2beta1");
        }
    }
    best
}

fn accept(parts: &http::request::Parts) -> &str {
    parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Answer a discovery or OpenAPI path; None for anything else.
pub fn serve(
    parts: &http::request::Parts,
    path: &str,
    _query: &[(String, String)],
) -> Option<Response<Body>> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let resp = match segs.as_slice() {
        ["api"] => match wants_aggregated(parts) {
            Some("v2") => aggregated(capstan_openapi::aggregated_discovery(true), AGGREGATED),
            Some(_) => aggregated(
                capstan_openapi::aggregated_discovery_v2beta1(
                    true,
                    capstan_openapi::Options::default(),
                ),
                capstan_openapi::AGGREGATED_V2BETA1_CONTENT_TYPE,
            ),
            None => json_response(StatusCode::OK, &capstan_openapi::core_versions()),
        },
        ["apis"] => match wants_aggregated(parts) {
            Some("v2") => aggregated(capstan_openapi::aggregated_discovery(false), AGGREGATED),
            Some(_) => aggregated(
                capstan_openapi::aggregated_discovery_v2beta1(
                    false,
                    capstan_openapi::Options::default(),
                ),
                capstan_openapi::AGGREGATED_V2BETA1_CONTENT_TYPE,
            ),
            None => json_response(StatusCode::OK, &capstan_openapi::api_group_list()),
        },
        ["api", v] => match capstan_openapi::api_resource_list("", v) {
            Some(l) => json_response(StatusCode::OK, &l),
            None => crate::router::not_found(),
        },
        ["apis", g] => match capstan_openapi::api_group(g) {
            Some(l) => json_response(StatusCode::OK, &l),
            None => crate::router::not_found(),
        },
        ["apis", g, v] => match capstan_openapi::api_resource_list(g, v) {
            Some(l) => json_response(StatusCode::OK, &l),
            None => crate::router::not_found(),
        },
        ["openapi", "v3"] => json_response(StatusCode::OK, &capstan_openapi::openapi_v3_index()),
        ["openapi", "v3", rest @ ..] => {
            let gv = rest.join("/");
            match capstan_openapi::openapi_v3_group_version_bytes(&gv) {
                Some((bytes, _hash)) => {
                    let mut r =
                        respond::with_content_type(StatusCode::OK, "application/json", bytes);
                    r.headers_mut().insert(
                        "cache-control",
                        http::HeaderValue::from_static("public, immutable"),
                    );
                    r
                }
                None => crate::router::not_found(),
            }
        }
        ["openapi", "v2"] => {
            let (bytes, content_type) = capstan_openapi::openapi_v2_for_accept(accept(parts));
            respond::with_content_type(StatusCode::OK, content_type, bytes)
        }
        _ => return None,
    };
    Some(resp)
}

fn aggregated(v: serde_json::Value, content_type: &'static str) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, &v);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r.headers_mut()
        .insert("vary", http::HeaderValue::from_static("Accept"));
    r
}
