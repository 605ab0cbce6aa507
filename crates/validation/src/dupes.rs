//! Duplicate-key detection on the raw JSON body (a parsed `Value` keeps only the last key),
//! for `fieldValidation=Strict|Warn`: kube-apiserver reports `duplicate field "spec.replicas"`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

struct Walk<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = format!("{}.{k}", self.path);
            if !seen.insert(k) {
                self.out.push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// JSON paths (leading dot, like [`crate::unknown_fields`]) of keys that appear more than once
/// in the same object of a raw JSON body. A body that is not JSON yields nothing.
pub fn duplicate_fields(raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let ok = Walk {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de)
    .is_ok();
    if ok {
        out
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates() {
        let cases: [(&str, Vec<&str>); 4] = [
            (r#"{"a":1,"b":2}"#, vec![]),
            (
                r#"{"spec":{"replicas":1,"replicas":2}}"#,
                vec![".spec.replicas"],
            ),
            (
                r#"{"spec":{"containers":[{"name":"a","name":"b"}]},"spec":{}}"#,
                vec![".spec.containers[0].name", ".spec"],
            ),
            ("not json", vec![]),
        ];
        for (raw, want) in cases {
            assert_eq!(duplicate_fields(raw.as_bytes()), want, "{raw}");
        }
    }
}
