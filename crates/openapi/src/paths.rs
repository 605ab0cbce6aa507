//! OpenAPI v3 `paths` of one group-version: collection, item, all-namespaces and subresource
//! paths for every resource, with kube's operation ids, actions, GVK extensions and parameters.

use crate::kinds::{self, Common};
use crate::params;
use crate::subresources::{self, Style, Subresource};
use capstan_api::resources::Resource;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

/// A `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The media types kube answers objects in.
fn content(schema: &Value) -> Value {
    json!({
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
        "application/vnd.kubernetes.protobuf": {"schema": schema},
    })
}

fn list_content(schema: &Value) -> Value {
    let mut c = content(schema);
    if let Some(m) = c.as_object_mut() {
        m.insert(
            "application/json;stream=watch".into(),
            json!({"schema": schema}),
        );
        m.insert(
            "application/vnd.kubernetes.protobuf;stream=watch".into(),
            json!({"schema": schema}),
        );
    }
    c
}

fn responses(codes: &[(&str, &str)], schema: &Value) -> Value {
    let mut m = Map::new();
    for (code, desc) in codes {
        m.insert(
            (*code).into(),
            json!({"description": desc, "content": content(schema)}),
        );
    }
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

/// "Core" for the core group, "RbacAuthorization" for rbac.authorization.k8s.io, "Apps" for apps.
pub fn group_prefix(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// kube's tag for a group-version: "core_v1", "apps_v1", "rbacAuthorization_v1".
fn tag(group: &str, version: &str) -> String {
    let p = group_prefix(group);
    let mut c = p.chars();
    let lower: String = c
        .next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default();
    format!("{lower}_{version}")
}

/// (definition name, group, version, kind): a schema to mark with `x-kubernetes-group-version-kind`.
pub type Mark = (String, String, String, String);

/// The finished paths of one group-version.
pub struct Built {
    /// The `paths` object.
    pub paths: Map<String, Value>,
    /// Schemas to mark with their GVKs.
    pub marks: Vec<Mark>,
    /// (definition name of the item kind, kind) of each `<Kind>List` schema to synthesize.
    pub lists: Vec<(String, &'static str)>,
    /// The meta types registered.
    pub common: Common,
}

/// Builds the paths of one group-version, registering the schemas they reference.
pub struct PathsBuilder<'g> {
    gen: &'g mut SchemaGenerator,
    common: Common,
    group: &'static str,
    version: &'static str,
    paths: Map<String, Value>,
    /// (definition name, group, version, kind) to mark with `x-kubernetes-group-version-kind`.
    marks: Vec<Mark>,
    lists: Vec<(String, &'static str)>,
}

/// What an operation is about.
struct Op<'a> {
    method: &'a str,
    action: &'a str,
    id: String,
    description: String,
    gvk: (&'a str, &'a str, &'a str),
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

impl<'g> PathsBuilder<'g> {
    /// Start the paths of `group/version`.
    pub fn new(gen: &'g mut SchemaGenerator, group: &'static str, version: &'static str) -> Self {
        let common = kinds::add_common(gen);
        PathsBuilder {
            gen,
            common,
            group,
            version,
            paths: Map::new(),
            marks: Vec::new(),
            lists: Vec::new(),
        }
    }

    fn root(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    fn prefix(&self) -> String {
        format!("{}{}", group_prefix(self.group), capitalize(self.version))
    }

    fn add_op(&mut self, path: &str, path_params: &[Value], op: Op<'_>) {
        let entry = self
            .paths
            .entry(path.to_string())
            .or_insert_with(|| json!({"parameters": path_params}));
        let mut o = Map::new();
        o.insert("tags".into(), json!([tag(self.group, self.version)]));
        o.insert("description".into(), op.description.into());
        o.insert("operationId".into(), op.id.into());
        if !op.params.is_empty() {
            o.insert("parameters".into(), Value::Array(op.params));
        }
        if let Some(b) = op.body {
            o.insert("requestBody".into(), b);
        }
        o.insert("responses".into(), op.responses);
        o.insert("x-kubernetes-action".into(), op.action.into());
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": op.gvk.0, "version": op.gvk.1, "kind": op.gvk.2}),
        );
        if let Some(m) = entry.as_object_mut() {
            m.insert(op.method.into(), Value::Object(o));
        }
    }

    fn mark(&mut self, name: &str, group: &str, version: &str, kind: &str) {
        let m = (
            name.to_string(),
            group.to_string(),
            version.to_string(),
            kind.to_string(),
        );
        if !self.marks.contains(&m) {
            self.marks.push(m);
        }
    }

    fn body(name: &str) -> Value {
        json!({"content": {"*/*": {"schema": schema_ref(name)}}, "required": true})
    }

    fn patch_body(&self) -> Value {
        let s = json!({"schema": schema_ref(&self.common.patch)});
        json!({"content": {
            "application/apply-patch+yaml": s,
            "application/json-patch+json": s,
            "application/merge-patch+json": s,
            "application/strategic-merge-patch+json": s,
        }, "required": true})
    }

    /// Add every path of resource `r` (which must be at this builder's group-version).
    pub fn resource(&mut self, r: &'static Resource) {
        let Some(schema) = kinds::add_kind(self.gen, r.group, r.version, r.kind) else {
            return;
        };
        self.mark(&schema, r.group, r.version, r.kind);
        let has = |v: &str| r.verbs.contains(&v);
        let p = self.prefix();
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind;
        let gvk = (r.group, r.version, r.kind);
        let kref = schema_ref(&schema);
        let mut base_params = Vec::new();
        let coll = if r.namespaced {
            base_params.push(params::path(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
            format!("{}/namespaces/{{namespace}}/{}", self.root(), r.plural)
        } else {
            format!("{}/{}", self.root(), r.plural)
        };
        let mut coll_params = base_params.clone();
        coll_params.push(params::pretty());
        let list_name = format!("{schema}List");
        let list_kind = format!("{kind}List");
        if has("list") {
            self.lists.push((schema.clone(), kind));
            self.mark(&list_name, r.group, r.version, &list_kind);
            let lref = schema_ref(&list_name);
            self.add_op(&coll, &coll_params, Op {
                method: "get",
                action: "list",
                id: format!("list{p}{ns}{kind}"),
                description: format!("list or watch objects of kind {kind}"),
                gvk,
                params: params::list(),
                body: None,
                responses: json!({"200": {"description": "OK", "content": list_content(&lref)}, "401": {"description": "Unauthorized"}}),
            });
            if r.namespaced {
                let all = format!("{}/{}", self.root(), r.plural);
                self.add_op(&all, &[params::pretty()], Op {
                    method: "get",
                    action: "list",
                    id: format!("list{p}{kind}ForAllNamespaces"),
                    description: format!("list or watch objects of kind {kind}"),
                    gvk,
                    params: params::list(),
                    body: None,
                    responses: json!({"200": {"description": "OK", "content": list_content(&lref)}, "401": {"description": "Unauthorized"}}),
                });
            }
        }
        if has("create") {
            self.add_op(
                &coll,
                &coll_params,
                Op {
                    method: "post",
                    action: "post",
                    id: format!("create{p}{ns}{kind}"),
                    description: format!("create a {kind}"),
                    gvk,
                    params: params::write(),
                    body: Some(Self::body(&schema)),
                    responses: responses(
                        &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                        &kref,
                    ),
                },
            );
        }
        if has("deletecollection") {
            let status = schema_ref(&self.common.status);
            let body = Self::body(&self.common.delete_options);
            self.add_op(
                &coll,
                &coll_params,
                Op {
                    method: "delete",
                    action: "deletecollection",
                    id: format!("delete{p}Collection{ns}{kind}"),
                    description: format!("delete collection of {kind}"),
                    gvk,
                    params: params::delete_collection(),
                    body: Some(body),
                    responses: responses(&[("200", "OK")], &status),
                },
            );
        }
        let item = format!("{coll}/{{name}}");
        let mut item_params = vec![params::path("name", &format!("name of the {kind}"))];
        item_params.extend(base_params.iter().cloned());
        item_params.push(params::pretty());
        if has("get") {
            self.add_op(
                &item,
                &item_params,
                Op {
                    method: "get",
                    action: "get",
                    id: format!("read{p}{ns}{kind}"),
                    description: format!("read the specified {kind}"),
                    gvk,
                    params: Vec::new(),
                    body: None,
                    responses: responses(&[("200", "OK")], &kref),
                },
            );
        }
        if has("update") {
            self.add_op(
                &item,
                &item_params,
                Op {
                    method: "put",
                    action: "put",
                    id: format!("replace{p}{ns}{kind}"),
                    description: format!("replace the specified {kind}"),
                    gvk,
                    params: params::write(),
                    body: Some(Self::body(&schema)),
                    responses: responses(&[("200", "OK"), ("201", "Created")], &kref),
                },
            );
        }
        if has("patch") {
            let body = self.patch_body();
            self.add_op(
                &item,
                &item_params,
                Op {
                    method: "patch",
                    action: "patch",
                    id: format!("patch{p}{ns}{kind}"),
                    description: format!("partially update the specified {kind}"),
                    gvk,
                    params: params::patch(),
                    body: Some(body),
                    responses: responses(&[("200", "OK"), ("201", "Created")], &kref),
                },
            );
        }
        if has("delete") {
            let body = Self::body(&self.common.delete_options);
            self.add_op(
                &item,
                &item_params,
                Op {
                    method: "delete",
                    action: "delete",
                    id: format!("delete{p}{ns}{kind}"),
                    description: format!("delete a {kind}"),
                    gvk,
                    params: params::delete(),
                    body: Some(body),
                    responses: responses(&[("200", "OK"), ("202", "Accepted")], &kref),
                },
            );
        }
        if has("watch") {
            self.watch_paths(r, &base_params);
        }
        for s in subresources::of(r) {
            self.subresource(r, &s, &item, &item_params);
        }
    }

    /// The deprecated-but-served `/watch/` paths: one object, a collection, all namespaces.
    fn watch_paths(&mut self, r: &Resource, base_params: &[Value]) {
        let p = self.prefix();
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let ns_seg = if r.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let kind = r.kind;
        let gvk = (r.group, r.version, r.kind);
        let ev = schema_ref(&self.common.watch_event);
        let ok = json!({"200": {"description": "OK", "content": list_content(&ev)}, "401": {"description": "Unauthorized"}});
        let coll = format!("{}/watch{ns_seg}/{}", self.root(), r.plural);
        let mut coll_params = base_params.to_vec();
        coll_params.push(params::pretty());
        let mut item_params = vec![params::path("name", &format!("name of the {kind}"))];
        item_params.extend(coll_params.iter().cloned());
        let mut paths = vec![
            (coll.clone(), coll_params, "watchlist", format!("watch{p}{ns}{kind}List"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.")),
            (format!("{coll}/{{name}}"), item_params, "watch", format!("watch{p}{ns}{kind}"), format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.")),
        ];
        if r.namespaced {
            paths.push((format!("{}/watch/{}", self.root(), r.plural), vec![params::pretty()], "watchlist", format!("watch{p}{kind}ListForAllNamespaces"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.")));
        }
        for (path, path_params, action, id, description) in paths {
            self.add_op(
                &path,
                &path_params,
                Op {
                    method: "get",
                    action,
                    id,
                    description,
                    gvk,
                    params: params::list(),
                    body: None,
                    responses: ok.clone(),
                },
            );
        }
    }

    fn subresource(&mut self, r: &Resource, s: &Subresource, item: &str, item_params: &[Value]) {
        let path = format!("{item}/{}", s.name);
        let p = self.prefix();
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind;
        let suffix = capitalize(s.name);
        let gvk = (s.group, s.version, s.kind);
        let mut path_params = item_params.to_vec();
        if let Some(n) = path_params.first_mut() {
            n["description"] = format!("name of the {}", s.kind).into();
        }
        match s.style {
            Style::ReadWrite | Style::Create | Style::Replace => {
                let Some(schema) = kinds::add_kind(self.gen, s.group, s.version, s.kind) else {
                    return;
                };
                self.mark(&schema, s.group, s.version, s.kind);
                let sref = schema_ref(&schema);
                let what = format!("{} of the specified {kind}", s.name);
                if s.style == Style::ReadWrite {
                    self.add_op(
                        &path,
                        &path_params,
                        Op {
                            method: "get",
                            action: "get",
                            id: format!("read{p}{ns}{kind}{suffix}"),
                            description: format!("read {what}"),
                            gvk,
                            params: Vec::new(),
                            body: None,
                            responses: responses(&[("200", "OK")], &sref),
                        },
                    );
                    let body = self.patch_body();
                    self.add_op(
                        &path,
                        &path_params,
                        Op {
                            method: "patch",
                            action: "patch",
                            id: format!("patch{p}{ns}{kind}{suffix}"),
                            description: format!("partially update {what}"),
                            gvk,
                            params: params::patch(),
                            body: Some(body),
                            responses: responses(&[("200", "OK"), ("201", "Created")], &sref),
                        },
                    );
                }
                if matches!(s.style, Style::ReadWrite | Style::Replace) {
                    self.add_op(
                        &path,
                        &path_params,
                        Op {
                            method: "put",
                            action: "put",
                            id: format!("replace{p}{ns}{kind}{suffix}"),
                            description: format!("replace {what}"),
                            gvk,
                            params: params::write(),
                            body: Some(Self::body(&schema)),
                            responses: responses(&[("200", "OK"), ("201", "Created")], &sref),
                        },
                    );
                }
                if s.style == Style::Create {
                    self.add_op(
                        &path,
                        &path_params,
                        Op {
                            method: "post",
                            action: "post",
                            id: format!("create{p}{ns}{kind}{suffix}"),
                            description: format!("create {} of a {kind}", s.name),
                            gvk,
                            params: params::write(),
                            body: Some(Self::body(&schema)),
                            responses: responses(
                                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                                &sref,
                            ),
                        },
                    );
                }
            }
            Style::Log => {
                self.add_op(&path, &path_params, Op {
                    method: "get",
                    action: "get",
                    id: format!("read{p}{ns}{kind}{suffix}"),
                    description: format!("read log of the specified {kind}"),
                    gvk,
                    params: params::log(),
                    body: None,
                    responses: json!({"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}, "401": {"description": "Unauthorized"}}),
                });
            }
            Style::Connect | Style::Proxy => {
                let (methods, qp): (&[&str], Vec<Value>) = match (s.style, s.name) {
                    (Style::Proxy, _) => (
                        &["get", "put", "post", "patch", "delete", "head", "options"],
                        vec![
                            json!({"name": "path", "in": "query", "description": "Path is the URL path to use for the current proxy request.", "schema": {"type": "string", "uniqueItems": true}}),
                        ],
                    ),
                    (_, "exec") => (&["get", "post"], params::exec(true)),
                    (_, "attach") => (&["get", "post"], params::exec(false)),
                    _ => (&["get", "post"], params::portforward()),
                };
                for m in methods {
                    self.add_op(&path, &path_params, Op {
                        method: m,
                        action: "connect",
                        id: format!("connect{p}{}{ns}{kind}{suffix}", capitalize(m)),
                        description: format!("connect {} requests to {} of {kind}", m.to_uppercase(), s.name),
                        gvk,
                        params: qp.clone(),
                        body: None,
                        responses: json!({"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}, "401": {"description": "Unauthorized"}}),
                    });
                }
            }
        }
    }

    /// `GET /api/v1/`, `GET /apis/G/V/`: the APIResourceList of this group-version.
    pub fn resource_list(&mut self) {
        let Some(name) = kinds::add_kind(self.gen, "", "v1", "APIResourceList") else {
            return;
        };
        let path = format!("{}/", self.root());
        let id = format!("get{}APIResources", self.prefix());
        self.add_op(
            &path,
            &[],
            Op {
                method: "get",
                action: "get",
                id,
                description: "get available resources".into(),
                gvk: ("", "v1", "APIResourceList"),
                params: Vec::new(),
                body: None,
                responses: responses(&[("200", "OK")], &schema_ref(&name)),
            },
        );
    }

    /// Finish: the paths object and what the schemas still need.
    pub fn finish(self) -> Built {
        Built {
            paths: self.paths,
            marks: self.marks,
            lists: self.lists,
            common: self.common,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_kube() {
        let cases = [
            ("", "v1", "CoreV1", "core_v1"),
            ("apps", "v1", "AppsV1", "apps_v1"),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "RbacAuthorizationV1",
                "rbacAuthorization_v1",
            ),
            ("scheduling.k8s.io", "v1", "SchedulingV1", "scheduling_v1"),
            ("autoscaling", "v2", "AutoscalingV2", "autoscaling_v2"),
        ];
        for (g, v, want, want_tag) in cases {
            assert_eq!(format!("{}{}", group_prefix(g), capitalize(v)), want);
            assert_eq!(tag(g, v), want_tag);
        }
    }
}
