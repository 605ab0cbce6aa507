//! RFC 7396 JSON merge patch and RFC 6902 JSON patch.

use crate::error::PatchError;
use serde_json::{Map, Value};

/// Applies an RFC 7396 merge patch: objects merge recursively, `null` deletes, anything
/// else (lists included) replaces. Never fails; the `Result` keeps the engines uniform.
pub fn json_merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    Ok(merge(target, patch))
}

fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.shift_remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// Applies an RFC 6902 JSON patch (add/remove/replace/move/copy/test) atomically.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    // Work on a copy that is dropped on failure: json-patch's own rollback (`patch`) can panic
    // when undoing a failed `move`, so use the non-rolling-back variant.
    let mut doc = target.clone();
    json_patch::patch_unsafe(&mut doc, &ops)
        .map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
            (
                json!({"metadata":{"labels":{"app":"x","tier":"db"}}}),
                json!({"metadata":{"labels":{"tier":null}}}),
                json!({"metadata":{"labels":{"app":"x"}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(
                json_merge_patch(&target, &patch).unwrap(),
                want,
                "{target} + {patch}"
            );
        }
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"spec":{"replicas":1,"list":["a","b"]},"metadata":{"name":"x"}});
        let ok = [
            (
                json!([{"op":"replace","path":"/spec/replicas","value":3}]),
                json!({"spec":{"replicas":3,"list":["a","b"]},"metadata":{"name":"x"}}),
            ),
            (
                json!([{"op":"add","path":"/spec/list/-","value":"c"}]),
                json!({"spec":{"replicas":1,"list":["a","b","c"]},"metadata":{"name":"x"}}),
            ),
            (
                json!([{"op":"remove","path":"/spec/list/0"}]),
                json!({"spec":{"replicas":1,"list":["b"]},"metadata":{"name":"x"}}),
            ),
            (
                json!([{"op":"test","path":"/metadata/name","value":"x"},{"op":"copy","from":"/metadata/name","path":"/spec/n"}]),
                json!({"spec":{"replicas":1,"list":["a","b"],"n":"x"},"metadata":{"name":"x"}}),
            ),
            (
                json!([{"op":"move","from":"/spec/replicas","path":"/spec/r"}]),
                json!({"spec":{"list":["a","b"],"r":1},"metadata":{"name":"x"}}),
            ),
            (
                json!([{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]),
                json!({"spec":{"replicas":1,"list":["a","b"]},"metadata":{"name":"x","labels":{"a":"b"}}}),
            ),
        ];
        for (patch, want) in ok {
            assert_eq!(json_patch(&doc, &patch).unwrap(), want, "{patch}");
        }
        let bad = [
            json!({"op":"add"}),
            json!([{"op":"frobnicate","path":"/a"}]),
            json!([{"op":"test","path":"/metadata/name","value":"y"}]),
            json!([{"op":"remove","path":"/nope"}]),
            json!([{"op":"replace","path":"/spec/replicas","value":2},{"op":"remove","path":"/nope"}]),
            // Found by fuzzing: json_patch::patch panics undoing this.
            json!([{"op":"add","path":"/spec/x","value":1},{"op":"move","from":"/spec/x","path":"/s/spec/ypec/y"}]),
        ];
        for patch in bad {
            assert!(json_patch(&doc, &patch).is_err(), "{patch}");
        }
    }
}
