//! Fuzz target: `json_patch` over arbitrary bytes (two JSON documents split at a NUL byte);
//! the engines must never panic.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((target, patch)) = common::two_values(data) else {
        return;
    };
    let _ = capstan_patch::json_patch(&target, &patch);
});
