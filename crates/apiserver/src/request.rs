//! Parsing a URL path and method into what the request is about (kube-apiserver's
//! RequestInfo): group, version, namespace, resource, name, subresource and verb.

use crate::status::{ApiError, ApiResult};
use capstan_api::resources::{self, Resource};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

/// A resource request, resolved against the registry.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

/// Query parameters that mean "watch".
pub fn is_true(v: &str) -> bool {
    matches!(v, "true" | "True" | "TRUE" | "1")
}

/// Resolve `/api/v1/...` or `/apis/<g>/<v>/...`. Returns Ok(None) for paths that are not resource
/// paths (discovery and the like are handled elsewhere).
pub fn parse(
    method: &http::Method,
    path: &str,
    watch_param: bool,
) -> ApiResult<Option<ResourceRequest>> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(None),
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let mut watch = watch_param;
    // Deprecated /watch/ path prefix.
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }
    // namespaces/{ns}/{resource}... unless the request is about namespaces themselves.
    let mut namespace = None;
    if rest.len() >= 3 && rest[0] == "namespaces" {
        namespace = Some(rest[1].to_string());
        rest.drain(0..2);
    }
    let plural = rest[0];
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 && subresource.as_deref() != Some("proxy") {
        return Err(ApiError::no_route());
    }
    let Some(resource) = resources::find(group, version, plural) else {
        return Err(ApiError::no_route());
    };
    if let Some(sub) = &subresource {
        if !resource.has_subresource(sub) {
            return Err(ApiError::no_route());
        }
    }
    if !resource.namespaced && namespace.is_some() {
        return Err(ApiError::no_route());
    }
    // A namespace in the URL for a namespaces request: /api/v1/namespaces/{name}/status is parsed above
    // as namespace=name, resource=status. Undo that.
    let verb = match *method {
        http::Method::GET | http::Method::HEAD => {
            if watch {
                Verb::Watch
            } else if name.is_some() {
                Verb::Get
            } else {
                Verb::List
            }
        }
        http::Method::POST => Verb::Create,
        http::Method::PUT => Verb::Update,
        http::Method::PATCH => Verb::Patch,
        http::Method::DELETE => {
            if name.is_some() {
                Verb::Delete
            } else {
                Verb::DeleteCollection
            }
        }
        _ => return Err(ApiError::method_not_allowed("method not allowed")),
    };
    Ok(Some(ResourceRequest {
        resource,
        namespace,
        name,
        subresource,
        verb,
    }))
}

/// Re-parse for the namespaces resource, whose own name sits where other resources' namespace does.
pub fn parse_request(
    method: &http::Method,
    path: &str,
    watch_param: bool,
) -> ApiResult<Option<ResourceRequest>> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // /api/v1/namespaces/{name}/{status|finalize}
    if let ["api", "v1", "namespaces", name, sub] = segs.as_slice() {
        if matches!(*sub, "status" | "finalize") {
            let resource = resources::find("", "v1", "namespaces").expect("namespaces registered");
            let verb = match *method {
                http::Method::GET => Verb::Get,
                http::Method::PUT => Verb::Update,
                http::Method::PATCH => Verb::Patch,
                _ => return Err(ApiError::method_not_allowed("method not allowed")),
            };
            return Ok(Some(ResourceRequest {
                resource,
                namespace: None,
                name: Some(name.to_string()),
                subresource: Some(sub.to_string()),
                verb,
            }));
        }
    }
    parse(method, path, watch_param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn parses_paths() {
        type Case<'a> = (
            Method,
            &'a str,
            bool,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Verb,
        );
        let cases: &[Case] = &[
            (
                Method::GET,
                "/api/v1/pods",
                false,
                "pods",
                None,
                None,
                None,
                Verb::List,
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods",
                true,
                "pods",
                Some("default"),
                None,
                None,
                Verb::Watch,
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/web",
                false,
                "pods",
                Some("default"),
                Some("web"),
                None,
                Verb::Get,
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/default/pods/web/status",
                false,
                "pods",
                Some("default"),
                Some("web"),
                Some("status"),
                Verb::Update,
            ),
            (
                Method::GET,
                "/api/v1/namespaces/kube-system",
                false,
                "namespaces",
                None,
                Some("kube-system"),
                None,
                Verb::Get,
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                false,
                "namespaces",
                None,
                None,
                None,
                Verb::List,
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/x/finalize",
                false,
                "namespaces",
                None,
                Some("x"),
                Some("finalize"),
                Verb::Update,
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/d/deployments/web/scale",
                false,
                "deployments",
                Some("d"),
                Some("web"),
                Some("scale"),
                Verb::Patch,
            ),
            (
                Method::DELETE,
                "/apis/apps/v1/namespaces/d/deployments",
                false,
                "deployments",
                Some("d"),
                None,
                None,
                Verb::DeleteCollection,
            ),
            (
                Method::GET,
                "/api/v1/nodes/n1",
                false,
                "nodes",
                None,
                Some("n1"),
                None,
                Verb::Get,
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/default/pods",
                false,
                "pods",
                Some("default"),
                None,
                None,
                Verb::Watch,
            ),
        ];
        for (m, p, w, plural, ns, name, sub, verb) in cases {
            let r = parse_request(m, p, *w)
                .unwrap()
                .unwrap_or_else(|| panic!("{p}"));
            assert_eq!(r.resource.plural, *plural, "{p}");
            assert_eq!(r.namespace.as_deref(), *ns, "{p}");
            assert_eq!(r.name.as_deref(), *name, "{p}");
            assert_eq!(r.subresource.as_deref(), *sub, "{p}");
            assert_eq!(&r.verb, verb, "{p}");
        }
    }

    #[test]
    fn rejects_unknown() {
        for p in [
            "/api/v1/foos",
            "/apis/apps/v1/namespaces/d/deployments/x/bogus",
            "/api/v1/namespaces/d/nodes",
        ] {
            assert!(parse_request(&Method::GET, p, false).is_err(), "{p}");
        }
        assert!(parse_request(&Method::GET, "/version", false)
            .unwrap()
            .is_none());
    }
}
