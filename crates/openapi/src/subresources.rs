//! What each subresource name means: the kind it answers with (and that kind's group/version
//! when it differs from the parent's) and the verbs kube-apiserver serves on it.

use capstan_api::resources::Resource;

/// One subresource of one resource, resolved against its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Subresource name as in URLs: "status", "scale", "log".
    pub name: &'static str,
    /// Group of the kind it answers with (the parent's unless noted).
    pub group: &'static str,
    /// Version of the kind it answers with.
    pub version: &'static str,
    /// Kind it answers with.
    pub kind: &'static str,
    /// Verbs kube-apiserver lists for it in discovery.
    pub verbs: &'static [&'static str],
    /// How it is reached: ordinary REST verbs, a create-only action, or a streaming connect.
    pub style: Style,
}

/// How a subresource is served (decides the OpenAPI operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// get / put / patch of an object (status, scale, ephemeralcontainers).
    ReadWrite,
    /// POST creating a request object (binding, eviction, token).
    Create,
    /// PUT only (namespaces/finalize).
    Replace,
    /// GET returning plain text (pods/log).
    Log,
    /// Streaming connect with GET and POST (exec, attach, portforward).
    Connect,
    /// Connect with every HTTP method (proxy).
    Proxy,
}

const RW: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const CONNECT: &[&str] = &["create", "get"];
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];

/// Resolve subresource `name` of `parent`; `None` for names this table does not know.
pub fn resolve(parent: &Resource, name: &'static str) -> Option<Subresource> {
    let same = |kind: &'static str, verbs: &'static [&'static str], style: Style| Subresource {
        name,
        group: parent.group,
        version: parent.version,
        kind,
        verbs,
        style,
    };
    let other = |group: &'static str,
                 version: &'static str,
                 kind: &'static str,
                 verbs: &'static [&'static str],
                 style: Style| {
        Subresource {
            name,
            group,
            version,
            kind,
            verbs,
            style,
        }
    };
    Some(match name {
        "status" | "ephemeralcontainers" => same(parent.kind, RW, Style::ReadWrite),
        "scale" => other("autoscaling", "v1", "Scale", RW, Style::ReadWrite),
        "binding" => other("", "v1", "Binding", CREATE, Style::Create),
        "eviction" => other("policy", "v1", "Eviction", CREATE, Style::Create),
        "token" => other(
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            CREATE,
            Style::Create,
        ),
        "finalize" => same(parent.kind, &["update"], Style::Replace),
        "log" => same(parent.kind, &["get"], Style::Log),
        "exec" => same("PodExecOptions", CONNECT, Style::Connect),
        "attach" => same("PodAttachOptions", CONNECT, Style::Connect),
        "portforward" => same("PodPortForwardOptions", CONNECT, Style::Connect),
        "proxy" => {
            let kind = match parent.kind {
                "Pod" => "PodProxyOptions",
                "Service" => "ServiceProxyOptions",
                "Node" => "NodeProxyOptions",
                _ => return None,
            };
            same(kind, PROXY, Style::Proxy)
        }
        _ => return None,
    })
}

/// Every subresource of `parent` this table knows, in the registry's order.
pub fn of(parent: &Resource) -> impl Iterator<Item = Subresource> + '_ {
    parent
        .subresources
        .iter()
        .filter_map(|s| resolve(parent, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_api::resources::{find, RESOURCES};

    #[test]
    fn resolves_kube_subresources() {
        // (group, plural, subresource, want group, want version, want kind, want verbs)
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            ("", "pods", "status", "", "v1", "Pod", RW),
            ("", "pods", "eviction", "policy", "v1", "Eviction", CREATE),
            ("", "pods", "binding", "", "v1", "Binding", CREATE),
            ("", "pods", "log", "", "v1", "Pod", &["get"]),
            ("", "pods", "exec", "", "v1", "PodExecOptions", CONNECT),
            (
                "",
                "serviceaccounts",
                "token",
                "authentication.k8s.io",
                "v1",
                "TokenRequest",
                CREATE,
            ),
            (
                "",
                "namespaces",
                "finalize",
                "",
                "v1",
                "Namespace",
                &["update"],
            ),
            (
                "",
                "services",
                "proxy",
                "",
                "v1",
                "ServiceProxyOptions",
                PROXY,
            ),
            (
                "apps",
                "deployments",
                "scale",
                "autoscaling",
                "v1",
                "Scale",
                RW,
            ),
        ];
        for (g, plural, sub, wg, wv, wk, verbs) in cases {
            let parent = find(g, "v1", plural).unwrap();
            let s = resolve(parent, sub).unwrap();
            assert_eq!(
                (s.group, s.version, s.kind, s.verbs),
                (*wg, *wv, *wk, *verbs),
                "{plural}/{sub}"
            );
        }
    }

    #[test]
    fn every_registered_subresource_is_known() {
        for r in RESOURCES {
            for s in r.subresources {
                assert!(resolve(r, s).is_some(), "{}/{}", r.plural, s);
            }
        }
    }
}
