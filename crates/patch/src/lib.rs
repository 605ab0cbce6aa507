//! Kubernetes patch engines over `serde_json::Value`: JSON merge patch (RFC 7396), JSON patch
//! (RFC 6902), strategic merge patch with the patch metadata of the built-in kinds, and
//! server-side apply with `metadata.managedFields` bookkeeping.
//!
//! **Architecture invariant:** pure functions over values; no I/O, no clocks (callers pass `now`).

#![forbid(unsafe_code)]

mod apply;
mod error;
mod fields;
mod merge;
mod schema;
mod strategic;
mod walk;

pub use apply::{
    server_side_apply, server_side_apply_subresource, track_update, track_update_subresource,
};
pub use error::{ApplyError, PatchError};
pub use fields::{path_string, FieldSet, PathElement};
pub use merge::{json_merge_patch, json_patch};
pub use schema::{
    pod_template_schema, schema_for, ListMeta, MapKey, PatchSchema, SmpList, SsaList,
};
pub use strategic::strategic_merge_patch;

#[cfg(test)]
mod tests_smp;
#[cfg(test)]
mod tests_ssa;
