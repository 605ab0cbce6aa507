//! Server-side apply and `metadata.managedFields` bookkeeping for every write.

use crate::error::{type_name, ApplyError};
use crate::fields::{path_string, FieldSet, PathElement};
use crate::schema::{schema_for, PatchSchema};
use crate::walk::{apply_merge, check_keys, diff, get_at, remove_at, value_set, Mode};
use serde_json::{json, Map, Value};

/// Metadata fields nobody owns (Kubernetes' strip set).
const META_UNOWNED: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn new(manager: &str, operation: &str, api_version: &str, now: &str) -> Entry {
        Entry {
            manager: manager.into(),
            operation: operation.into(),
            api_version: api_version.into(),
            time: Some(now.into()),
            subresource: None,
            set: FieldSet::default(),
        }
    }

    /// Kubernetes' `printManager`: `"name"`, plus ` using <apiVersion>` for Update managers.
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn parse_entries(mf: Option<&Value>) -> Vec<Entry> {
    let Some(Value::Array(list)) = mf else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: str_field(e, "manager").unwrap_or_default(),
                operation: str_field(e, "operation")?,
                api_version: str_field(e, "apiVersion").unwrap_or_default(),
                time: str_field(e, "time"),
                subresource: str_field(e, "subresource").filter(|s| !s.is_empty()),
                set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
            })
        })
        .collect()
}

/// Encodes entries in Kubernetes' order (Apply before Update, then by time, manager,
/// apiVersion), dropping those that own nothing.
fn encode_entries(mut entries: Vec<Entry>) -> Value {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(
        entries
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if let Some(s) = e.subresource {
                    m.insert("subresource".into(), json!(s));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn set_managed_fields(obj: &mut Value, entries: Vec<Entry>) {
    let encoded = encode_entries(entries);
    let Some(o) = obj.as_object_mut() else { return };
    if encoded.as_array().is_some_and(Vec::is_empty) {
        if let Some(Value::Object(m)) = o.get_mut("metadata") {
            m.shift_remove("managedFields");
        }
        return;
    }
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        m.insert("managedFields".into(), encoded);
    }
}

/// Removes the paths nobody owns from a set.
fn strip(set: &mut FieldSet, status: bool) {
    let f = |s: &str| PathElement::Field(s.into());
    set.remove_subtree(&[f("apiVersion")]);
    set.remove_subtree(&[f("kind")]);
    set.remove(&[f("metadata")]);
    for m in META_UNOWNED {
        set.remove_subtree(&[f("metadata"), f(m)]);
    }
    if status {
        set.remove_subtree(&[f("status")]);
    }
}

/// The object without `metadata.managedFields` (and, for an applied configuration, without the
/// fields the server sets).
fn without_unowned(v: &Value, applied: bool) -> Map<String, Value> {
    let mut m = v.as_object().cloned().unwrap_or_default();
    if applied {
        m.shift_remove("status");
    }
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        meta.shift_remove("managedFields");
        if applied {
            for k in &META_UNOWNED[2..] {
                meta.shift_remove(*k);
            }
        }
    }
    m
}

fn conflict_error(conflicts: &[(Entry, Vec<PathElement>)]) -> ApplyError {
    let causes = conflicts
        .iter()
        .map(|(e, p)| {
            json!({"type": "FieldManagerConflict", "message": format!("conflict with {}", e.display()), "field": path_string(p)})
        })
        .collect();
    let message = if let [(e, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            e.display(),
            path_string(p)
        )
    } else {
        let mut managers: Vec<String> = conflicts.iter().map(|(e, _)| e.display()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in conflicts.iter().filter(|(e, _)| e.display() == m) {
                lines.push(format!("- {}", path_string(p)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApplyError::Conflicts { message, causes }
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` creates). Returns the new
/// object with `metadata.managedFields` updated, or the conflicts with other managers' fields
/// (ownership moves to `manager` instead when `force`). Fields `manager` applied before and no
/// longer applies are removed unless another manager owns them.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    schema: &PatchSchema,
    now: &str,
) -> Result<Value, ApplyError> {
    server_side_apply_subresource(live, applied, manager, force, schema, now, None)
}

/// [`server_side_apply`] through a subresource: with `Some("status")` only `status` is applied
/// and owned, by an entry carrying `subresource: status`; other subresources apply like the
/// main resource but record the subresource.
pub fn server_side_apply_subresource(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    schema: &PatchSchema,
    now: &str,
    subresource: Option<&str>,
) -> Result<Value, ApplyError> {
    let schema = *schema;
    if !applied.is_object() {
        return Err(ApplyError::Invalid(format!(
            "apply patch must be a JSON object, got {}",
            type_name(applied)
        )));
    }
    let status_only = subresource == Some("status");
    let applied = if status_only {
        let mut m = Map::new();
        if let Some(st) = applied.get("status") {
            m.insert("status".into(), st.clone());
        }
        Value::Object(m)
    } else {
        applied.clone()
    };
    let applied = &applied;
    check_keys(applied, schema, &mut String::new()).map_err(ApplyError::Invalid)?;
    let applied_obj = if status_only {
        applied.as_object().cloned().unwrap_or_default()
    } else {
        without_unowned(applied, true)
    };
    let mut applied_set = FieldSet::default();
    value_set(
        &applied_obj,
        schema,
        Mode::Apply,
        &mut Vec::new(),
        &mut applied_set,
    );
    strip(&mut applied_set, !status_only);
    let api_version = applied
        .get("apiVersion")
        .or_else(|| live.and_then(|l| l.get("apiVersion")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let live_obj = live.map(|l| without_unowned(l, false)).unwrap_or_default();
    let mut entries = parse_entries(live.and_then(|l| l.pointer("/metadata/managedFields")));
    if let (Some(l), true) = (live, entries.is_empty()) {
        let mut e = Entry::new(
            "before-first-apply",
            "Update",
            &str_field(l, "apiVersion").unwrap_or_default(),
            now,
        );
        value_set(&live_obj, schema, Mode::Update, &mut Vec::new(), &mut e.set);
        strip(&mut e.set, false);
        entries.push(e);
    }
    let me = entries.iter().position(|e| {
        e.manager == manager && e.operation == "Apply" && e.subresource.as_deref() == subresource
    });
    let previous = me.map(|i| entries[i].set.clone()).unwrap_or_default();

    let live_value = Value::Object(live_obj.clone());
    let applied_value = Value::Object(applied_obj.clone());
    let mut conflicts = Vec::new();
    for path in applied_set.members() {
        if applied_set.has_children(&path) {
            continue;
        }
        let lv = get_at(&live_value, &path, schema);
        if lv.is_none() || lv == get_at(&applied_value, &path, schema) {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if Some(i) != me && e.set.contains(&path) {
                conflicts.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let named: Vec<_> = conflicts
                .into_iter()
                .map(|(i, p)| (entries[i].clone(), p))
                .collect();
            return Err(conflict_error(&named));
        }
        for (i, p) in &conflicts {
            entries[*i].set.remove(p);
        }
    }

    let mut merged = live_obj;
    apply_merge(&mut merged, &applied_obj, schema);
    let mut merged = Value::Object(merged);
    for path in previous.members() {
        let owned_elsewhere = entries
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != me && e.set.contains_prefix(&path));
        if !owned_elsewhere && !applied_set.contains_prefix(&path) {
            remove_at(&mut merged, &path, schema);
        }
    }

    match me {
        Some(i) => {
            let e = &mut entries[i];
            e.set = applied_set;
            e.time = Some(now.into());
            e.api_version = api_version;
        }
        None => {
            let mut e = Entry::new(manager, "Apply", &api_version, now);
            e.subresource = subresource.map(str::to_string);
            e.set = applied_set;
            entries.push(e);
        }
    }
    set_managed_fields(&mut merged, entries);
    Ok(merged)
}

/// Records an Update by `manager` (a create when `old` is `None`): the fields the write added
/// or changed become owned by `manager` (operation "Update") and leave other managers; removed
/// fields leave every manager. Managed fields the client sent explicitly (different from
/// `old`'s) are taken as the starting point, as the apiserver does.
pub fn track_update(old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    track_update_subresource(old, new, manager, now, None)
}

/// [`track_update`] for a write through a subresource (`status`, `scale`, …): the manager's
/// entry records the subresource, as Kubernetes does.
pub fn track_update_subresource(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    subresource: Option<&str>,
) {
    if !new.is_object() {
        return;
    }
    let api_version = str_field(new, "apiVersion").unwrap_or_default();
    let schema = schema_for(
        &api_version,
        new.get("kind").and_then(Value::as_str).unwrap_or_default(),
    );
    let old_mf = old.and_then(|o| o.pointer("/metadata/managedFields"));
    let new_mf = new.pointer("/metadata/managedFields");
    let mut entries = match (new_mf, old_mf) {
        (Some(n), o) if Some(n) != o => parse_entries(Some(n)),
        (_, o) => parse_entries(o),
    };
    let old_obj = old.map(|o| without_unowned(o, false)).unwrap_or_default();
    let new_obj = without_unowned(new, false);
    let (mut changed, mut removed) = (FieldSet::default(), FieldSet::default());
    diff(
        &old_obj,
        &new_obj,
        schema,
        &mut Vec::new(),
        &mut changed,
        &mut removed,
    );
    strip(&mut changed, false);
    strip(&mut removed, false);
    let removed = removed.members();
    let changed_paths = changed.members();
    let mine = |e: &Entry| {
        e.manager == manager
            && e.operation == "Update"
            && e.api_version == api_version
            && e.subresource.as_deref() == subresource
    };
    for e in &mut entries {
        for p in &removed {
            e.set.remove_subtree(p);
        }
        if !mine(e) {
            for p in &changed_paths {
                e.set.remove(p);
            }
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| mine(e)) {
            Some(e) => {
                e.set.union(&changed);
                e.time = Some(now.into());
            }
            None => {
                let mut e = Entry::new(manager, "Update", &api_version, now);
                e.subresource = subresource.map(str::to_string);
                e.set = changed;
                entries.push(e);
            }
        }
    }
    set_managed_fields(new, entries);
}
