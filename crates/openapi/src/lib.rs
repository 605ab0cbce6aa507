//! Discovery and OpenAPI documents for the resources Capstan serves, generated from the resource
//! registry (`capstan_api::resources`) and k8s-openapi's schemas, as kube-apiserver 1.32 serves
//! them: legacy and aggregated discovery, and OpenAPI v3 (one document per group-version).
//!
//! **Architecture invariant:** pure; no I/O. The API server serves these values verbatim and
//! picks the form (legacy/aggregated) from the Accept header. OpenAPI documents are built lazily,
//! once per document, and kept serialized.

#![forbid(unsafe_code)]

mod discovery;
mod extensions;
mod hash;
mod kinds;
mod metrics;
mod params;
mod paths;
mod protobuf;
pub mod subresources;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

pub use discovery::{
    storage_version_hash, Options, AGGREGATED_CONTENT_TYPE, AGGREGATED_V2BETA1_CONTENT_TYPE,
};
pub use v3::KUBERNETES_VERSION;

use serde_json::Value;

/// `GET /api` (APIVersions), with an empty server address.
pub fn core_versions() -> Value {
    discovery::core_versions("")
}

/// `GET /api` (APIVersions), advertising `server_address` ("host:port") for 0.0.0.0/0.
pub fn core_versions_at(server_address: &str) -> Value {
    discovery::core_versions(server_address)
}

/// `GET /apis` (APIGroupList), without the metrics group.
pub fn api_group_list() -> Value {
    discovery::api_group_list(Options::default())
}

/// `GET /apis` (APIGroupList).
pub fn api_group_list_with(opts: Options) -> Value {
    discovery::api_group_list(opts)
}

/// `GET /apis/<group>` (APIGroup); `None` for unknown groups.
pub fn api_group(group: &str) -> Option<Value> {
    discovery::api_group(group, Options::default())
}

/// `GET /apis/<group>` (APIGroup); `None` for unknown groups.
pub fn api_group_with(group: &str, opts: Options) -> Option<Value> {
    discovery::api_group(group, opts)
}

/// `GET /api/v1`, `GET /apis/<group>/<version>` (APIResourceList); `None` when not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    discovery::api_resource_list(group, version, Options::default())
}

/// `GET /api/v1`, `GET /apis/<group>/<version>` (APIResourceList); `None` when not served.
pub fn api_resource_list_with(group: &str, version: &str, opts: Options) -> Option<Value> {
    discovery::api_resource_list(group, version, opts)
}

/// Aggregated discovery (`APIGroupDiscoveryList`) for `/api` (`core`) or `/apis`; serve it with
/// Content-Type [`AGGREGATED_CONTENT_TYPE`].
pub fn aggregated_discovery(core: bool) -> Value {
    discovery::aggregated_discovery(core, Options::default(), "v2")
}

/// Aggregated discovery with options (e.g. the metrics group).
pub fn aggregated_discovery_with(core: bool, opts: Options) -> Value {
    discovery::aggregated_discovery(core, opts, "v2")
}

/// Aggregated discovery as `apidiscovery.k8s.io/v2beta1` (same shape), for Accept headers asking
/// for `v=v2beta1` (kubectl 1.26–1.29); serve with [`AGGREGATED_V2BETA1_CONTENT_TYPE`].
pub fn aggregated_discovery_v2beta1(core: bool, opts: Options) -> Value {
    discovery::aggregated_discovery(core, opts, "v2beta1")
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
/// Builds every document once (their hashes are part of the URLs).
pub fn openapi_v3_index() -> Value {
    v3::index()
}

/// `GET /openapi/v3/<path>` ("api/v1", "apis/apps/v1", "apis/apps", "api", "apis"): the
/// serialized OpenAPI 3.0 document and its hash. Serve with `Cache-Control: public, immutable`
/// when the request's `hash` matches.
pub fn openapi_v3_group_version_bytes(path: &str) -> Option<(&'static [u8], &'static str)> {
    v3::group_version_bytes(path)
}

/// [`openapi_v3_group_version_bytes`] parsed back into a Value (for tests and tools).
pub fn openapi_v3_group_version(path: &str) -> Option<(Value, String)> {
    v3::group_version(path)
}

/// Content-Type of the protobuf form of `/openapi/v2`.
pub const OPENAPI_V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `GET /openapi/v2` as Swagger 2.0 JSON (built once, on first call). Always `Some`.
pub fn openapi_v2_bytes() -> Option<&'static [u8]> {
    Some(v2::json_bytes())
}

/// `GET /openapi/v2` as gnostic protobuf (`openapi.v2.Document`), what kubectl requests
/// (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`; kubectl 1.27–1.28
/// need it for `apply`/`create` validation and `explain`, newer ones only when v3 fails).
pub fn openapi_v2_protobuf_bytes() -> &'static [u8] {
    v2::protobuf_bytes()
}

/// The `/openapi/v2` body and Content-Type for a request's Accept header: protobuf when it
/// mentions `protobuf` (as kubectl's does), JSON otherwise.
pub fn openapi_v2_for_accept(accept: &str) -> (&'static [u8], &'static str) {
    if accept.contains("protobuf") {
        (v2::protobuf_bytes(), OPENAPI_V2_PROTOBUF_CONTENT_TYPE)
    } else {
        (v2::json_bytes(), "application/json")
    }
}
