//! Error types of the patch engines. Each message is returned to the client verbatim in a
//! Status (422 for patch errors, 409 for apply conflicts), so it names the offending path.

use serde_json::Value;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not a JSON object (merge and strategic patches must be).
    #[error("{kind} patch must be a JSON object, got {got}")]
    NotAnObject {
        /// "strategic merge" or "apply".
        kind: &'static str,
        /// JSON type received.
        got: &'static str,
    },
    /// A `$patch` directive with a value other than replace/delete/merge.
    #[error("unknown patch type: {directive} in map at {path}")]
    BadPatchType {
        /// The directive value as JSON.
        directive: String,
        /// Where it was found.
        path: String,
    },
    /// `$patch: merge` on a list element, which Kubernetes does not support.
    #[error("merging lists cannot yet be specified in the patch (at {path})")]
    MergeDirectiveInList {
        /// The list.
        path: String,
    },
    /// An element of a list merged by key lacks the key field.
    #[error("map at {path} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// Merge key of the list.
        key: String,
        /// Where the element is.
        path: String,
    },
    /// A directive's or field's value has the wrong JSON type.
    #[error("expected {expected} at {path}, but received {got}")]
    BadArgType {
        /// Expected JSON type.
        expected: &'static str,
        /// JSON type received.
        got: &'static str,
        /// Where.
        path: String,
    },
    /// Items of a merged list are of mixed JSON types.
    #[error("unable to merge list at {path}: its items are not all of the same type")]
    MixedListTypes {
        /// The list.
        path: String,
    },
    /// `$retainKeys` is not a list of strings, or the patch sets a key it does not retain.
    #[error("invalid patch format of retainKeys at {path}")]
    BadRetainKeys {
        /// The map.
        path: String,
    },
    /// The list in the patch is not ordered like its `$setElementOrder` list.
    #[error("the order in patch list at {path} doesn't match its $setElementOrder list")]
    OrderMismatch {
        /// The list.
        path: String,
    },
    /// The JSON patch document is malformed (not a list of operations).
    #[error("invalid JSON patch: {0}")]
    InvalidJsonPatch(String),
    /// A JSON patch operation failed (missing path, failed test, …).
    #[error("{0}")]
    JsonPatchFailed(String),
}

/// Why a server-side apply failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The applied fields are owned by other managers with different values (HTTP 409).
    #[error("{message}")]
    Conflicts {
        /// Kubernetes-form message: `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`.
        message: String,
        /// Status causes: `{"type":"FieldManagerConflict","message":"conflict with \"m\"…","field":".spec.replicas"}`.
        causes: Vec<Value>,
    },
    /// The applied configuration is malformed.
    #[error("{0}")]
    Invalid(String),
}

impl From<PatchError> for ApplyError {
    fn from(e: PatchError) -> Self {
        ApplyError::Invalid(e.to_string())
    }
}

/// JSON type name of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}
