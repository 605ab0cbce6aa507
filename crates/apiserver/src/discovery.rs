//! Discovery (/api, /apis, /api/v1, /apis/G, /apis/G/V; legacy and aggregated forms) and
//! OpenAPI (/openapi/v2, /openapi/v3, /openapi/v3/<gv>) endpoints. The documents themselves
//! come from `capstan-openapi`; this module picks the form from the Accept header.

use crate::respond::{self, json_response};
use crate::server::Body;
use hyper::{Response, StatusCode};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|m| {
                let m = m.replace(' ', "");
                m.contains("g=apidiscovery.k8s.io") && m.contains("v=v2") && m.contains("as=APIGroupDiscoveryList")
            })
        })
}

/// Answer a discovery or OpenAPI path; None for anything else.
pub fn serve(parts: &http::request::Parts, path: &str, _query: &[(String, String)]) -> Option<Response<Body>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let resp = match segs.as_slice() {
        ["api"] => {
            if wants_aggregated(parts) {
                aggregated(capstan_openapi::aggregated_discovery(true))
            } else {
                json_response(StatusCode::OK, &capstan_openapi::core_versions())
            }
        }
        ["apis"] => {
            if wants_aggregated(parts) {
                aggregated(capstan_openapi::aggregated_discovery(false))
            } else {
                json_response(StatusCode::OK, &capstan_openapi::api_group_list())
            }
        }
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
                    let mut r = respond::with_content_type(StatusCode::OK, "application/json", bytes);
                    r.headers_mut().insert("cache-control", http::HeaderValue::from_static("public, immutable"));
                    r
                }
                None => crate::router::not_found(),
            }
        }
        ["openapi", "v2"] => match capstan_openapi::openapi_v2_bytes() {
            Some(bytes) => respond::with_content_type(StatusCode::OK, "application/json", bytes),
            None => crate::router::not_found(),
        },
        _ => return None,
    };
    Some(resp)
}

fn aggregated(v: serde_json::Value) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, &v);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(AGGREGATED));
    r.headers_mut().insert("vary", http::HeaderValue::from_static("Accept"));
    r
}
