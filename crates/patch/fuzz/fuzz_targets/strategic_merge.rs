//! Fuzz target: `strategic_merge` over arbitrary bytes (two JSON documents split at a NUL byte);
//! the engines must never panic.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((target, patch)) = common::two_values(data) else {
        return;
    };
    for (av, kind) in [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("x.io/v1", "Thing"),
    ] {
        let _ = capstan_patch::strategic_merge_patch(
            &target,
            &patch,
            &capstan_patch::schema_for(av, kind),
        );
    }
});
