//! capstan-validation: what kube-apiserver does to an object between decoding and storing it,
//! over `serde_json::Value` objects in their JSON wire form.
//!
//! - [`default_object`]: the kind's `SetDefaults_*` (run before validation on create and update);
//!   [`job_generate_selector`] and [`normalize_secret`] are the strategy steps the server calls
//!   (after setting `metadata.uid` / before validating a Secret).
//! - [`validate`]: type checking against the k8s-openapi type, `metadata` rules, and the
//!   kind's create/update rules, as [`FieldError`]s worded like kube-apiserver's causes;
//!   [`invalid_message`] builds the 422 message from them.
//! - [`unknown_fields`]: fields outside the kind's schema, for `fieldValidation=Strict|Warn`;
//!   [`strict_decoding_message`] builds the 400 message.
//!
//! **Architecture invariant:** pure functions over values; no I/O, no clock, no store. Checks
//! that need other objects (priority class lookup, quota, IP allocation) belong to the server.

#![forbid(unsafe_code)]

pub mod cidr;
pub mod cron;
mod data;
mod defaults;
mod dupes;
mod errors;
mod hpa;
mod kinds;
mod meta;
pub mod names;
mod other;
mod pod;
mod prepare;
pub mod quantity;
mod rbac;
mod schema;
mod service;
mod storage;
mod util;
mod workloads;

use capstan_api::resources::Resource;
use serde_json::Value;

pub use data::{normalize_secret, MAX_SECRET_SIZE};
pub use defaults::{
    default_pull_policy, job_generate_selector, JOB_CONTROLLER_UID_LABEL, JOB_NAME_LABEL,
    LEGACY_JOB_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
pub use dupes::duplicate_fields;
pub use errors::{invalid_message, qualified_kind, FieldError};
pub use meta::TOTAL_ANNOTATION_SIZE_LIMIT;
pub use other::HIGHEST_USER_DEFINABLE_PRIORITY;
pub use pod::POD_UPDATABLE_FIELDS;
pub use prepare::prepare_for_update;
pub use schema::{
    decode_error_message, strict_decoding_message, strict_decoding_message_with_duplicates,
    type_errors, TypeError,
};
pub use service::NODE_PORT_RANGE;

use names::NameRule;
use util::get;

/// Defaulting as Kubernetes' `SetDefaults_*` for the kind (mutates in place).
pub fn default_object(res: &Resource, obj: &mut Value) {
    defaults::default_kind(res.group, res.version, res.kind, obj);
}

/// Which name rule Kubernetes applies to objects of a kind.
pub fn name_rule(res: &Resource) -> NameRule {
    match (res.group, res.kind) {
        ("", "Namespace") => NameRule::Dns1123Label,
        ("", "Service") => NameRule::Dns1035Label,
        ("autoscaling", "HorizontalPodAutoscaler") => NameRule::PathSegment,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

fn is_review(res: &Resource) -> bool {
    !res.is_stored()
}

/// The kind of a subresource's request body when it differs from the parent's:
/// `scale` → autoscaling/v1 Scale, `binding` → v1 Binding, `eviction` → policy/v1 Eviction,
/// `token` → authentication.k8s.io/v1 TokenRequest.
pub fn subresource_kind(subresource: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match subresource {
        "scale" => Some(("autoscaling", "v1", "Scale")),
        "binding" => Some(("", "v1", "Binding")),
        "eviction" => Some(("policy", "v1", "Eviction")),
        "token" => Some(("authentication.k8s.io", "v1", "TokenRequest")),
        _ => None,
    }
}

/// Validation on create (`old = None`) and update (`old = Some(previous stored object)`).
///
/// `subresource`: `None` for the main resource, `Some("status")` (metadata rules only; the
/// server keeps the spec from the old object), `Some("scale")` (`obj` is an autoscaling/v1
/// Scale), `Some("binding")` (`obj` is a v1 Binding: target kind Node, name required); other
/// subresources get type checking only (against [`subresource_kind`] where it applies).
///
/// Type errors come back alone (reason `FieldValueTypeInvalid`): the object could not be
/// decoded, so nothing else is checked — answer them with 400 and [`decode_error_message`].
pub fn validate(
    res: &Resource,
    obj: &Value,
    old: Option<&Value>,
    subresource: Option<&str>,
) -> Vec<FieldError> {
    let (g, v, k) =
        subresource
            .and_then(subresource_kind)
            .unwrap_or((res.group, res.version, res.kind));
    let types = type_errors(g, v, k, obj);
    if !types.is_empty() {
        return types.iter().map(TypeError::to_field_error).collect();
    }
    validate_semantics(res, obj, old, subresource)
}

/// Type errors and unknown fields of an object in one schema walk (the typed decode runs only
/// when the walk found no type error), for the API server's decode step.
pub fn check_object(
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
) -> (Vec<TypeError>, Vec<String>) {
    let checked = schema::check(group, version, kind, obj);
    let types = if checked.types.is_empty() {
        schema::type_errors_decode_only(group, version, kind, obj)
    } else {
        checked.types
    };
    (types, checked.unknown)
}

/// [`validate`] without its type check, for callers that type-checked the object already
/// (with [`check_object`] or [`type_errors`]).
pub fn validate_semantics(
    res: &Resource,
    obj: &Value,
    old: Option<&Value>,
    subresource: Option<&str>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if is_review(res) {
        return errs;
    }
    let meta = get(obj, "metadata");
    match subresource {
        None => {}
        Some("scale") => {
            other::validate_scale(obj, &mut errs);
            return errs;
        }
        Some("status") => {
            meta::validate_object_meta(meta, res.namespaced, name_rule(res), &mut errs);
            if let Some(old) = old {
                meta::validate_object_meta_update(meta, get(old, "metadata"), &mut errs);
            }
            return errs;
        }
        Some("binding") => {
            other::validate_binding(obj, &mut errs);
            return errs;
        }
        Some(_) => return errs,
    }
    meta::validate_object_meta(meta, res.namespaced, name_rule(res), &mut errs);
    if let Some(old) = old {
        meta::validate_object_meta_update(meta, get(old, "metadata"), &mut errs);
    }
    validate_kind(res, obj, old, &mut errs);
    if let Some(old) = old {
        validate_kind_update(res, obj, old, &mut errs);
    }
    errs
}

fn validate_kind(res: &Resource, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    match (res.group, res.kind) {
        ("", "Pod") => pod::validate_pod_spec(get(obj, "spec"), "spec", errs),
        ("", "Service") => service::validate_service(obj, errs),
        ("", "Secret") => data::validate_secret(obj, errs),
        ("", "ConfigMap") => data::validate_config_map(obj, errs),
        ("", "Namespace") => other::validate_namespace(obj, errs),
        ("", "Node") => other::validate_node(obj, errs),
        ("", "Event") => other::validate_core_event(obj, errs),
        ("", "ReplicationController") => workloads::validate_replication_controller(obj, errs),
        ("apps", "Deployment") => workloads::validate_deployment(obj, errs),
        ("apps", "ReplicaSet") => workloads::validate_replica_set(obj, errs),
        ("apps", "DaemonSet") => workloads::validate_daemon_set(obj, errs),
        ("apps", "StatefulSet") => workloads::validate_stateful_set(obj, errs),
        ("batch", "Job") => workloads::validate_job(obj, errs),
        ("batch", "CronJob") => workloads::validate_cron_job(obj, old, errs),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa::validate_hpa(obj, res.version, errs),
        ("policy", "PodDisruptionBudget") => other::validate_pdb(obj, errs),
        ("scheduling.k8s.io", "PriorityClass") => other::validate_priority_class(obj, errs),
        ("coordination.k8s.io", "Lease") => other::validate_lease(obj, errs),
        ("discovery.k8s.io", "EndpointSlice") => other::validate_endpoint_slice(obj, errs),
        ("events.k8s.io", "Event") => other::validate_events_v1_event(obj, errs),
        ("networking.k8s.io", "NetworkPolicy") => other::validate_network_policy(obj, errs),
        ("networking.k8s.io", "Ingress") => other::validate_ingress(obj, errs),
        ("", "PersistentVolumeClaim") => storage::validate_pvc(obj, errs),
        ("", "PersistentVolume") => storage::validate_pv(obj, errs),
        ("", "Endpoints") => storage::validate_endpoints(obj, errs),
        ("", "ResourceQuota") => storage::validate_resource_quota(obj, errs),
        ("", "LimitRange") => storage::validate_limit_range(obj, errs),
        ("rbac.authorization.k8s.io", "Role") => rbac::validate_role(obj, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRole") => rbac::validate_role(obj, false, errs),
        ("rbac.authorization.k8s.io", "RoleBinding") => rbac::validate_binding(obj, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            rbac::validate_binding(obj, false, errs)
        }
        _ => {}
    }
}

fn validate_kind_update(res: &Resource, obj: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    match (res.group, res.kind) {
        ("", "Pod") => pod::validate_pod_spec_update(obj, old, errs),
        ("", "Service") => service::validate_service_update(obj, old, errs),
        ("", "Secret") => data::validate_immutable_data(obj, old, true, errs),
        ("", "ConfigMap") => data::validate_immutable_data(obj, old, false, errs),
        ("apps", k) | ("batch", k) => workloads::validate_workload_update(k, obj, old, errs),
        ("scheduling.k8s.io", "PriorityClass") => {
            other::validate_priority_class_update(obj, old, errs)
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            other::validate_endpoint_slice_update(obj, old, errs)
        }
        ("", "PersistentVolumeClaim") => storage::validate_pvc_update(obj, old, errs),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            rbac::validate_binding_update(obj, old, errs)
        }
        _ => {}
    }
}

/// Strict field validation: the JSON paths (leading dot, e.g. `.spec.contianers[0].imag`) of
/// fields that are not part of the kind's schema, `status` included. Duplicate keys are not
/// detectable here (the JSON was already parsed into a map). For the 400 message see
/// [`strict_decoding_message`]; for Warning headers, `unknown field "<path without dot>"`.
pub fn unknown_fields(res: &Resource, obj: &Value) -> Vec<String> {
    unknown_fields_gvk(res.group, res.version, res.kind, obj)
}

/// [`unknown_fields`] for a kind named directly, e.g. ("autoscaling", "v1", "Scale") for a
/// `/scale` body or ("policy", "v1", "Eviction"); kinds without a known schema report nothing.
pub fn unknown_fields_gvk(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
    schema::check(group, version, kind, obj).unknown
}
