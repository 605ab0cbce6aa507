//! Helpers shared by the integration tests: build, default and validate objects.
#![allow(dead_code)]

use capstan_api::resources::{find_kind, Resource};
use capstan_validation::{default_object, validate, FieldError};
use serde_json::Value;

pub fn res(api_version: &str, kind: &str) -> &'static Resource {
    find_kind(api_version, kind).unwrap_or_else(|| panic!("no resource {api_version} {kind}"))
}

/// Sets `v` at a JSON pointer, creating objects on the way ("/spec/containers/0/image");
/// a null value removes the key.
pub fn set(v: &mut Value, ptr: &str, val: Value) {
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    set_parts(v, &parts, val);
}

fn set_parts(cur: &mut Value, parts: &[&str], val: Value) {
    let (p, rest) = (parts[0], &parts[1..]);
    if let (Ok(idx), Some(a)) = (p.parse::<usize>(), cur.as_array_mut()) {
        if rest.is_empty() {
            if idx < a.len() {
                a[idx] = val;
            } else {
                a.push(val);
            }
        } else {
            set_parts(&mut a[idx], rest, val);
        }
        return;
    }
    if !cur.is_object() {
        *cur = Value::Object(Default::default());
    }
    let m = cur.as_object_mut().unwrap();
    if rest.is_empty() {
        if val.is_null() {
            m.remove(p);
        } else {
            m.insert(p.to_string(), val);
        }
        return;
    }
    let next = m
        .entry(p.to_string())
        .or_insert(Value::Object(Default::default()));
    set_parts(next, rest, val);
}

/// Defaults then validates on create.
pub fn create(api_version: &str, kind: &str, mut obj: Value) -> Vec<FieldError> {
    let r = res(api_version, kind);
    default_object(r, &mut obj);
    validate(r, &obj, None, None)
}

/// Defaults both, then validates an update.
pub fn update(api_version: &str, kind: &str, mut old: Value, mut new: Value) -> Vec<FieldError> {
    let r = res(api_version, kind);
    default_object(r, &mut old);
    default_object(r, &mut new);
    validate(r, &new, Some(&old), None)
}

pub fn fields(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.field.clone()).collect()
}

/// One table case: (name, object, expected (field, reason) pairs).
pub type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>);

/// Runs a table of cases.
pub fn run_table(api_version: &str, kind: &str, cases: Vec<Case>) {
    for (name, obj, want) in cases {
        let errs = create(api_version, kind, obj);
        let got: Vec<(String, String)> = errs
            .iter()
            .map(|e| (e.field.clone(), e.reason.to_string()))
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(f, r)| (f.to_string(), r.to_string()))
            .collect();
        assert_eq!(got, want, "case {name}: {errs:#?}");
    }
}
