//! Fuzz target: `server_side_apply` over arbitrary bytes (two JSON documents split at a NUL byte);
//! the engines must never panic.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((target, patch)) = common::two_values(data) else {
        return;
    };
    let schema = capstan_patch::schema_for("apps/v1", "Deployment");
    let now = "2024-01-01T00:00:00Z";
    let _ = capstan_patch::server_side_apply(Some(&target), &patch, "fuzz", false, &schema, now);
    if let Ok(mut created) =
        capstan_patch::server_side_apply(None, &patch, "fuzz", true, &schema, now)
    {
        capstan_patch::track_update(Some(&target), &mut created, "fuzz-update", now);
    }
});
