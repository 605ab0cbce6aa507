//! Discovery documents: the legacy `APIVersions` / `APIGroupList` / `APIGroup` /
//! `APIResourceList` forms and the aggregated `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.

use crate::{metrics, subresources};
use base64::Engine as _;
use capstan_api::resources::{self, Resource};
use serde_json::{json, Map, Value};

/// Content-Type of an aggregated discovery reply (and the media type the Accept header names).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Content-Type of an aggregated discovery reply in the older `v2beta1` form, which kubectl
/// 1.26–1.29 ask for (kube 1.32 still serves it; the shape is the same as v2).
pub const AGGREGATED_V2BETA1_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// What discovery lists besides the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also list `metrics.k8s.io/v1beta1` (nodes, pods), for `kubectl top`.
    pub with_metrics: bool,
}

/// One resource as discovery sees it: a registry entry or an extra (metrics) entry.
fn served(opts: Options) -> Vec<&'static Resource> {
    let mut out: Vec<&'static Resource> = resources::RESOURCES.iter().collect();
    if opts.with_metrics {
        out.extend(metrics::RESOURCES.iter());
    }
    out
}

/// Groups (non-core) in discovery order with their versions, preferred first.
fn group_versions(opts: Options) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in served(opts) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `GET /api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_value(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": gv_string(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": {"groupVersion": gv_string(group, versions[0]), "version": versions[0]},
    })
}

/// `GET /apis`: every non-core group with its preferred version.
pub fn api_group_list(opts: Options) -> Value {
    let groups: Vec<Value> = group_versions(opts)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_value(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`; `None` for unknown groups (and the core group, which lives at /api).
pub fn api_group(group: &str, opts: Options) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let (g, vs) = group_versions(opts)
        .into_iter()
        .find(|(g, _)| *g == group)?;
    let mut v = group_value(g, &vs);
    let obj = v.as_object_mut()?;
    let mut out = Map::new();
    out.insert("kind".into(), "APIGroup".into());
    out.insert("apiVersion".into(), "v1".into());
    out.append(obj);
    Some(Value::Object(out))
}

/// kube's storageVersionHash: base64 of 8 bytes derived from group/version/kind (kube takes
/// the first 8 bytes of a SHA-256; clients only compare it for equality).
pub fn storage_version_hash(r: &Resource) -> String {
    let storage = r.storage_resource();
    let input = format!("{}/{}/{}", storage.group, storage.version, storage.kind);
    let h = crate::hash::fnv1a_64(input.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())
}

fn strings(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::String((*s).to_string())).collect())
}

fn legacy_resource(r: &Resource) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), r.plural.into());
    m.insert("singularName".into(), r.singular.into());
    m.insert("namespaced".into(), r.namespaced.into());
    m.insert("kind".into(), r.kind.into());
    m.insert("verbs".into(), strings(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), strings(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), strings(r.categories));
    }
    if r.is_stored() && r.group != metrics::GROUP {
        m.insert("storageVersionHash".into(), storage_version_hash(r).into());
    }
    Value::Object(m)
}

/// `GET /api/v1`, `GET /apis/<group>/<version>`: resources and subresources as separate entries.
pub fn api_resource_list(group: &str, version: &str, opts: Options) -> Option<Value> {
    let rs: Vec<&Resource> = served(opts)
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in rs {
        out.push(legacy_resource(r));
        for s in subresources::of(r) {
            let mut m = Map::new();
            m.insert("name".into(), format!("{}/{}", r.plural, s.name).into());
            m.insert("singularName".into(), "".into());
            m.insert("namespaced".into(), r.namespaced.into());
            if (s.group, s.version) != (r.group, r.version) {
                m.insert("group".into(), s.group.into());
                m.insert("version".into(), s.version.into());
            }
            m.insert("kind".into(), s.kind.into());
            m.insert("verbs".into(), strings(s.verbs));
            out.push(Value::Object(m));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv_string(group, version),
        "resources": out,
    }))
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), r.plural.into());
    m.insert(
        "responseKind".into(),
        json!({"group": r.group, "version": r.version, "kind": r.kind}),
    );
    m.insert(
        "scope".into(),
        if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }
        .into(),
    );
    m.insert("singularResource".into(), r.singular.into());
    m.insert("verbs".into(), strings(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), strings(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), strings(r.categories));
    }
    let subs: Vec<Value> = subresources::of(r)
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": strings(s.verbs),
            })
        })
        .collect();
    if !subs.is_empty() {
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

/// Aggregated discovery (`apidiscovery.k8s.io/<api_version>` `APIGroupDiscoveryList`, `v2` or
/// `v2beta1`) for `/api` (`core`) or `/apis`.
pub fn aggregated_discovery(core: bool, opts: Options, api_version: &str) -> Value {
    let all = served(opts);
    let items: Vec<Value> = group_versions(opts)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = all
                        .iter()
                        .filter(|r| r.group == g && r.version == *v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = Map::new();
            if !g.is_empty() {
                meta.insert("name".into(), g.into());
            }
            meta.insert("creationTimestamp".into(), Value::Null);
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{api_version}"),
        "metadata": {},
        "items": items,
    })
}
