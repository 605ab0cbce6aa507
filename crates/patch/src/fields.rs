//! Field sets and their `FieldsV1` wire encoding (structured-merge-diff): `f:<name>` for
//! struct/map fields, `k:{"name":"x"}` for items of `listType=map` lists, `v:<json>` for items
//! of `listType=set` lists, `i:<n>` for list indexes, and `.:{}` when a path with children is
//! itself a member.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One step of a field path. The derived order (fields, keys, values, indexes) is the order
/// in which Kubernetes serialises them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A struct field or map key (`f:`).
    Field(String),
    /// A `listType=map` item, as its key fields in canonical JSON (`k:`), e.g. `{"name":"nginx"}`.
    Key(String),
    /// A `listType=set` item, as canonical JSON (`v:`).
    Value(String),
    /// A list index (`i:`).
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` map key for this element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` map key.
    pub fn decode(s: &str) -> Option<PathElement> {
        let (kind, rest) = s.split_at_checked(2)?;
        Some(match kind {
            "f:" => PathElement::Field(rest.into()),
            "k:" => PathElement::Key(canonical(&serde_json::from_str(rest).ok()?)),
            "v:" => PathElement::Value(canonical(&serde_json::from_str(rest).ok()?)),
            "i:" => PathElement::Index(rest.parse().ok()?),
            _ => return None,
        })
    }
}

/// Canonical JSON (object keys sorted), used for `k:` and `v:` elements.
pub(crate) fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Kubernetes' human form of a path, as in conflict messages: `.spec.containers[name="nginx"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            PathElement::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            PathElement::Value(v) => s.push_str(&format!("[={v}]")),
            PathElement::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A set of field paths, stored as a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// Decodes a `fieldsV1` value; malformed entries are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(m) = v {
            for (k, child) in m {
                if k == "." {
                    set.member = true;
                } else if let Some(pe) = PathElement::decode(k) {
                    let mut c = FieldSet::from_fields_v1(child);
                    if c.children.is_empty() {
                        c.member = true;
                    }
                    set.children.insert(pe, c);
                }
            }
        }
        set
    }

    /// Encodes as `fieldsV1`.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, c) in &self.children {
            m.insert(pe.encode(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds `path` as a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => self.member = true,
            Some((pe, rest)) => self.children.entry(pe.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((pe, rest)) => self.children.get(pe).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether `path` or any path below it is a member.
    pub fn contains_prefix(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((pe, rest)) => self
                .children
                .get(pe)
                .is_some_and(|c| c.contains_prefix(rest)),
        }
    }

    /// Removes `path` from the members (paths below it stay).
    pub fn remove(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => self.member = false,
            Some((pe, rest)) => {
                if let Some(c) = self.children.get_mut(pe) {
                    c.remove(rest);
                    if c.is_empty() {
                        self.children.remove(pe);
                    }
                }
            }
        }
    }

    /// Removes `path` and every path below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => *self = FieldSet::default(),
            Some((pe, rest)) => {
                if rest.is_empty() {
                    self.children.remove(pe);
                } else if let Some(c) = self.children.get_mut(pe) {
                    c.remove_subtree(rest);
                    if c.is_empty() {
                        self.children.remove(pe);
                    }
                }
            }
        }
    }

    /// Adds every member of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, c) in &other.children {
            self.children.entry(pe.clone()).or_default().union(c);
        }
    }

    /// Members in pre-order (parents before their children).
    pub fn members(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    /// Whether the member at `path` has members below it.
    pub fn has_children(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => self.children.values().any(|c| !c.is_empty()),
            Some((pe, rest)) => self.children.get(pe).is_some_and(|c| c.has_children(rest)),
        }
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip() {
        let cases = [
            json!({"f:metadata":{"f:labels":{".":{},"f:app":{}}}}),
            json!({"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}),
            json!({"f:metadata":{"f:finalizers":{"v:\"a/b\"":{}}}}),
            json!({"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}},"f:replicas":{}}}),
        ];
        for c in cases {
            assert_eq!(FieldSet::from_fields_v1(&c).to_fields_v1(), c);
        }
    }

    #[test]
    fn set_operations_and_paths() {
        let f = |s: &str| PathElement::Field(s.into());
        let mut s = FieldSet::default();
        s.insert(&[f("spec"), f("replicas")]);
        s.insert(&[
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"a"}"#.into()),
        ]);
        s.insert(&[
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"a"}"#.into()),
            f("image"),
        ]);
        assert!(s.contains(&[f("spec"), f("replicas")]));
        assert!(!s.contains(&[f("spec")]));
        assert!(s.contains_prefix(&[f("spec")]));
        assert_eq!(s.members().len(), 3);
        assert_eq!(
            path_string(&s.members()[1]),
            ".spec.containers[name=\"a\"].image"
        );
        s.remove_subtree(&[f("spec"), f("containers")]);
        s.remove(&[f("spec"), f("replicas")]);
        assert!(s.is_empty());
        assert_eq!(s.to_fields_v1(), json!({}));
        assert_eq!(
            PathElement::decode("k:{\"b\":1,\"a\":2}"),
            Some(PathElement::Key(r#"{"a":2,"b":1}"#.into()))
        );
        assert_eq!(PathElement::decode("x"), None);
    }
}
