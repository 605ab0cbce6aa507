//! Typed walks of objects for server-side apply: the field set an applied configuration
//! specifies, the fields an update changed, lookup/removal by field path, and the apply merge.

use crate::error::type_name;
use crate::fields::{canonical, FieldSet, PathElement};
use crate::schema::{ListMeta, PatchSchema, SsaList};
use serde_json::{Map, Value};

/// Non-pointer Go structs: present in the zero object, so an update never "adds" them and
/// their `FieldsV1` entries carry no `.` member.
const VALUE_STRUCTS: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "template",
    "strategy",
    "updateStrategy",
    "jobTemplate",
];

/// Lists serialised without `omitempty` (`null` in the zero object): never "added" either.
const ALWAYS_PRESENT_LISTS: &[&str] = &["containers"];

/// Canonical `k:` key of a `listType=map` item, applying key defaults; `None` when a key field
/// is missing or the item is not an object.
pub(crate) fn item_key(item: &Value, meta: &ListMeta) -> Option<String> {
    let SsaList::Map(keys) = meta.ssa else {
        return None;
    };
    let m = item.as_object()?;
    let mut out = Map::new();
    let mut sorted: Vec<_> = keys.iter().collect();
    sorted.sort_by_key(|k| k.name);
    for k in sorted {
        match (m.get(k.name), k.default) {
            (Some(v), _) if !v.is_null() => out.insert(k.name.into(), v.clone()),
            (_, Some(d)) => out.insert(k.name.into(), Value::String(d.into())),
            _ => return None,
        };
    }
    Some(canonical(&Value::Object(out)))
}

/// The path element of a list item.
fn item_element(item: &Value, meta: &ListMeta) -> Option<PathElement> {
    match meta.ssa {
        SsaList::Map(_) => item_key(item, meta).map(PathElement::Key),
        SsaList::Set => Some(PathElement::Value(canonical(item))),
        SsaList::Atomic => None,
    }
}

/// Whether every item of a granular list has an identity (else the list is owned atomically).
fn granular(list: &[Value], meta: &ListMeta) -> bool {
    match meta.ssa {
        SsaList::Atomic => false,
        SsaList::Set => list.iter().all(|v| !v.is_object() && !v.is_array()),
        SsaList::Map(_) => list.iter().all(|v| item_key(v, meta).is_some()),
    }
}

/// How a set is built from a value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Apply: structs and maps are never members themselves, only their leaves.
    Apply,
    /// Update: added maps and pointer structs are members too (`.:{}`).
    Update,
}

/// First list item without its key fields, as Kubernetes reports it.
pub(crate) fn check_keys(v: &Value, schema: PatchSchema, path: &mut String) -> Result<(), String> {
    let Value::Object(m) = v else { return Ok(()) };
    for (k, c) in m {
        let len = path.len();
        path.push('.');
        path.push_str(k);
        match c {
            Value::Object(_) if !schema.field(k).is_atomic() => {
                check_keys(c, schema.field(k), path)?
            }
            Value::Array(items) => {
                let meta = schema.list(k);
                if let SsaList::Map(keys) = meta.ssa {
                    for (i, item) in items.iter().enumerate() {
                        if item_key(item, &meta).is_none() {
                            let missing = item.as_object().and_then(|o| {
                                keys.iter().find(|k| {
                                    k.default.is_none() && o.get(k.name).is_none_or(Value::is_null)
                                })
                            });
                            return Err(match missing {
                                Some(k) => format!(
                                    "{path}: element {i}: associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                                    k.name
                                ),
                                None => format!("{path}: element {i}: expected map, got {}", type_name(item)),
                            });
                        }
                        check_keys(item, meta.item, path)?;
                    }
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
    Ok(())
}

/// Adds to `set` (at `prefix`) every field of the object `v`.
pub(crate) fn value_set(
    v: &Map<String, Value>,
    schema: PatchSchema,
    mode: Mode,
    prefix: &mut Vec<PathElement>,
    set: &mut FieldSet,
) {
    for (k, c) in v {
        prefix.push(PathElement::Field(k.clone()));
        field_set(k, c, schema, mode, prefix, set);
        prefix.pop();
    }
}

fn field_set(
    k: &str,
    c: &Value,
    schema: PatchSchema,
    mode: Mode,
    prefix: &mut Vec<PathElement>,
    set: &mut FieldSet,
) {
    match c {
        Value::Object(m) if !m.is_empty() && !schema.field(k).is_atomic() => {
            if mode == Mode::Update && !VALUE_STRUCTS.contains(&k) {
                set.insert(prefix);
            }
            value_set(m, schema.field(k), mode, prefix, set);
        }
        Value::Array(items) if !items.is_empty() && granular(items, &schema.list(k)) => {
            let meta = schema.list(k);
            if mode == Mode::Update && !ALWAYS_PRESENT_LISTS.contains(&k) {
                set.insert(prefix);
            }
            for item in items {
                let Some(pe) = item_element(item, &meta) else {
                    continue;
                };
                prefix.push(pe);
                set.insert(prefix);
                if let Value::Object(im) = item {
                    value_set(im, meta.item, mode, prefix, set);
                }
                prefix.pop();
            }
        }
        _ => set.insert(prefix),
    }
}

/// Fields an update from `old` to `new` added or changed (`changed`) and removed (`removed`).
pub(crate) fn diff(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    schema: PatchSchema,
    prefix: &mut Vec<PathElement>,
    changed: &mut FieldSet,
    removed: &mut FieldSet,
) {
    for (k, nv) in new {
        prefix.push(PathElement::Field(k.clone()));
        match (old.get(k), nv) {
            (None, _) => field_set(k, nv, schema, Mode::Update, prefix, changed),
            (Some(ov), nv) if ov == nv => {}
            (Some(Value::Object(om)), Value::Object(nm))
                if !schema.field(k).is_atomic() && !nm.is_empty() =>
            {
                diff(om, nm, schema.field(k), prefix, changed, removed)
            }
            (Some(Value::Array(ol)), Value::Array(nl))
                if granular(ol, &schema.list(k))
                    && granular(nl, &schema.list(k))
                    && !nl.is_empty() =>
            {
                let meta = schema.list(k);
                for item in nl {
                    let Some(pe) = item_element(item, &meta) else {
                        continue;
                    };
                    let before = ol
                        .iter()
                        .find(|o| item_element(o, &meta).as_ref() == Some(&pe));
                    prefix.push(pe);
                    match (before, item) {
                        (Some(Value::Object(om)), Value::Object(nm)) => {
                            diff(om, nm, meta.item, prefix, changed, removed)
                        }
                        (Some(_), _) => {}
                        (None, item) => {
                            changed.insert(prefix);
                            if let Value::Object(nm) = item {
                                value_set(nm, meta.item, Mode::Update, prefix, changed);
                            }
                        }
                    }
                    prefix.pop();
                }
                for item in ol {
                    let Some(pe) = item_element(item, &meta) else {
                        continue;
                    };
                    if !nl
                        .iter()
                        .any(|n| item_element(n, &meta).as_ref() == Some(&pe))
                    {
                        prefix.push(pe);
                        removed.insert(prefix);
                        prefix.pop();
                    }
                }
            }
            _ => {
                // Replaced wholesale: what was below it is gone.
                removed.insert(prefix);
                changed.insert(prefix);
            }
        }
        prefix.pop();
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        prefix.push(PathElement::Field(k.clone()));
        removed.insert(prefix);
        prefix.pop();
    }
}

fn find_item(list: &[Value], pe: &PathElement, meta: &ListMeta) -> Option<usize> {
    match pe {
        PathElement::Index(i) => (*i < list.len()).then_some(*i),
        PathElement::Field(_) => None,
        _ => list
            .iter()
            .position(|v| item_element(v, meta).as_ref() == Some(pe)),
    }
}

/// The value at `path` in `v`.
pub(crate) fn get_at<'a>(
    v: &'a Value,
    path: &[PathElement],
    schema: PatchSchema,
) -> Option<&'a Value> {
    let Some((PathElement::Field(f), rest)) = path.split_first() else {
        return path.is_empty().then_some(v);
    };
    let c = v.as_object()?.get(f)?;
    match rest.first() {
        Some(PathElement::Field(_)) | None => get_at(c, rest, schema.field(f)),
        Some(pe) => {
            let meta = schema.list(f);
            let list = c.as_array()?;
            get_at(&list[find_item(list, pe, &meta)?], &rest[1..], meta.item)
        }
    }
}

/// Removes the value at `path` from `v`; returns whether something was removed.
pub(crate) fn remove_at(v: &mut Value, path: &[PathElement], schema: PatchSchema) -> bool {
    let Some((PathElement::Field(f), rest)) = path.split_first() else {
        return false;
    };
    let Some(obj) = v.as_object_mut() else {
        return false;
    };
    if rest.is_empty() {
        return obj.shift_remove(f).is_some();
    }
    let Some(c) = obj.get_mut(f) else {
        return false;
    };
    match &rest[0] {
        PathElement::Field(_) => remove_at(c, rest, schema.field(f)),
        pe => {
            let meta = schema.list(f);
            let Some(list) = c.as_array_mut() else {
                return false;
            };
            let Some(i) = find_item(list, pe, &meta) else {
                return false;
            };
            if rest.len() == 1 {
                list.remove(i);
                true
            } else {
                remove_at(&mut list[i], &rest[1..], meta.item)
            }
        }
    }
}

/// Merges an applied configuration into the live object: maps and structs merge, `listType=map`
/// lists merge per key, sets union, everything else is replaced.
pub(crate) fn apply_merge(
    live: &mut Map<String, Value>,
    applied: &Map<String, Value>,
    schema: PatchSchema,
) {
    for (k, av) in applied {
        if av.is_null() {
            live.shift_remove(k);
            continue;
        }
        match (live.get_mut(k), av) {
            (Some(Value::Object(lm)), Value::Object(am)) if !schema.field(k).is_atomic() => {
                apply_merge(lm, am, schema.field(k));
            }
            (Some(Value::Array(ll)), Value::Array(al))
                if granular(ll, &schema.list(k)) && granular(al, &schema.list(k)) =>
            {
                let meta = schema.list(k);
                let server: Vec<Option<PathElement>> =
                    ll.iter().map(|v| item_element(v, &meta)).collect();
                let order: Vec<Option<PathElement>> =
                    al.iter().map(|v| item_element(v, &meta)).collect();
                let mut merged = std::mem::take(ll);
                for item in al {
                    let pe = item_element(item, &meta);
                    match merged.iter_mut().find(|m| item_element(m, &meta) == pe) {
                        Some(Value::Object(mm)) => {
                            if let Value::Object(im) = item {
                                apply_merge(mm, im, meta.item);
                            }
                        }
                        Some(_) => {}
                        None => merged.push(without_nulls(item)),
                    }
                }
                *ll =
                    crate::strategic::order_by(merged, &order, &server, |v| item_element(v, &meta));
            }
            _ => {
                live.insert(k.clone(), without_nulls(av));
            }
        }
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}
