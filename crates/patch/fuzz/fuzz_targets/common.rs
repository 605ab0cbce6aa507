//! Shared input splitting: the bytes hold two JSON documents separated by a NUL byte.

use serde_json::Value;

/// Parses `data` as `target \0 patch`; `None` when either half is not JSON.
pub fn two_values(data: &[u8]) -> Option<(Value, Value)> {
    let split = data.iter().position(|b| *b == 0)?;
    let target = serde_json::from_slice(&data[..split]).ok()?;
    let patch = serde_json::from_slice(&data[split + 1..]).ok()?;
    Some((target, patch))
}
