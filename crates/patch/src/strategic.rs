//! Strategic merge patch, as kube-apiserver applies it (`MergeParallelList` and
//! `IgnoreUnmatchedNulls` on): maps merge recursively, `null` deletes, lists merge by their
//! `patchMergeKey` or as sets of primitives when tagged `patchStrategy:"merge"`, and are replaced
//! otherwise. Directives: `$patch: replace|delete|merge`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>`.

use crate::error::{type_name, PatchError};
use crate::schema::{ListMeta, PatchSchema, SmpList};
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `target` using the patch metadata in `schema`.
/// Where `schema` knows nothing, maps merge and lists are replaced (JSON merge patch semantics).
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::NotAnObject {
            kind: "strategic merge",
            got: type_name(patch),
        });
    };
    let original = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Value::Object(merge_map(original, p.clone(), *schema, "")?))
}

fn child(path: &str, k: &str) -> String {
    format!("{path}.{k}")
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "."
    } else {
        path
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: PatchSchema,
    path: &str,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(d) = patch.shift_remove(DIRECTIVE) {
        match d.as_str() {
            Some("replace") => return merge_map(Map::new(), patch, schema, path),
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => {
                return Err(PatchError::BadPatchType {
                    directive: d.to_string(),
                    path: display(path).into(),
                })
            }
        }
    }
    if let Some(rk) = patch.shift_remove(RETAIN_KEYS) {
        let bad = || PatchError::BadRetainKeys {
            path: display(path).into(),
        };
        let keys = rk.as_array().ok_or_else(bad)?;
        if keys.iter().any(|k| !k.is_string()) {
            return Err(bad());
        }
        let retained = |k: &str| keys.iter().any(|x| x.as_str() == Some(k));
        for (k, v) in &patch {
            if !v.is_null()
                && !k.starts_with(DELETE_PRIMITIVE)
                && !k.starts_with(SET_ORDER)
                && !retained(k)
            {
                return Err(bad());
            }
        }
        original.retain(|k, _| retained(k));
    }

    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER))
        .cloned()
        .collect();
    for ok in order_keys {
        let order = patch.shift_remove(&ok).unwrap_or_default();
        let field = &ok[SET_ORDER.len()..];
        let fpath = child(path, field);
        let Value::Array(order) = order else {
            return Err(PatchError::BadArgType {
                expected: "list",
                got: type_name(&order),
                path: child(path, &ok),
            });
        };
        let meta = schema.list(field);
        let key = merge_key(&meta);
        let orig_list = match original.shift_remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(l)) => Some(l),
            Some(other) => {
                return Err(PatchError::BadArgType {
                    expected: "list",
                    got: type_name(&other),
                    path: fpath,
                })
            }
        };
        let patch_list = match patch.shift_remove(field) {
            None => None,
            Some(Value::Array(l)) => Some(l),
            Some(other) => {
                return Err(PatchError::BadArgType {
                    expected: "list",
                    got: type_name(&other),
                    path: fpath,
                })
            }
        };
        if let Some(pl) = &patch_list {
            validate_order(pl, &order, key, &fpath)?;
        }
        let server_order = orig_list.clone().unwrap_or_default();
        let merged = match (orig_list, patch_list) {
            (Some(o), None) => o,
            (o, Some(p)) => merge_list(o.unwrap_or_default(), p, &meta, &fpath)?,
            (None, None) => continue,
        };
        let merged = match meta.smp {
            SmpList::Replace => merged,
            SmpList::Merge { .. } => order_list(merged, &order, &server_order, key),
        };
        original.insert(field.to_string(), Value::Array(merged));
    }

    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let Value::Array(del) = &pv else {
                return Err(PatchError::BadArgType {
                    expected: "list",
                    got: type_name(&pv),
                    path: child(path, &k),
                });
            };
            if let Some(Value::Array(ol)) = original.get_mut(field) {
                ol.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            original.shift_remove(&k);
            continue;
        }
        let kpath = child(path, &k);
        match (original.get_mut(&k), pv) {
            (Some(Value::Object(om)), Value::Object(pm)) => {
                let merged = merge_map(std::mem::take(om), pm, schema.field(&k), &kpath)?;
                *om = merged;
            }
            (Some(Value::Array(ol)), Value::Array(pl)) => {
                let meta = schema.list(&k);
                let server_order = ol.clone();
                let merged = merge_list(std::mem::take(ol), pl.clone(), &meta, &kpath)?;
                *ol = match meta.smp {
                    SmpList::Replace => merged,
                    SmpList::Merge { key } => order_list(merged, &pl, &server_order, key),
                };
            }
            (_, Value::Object(pm)) => {
                if pm.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    original.shift_remove(&k);
                } else {
                    let fresh = merge_map(Map::new(), pm, schema.field(&k), &kpath)?;
                    original.insert(k, Value::Object(fresh));
                }
            }
            (_, Value::Array(pl)) => {
                let fresh = merge_list(Vec::new(), pl, &schema.list(&k), &kpath)?;
                original.insert(k, Value::Array(fresh));
            }
            (_, pv) => {
                original.insert(k, pv);
            }
        }
    }
    Ok(original)
}

fn merge_key(meta: &ListMeta) -> Option<&'static str> {
    match meta.smp {
        SmpList::Merge { key } => key,
        SmpList::Replace => None,
    }
}

/// Merges `patch` into `original` (unordered: original order, new items appended).
fn merge_list(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    meta: &ListMeta,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    let is_replace = |v: &Value| v.get(DIRECTIVE).and_then(Value::as_str) == Some("replace");
    if patch.iter().any(is_replace) {
        let rest = patch.into_iter().filter(|v| !is_replace(v)).collect();
        return clean_list(rest, meta, path);
    }
    let SmpList::Merge { key } = meta.smp else {
        return Ok(patch);
    };
    let objects = original
        .iter()
        .chain(&patch)
        .filter(|v| v.is_object())
        .count();
    if objects == 0 {
        if original.iter().chain(&patch).any(Value::is_array) {
            return Err(PatchError::MixedListTypes { path: path.into() });
        }
        for v in patch {
            if !original.contains(&v) {
                original.push(v);
            }
        }
        return Ok(original);
    }
    if objects != original.len() + patch.len() {
        return Err(PatchError::MixedListTypes { path: path.into() });
    }
    let Some(key) = key else {
        // A merged list of maps without a merge key cannot be merged; replace it.
        return clean_list(patch, meta, path);
    };
    for (i, item) in patch.into_iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        let Value::Object(mut item) = item else {
            continue;
        };
        let missing = || PatchError::MissingMergeKey {
            key: key.into(),
            path: ipath.clone(),
        };
        match item.get(DIRECTIVE).cloned() {
            None => {}
            Some(Value::String(d)) if d == "delete" => {
                let kv = item.get(key).ok_or_else(missing)?;
                original.retain(|o| o.get(key) != Some(kv));
                continue;
            }
            Some(Value::String(d)) if d == "merge" => {
                return Err(PatchError::MergeDirectiveInList { path: path.into() });
            }
            Some(d) => {
                return Err(PatchError::BadPatchType {
                    directive: d.to_string(),
                    path: ipath,
                })
            }
        }
        let kv = item.get(key).cloned().ok_or_else(missing)?;
        let ipath = format!("{path}[{key}={kv}]");
        match original.iter_mut().find(|o| o.get(key) == Some(&kv)) {
            Some(Value::Object(om)) => {
                let merged = merge_map(
                    std::mem::take(om),
                    std::mem::take(&mut item),
                    meta.item,
                    &ipath,
                )?;
                *om = merged;
            }
            _ => original.push(Value::Object(merge_map(
                Map::new(),
                item,
                meta.item,
                &ipath,
            )?)),
        }
    }
    Ok(original)
}

/// Strips directives and nulls from the maps of a list that replaces the live one.
fn clean_list(list: Vec<Value>, meta: &ListMeta, path: &str) -> Result<Vec<Value>, PatchError> {
    list.into_iter()
        .map(|v| match v {
            Value::Object(m) => Ok(Value::Object(merge_map(Map::new(), m, meta.item, path)?)),
            other => Ok(other),
        })
        .collect()
}

/// Identity of a list item: its merge key value for maps, itself for primitives.
fn ident<'a>(v: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match (key, v) {
        (Some(k), Value::Object(m)) => m.get(k),
        (Some(_), _) => None,
        (None, v) => Some(v),
    }
}

fn index_of(list: &[Value], v: &Value, key: Option<&str>) -> Option<usize> {
    let id = ident(v, key)?;
    list.iter().position(|x| ident(x, key) == Some(id))
}

fn validate_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
    path: &str,
) -> Result<(), PatchError> {
    let mut last = None;
    for item in patch {
        if item.get(DIRECTIVE).is_some() {
            continue;
        }
        match index_of(order, item, key) {
            Some(i) if last.is_none_or(|l| i > l) => last = Some(i),
            _ => return Err(PatchError::OrderMismatch { path: path.into() }),
        }
    }
    Ok(())
}

/// Orders a merged SMP list; see [`order_by`].
fn order_list(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let ids = |l: &[Value]| l.iter().map(|v| ident(v, key).cloned()).collect::<Vec<_>>();
    order_by(merged, &ids(order), &ids(server), |v| {
        ident(v, key).cloned()
    })
}

/// Orders a merged list the way the apiserver does: items named in `order` (the patch list or
/// `$setElementOrder`) in that order, server-only items interleaved by their live position.
pub(crate) fn order_by<K: PartialEq>(
    merged: Vec<Value>,
    order: &[Option<K>],
    server: &[Option<K>],
    id: impl Fn(&Value) -> Option<K>,
) -> Vec<Value> {
    let pos = |l: &[Option<K>], k: &Option<K>| {
        k.as_ref()
            .and_then(|k| l.iter().position(|x| x.as_ref() == Some(k)))
    };
    let (mut patch_items, mut server_only): (Vec<_>, Vec<_>) = merged
        .into_iter()
        .map(|v| {
            let k = id(&v);
            (pos(order, &k), pos(server, &k), v)
        })
        .partition(|(o, _, _)| o.is_some());
    patch_items.sort_by_key(|(o, _, _)| *o);
    server_only.sort_by_key(|(_, s, _)| s.unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let (mut l, mut r) = (
        server_only.into_iter().peekable(),
        patch_items.into_iter().peekable(),
    );
    loop {
        let take_left = match (l.peek(), r.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, ls, _)), Some((_, rs, _))) => matches!((ls, rs), (Some(a), Some(b)) if a < b),
        };
        let next = if take_left { l.next() } else { r.next() };
        if let Some((_, _, v)) = next {
            out.push(v);
        }
    }
    out
}
