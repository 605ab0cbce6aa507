//! The registry of every resource Capstan serves: group, version, kind, plural name,
//! scope, short names, categories, subresources and the etcd key prefix kube-apiserver uses.
//!
//! Everything that needs to know "which resources exist" (discovery, OpenAPI, routing,
//! tables, storage keys) reads this one table.

/// One served resource at one group/version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, as in URLs: "pods".
    pub plural: &'static str,
    /// Lower-case singular: "pod".
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served, e.g. "status", "scale", "binding", "eviction".
    pub subresources: &'static [&'static str],
    /// Storage prefix under /registry, as kube-apiserver lays keys out in etcd
    /// (e.g. "services/specs", "minions", "controllers").
    pub storage: &'static str,
    /// Verbs; `VERBS_ALL` for ordinary resources, `VERBS_CREATE` for review-style ones.
    pub verbs: &'static [&'static str],
    /// Whether this version is the storage/preferred version of its group+resource.
    /// Objects are stored at this version; other versions are converted.
    pub storage_version: bool,
}

pub const VERBS_ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
pub const VERBS_CREATE: &[&str] = &["create"];

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

macro_rules! r {
    ($g:expr, $v:expr, $k:expr, $p:expr, $s:expr, $ns:expr, $short:expr, $cat:expr, $sub:expr, $st:expr) => {
        Resource {
            group: $g,
            version: $v,
            kind: $k,
            plural: $p,
            singular: $s,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            subresources: $sub,
            storage: $st,
            verbs: VERBS_ALL,
            storage_version: true,
        }
    };
}

/// Every resource Capstan serves, in discovery order.
#[rustfmt::skip]
pub static RESOURCES: &[Resource] = &[
    // core/v1
    r!("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], NONE, &["status", "finalize"], "namespaces"),
    r!("", "v1", "Pod", "pods", "pod", true, &["po"], ALL, &[ "status", "binding", "eviction", "log", "exec", "attach", "portforward", "ephemeralcontainers" ], "pods"),
    r!("", "v1", "Service", "services", "service", true, &["svc"], ALL, &["status", "proxy"], "services/specs"),
    r!("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], NONE, NONE, "services/endpoints"),
    r!("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], NONE, NONE, "configmaps"),
    r!("", "v1", "Secret", "secrets", "secret", true, NONE, NONE, NONE, "secrets"),
    r!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], NONE, &["token"], "serviceaccounts"),
    r!("", "v1", "Node", "nodes", "node", false, &["no"], NONE, &["status", "proxy"], "minions"),
    r!("", "v1", "Event", "events", "event", true, &["ev"], NONE, NONE, "events"),
    r!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true, &["rc"], ALL, &["status", "scale"], "controllers"),
    r!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, &["quota"], NONE, &["status"], "resourcequotas"),
    r!("", "v1", "LimitRange", "limitranges", "limitrange", true, &["limits"], NONE, NONE, "limitranges"),
    r!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, &["pvc"], NONE, &["status"], "persistentvolumeclaims"),
    r!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"], NONE, &["status"], "persistentvolumes"),
    // apps/v1
    r!("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], ALL, &["status", "scale"], "deployments"),
    r!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], ALL, &["status", "scale"], "replicasets"),
    r!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, &["ds"], ALL, &["status"], "daemonsets"),
    r!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, &["sts"], ALL, &["status", "scale"], "statefulsets"),
    r!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true, NONE, NONE, NONE, "controllerrevisions"),
    // batch/v1
    r!("batch", "v1", "Job", "jobs", "job", true, NONE, ALL, &["status"], "jobs"),
    r!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, &["cj"], ALL, &["status"], "cronjobs"),
    // autoscaling: v2 is the storage version; v1 is served by conversion.
    r!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, &["hpa"], ALL, &["status"], "horizontalpodautoscalers"),
    Resource {
        storage_version: false,
        ..r!("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, &["hpa"], ALL, &["status"], "horizontalpodautoscalers")
    },
    // policy/v1
    r!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, &["pdb"], NONE, &["status"], "poddisruptionbudgets"),
    // scheduling.k8s.io/v1
    r!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false, &["pc"], NONE, NONE, "priorityclasses"),
    // node.k8s.io/v1
    r!("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", false, NONE, NONE, NONE, "runtimeclasses"),
    // coordination.k8s.io/v1
    r!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, NONE, NONE, NONE, "leases"),
    // discovery.k8s.io/v1
    r!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, NONE, NONE, NONE, "endpointslices"),
    // events.k8s.io/v1: the same objects as core/v1 events, converted.
    Resource {
        storage_version: false,
        ..r!("events.k8s.io", "v1", "Event", "events", "event", true, &["ev"], NONE, NONE, "events")
    },
    // rbac.authorization.k8s.io/v1 (stored; enforced later)
    r!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, NONE, NONE, NONE, "roles"),
    r!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, NONE, NONE, NONE, "rolebindings"),
    r!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, NONE, NONE, NONE, "clusterroles"),
    r!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, NONE, NONE, NONE, "clusterrolebindings"),
    // networking.k8s.io/v1 (stored)
    r!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, &["ing"], NONE, &["status"], "ingress"),
    r!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, &["netpol"], NONE, NONE, "networkpolicies"),
    r!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false, NONE, NONE, NONE, "ingressclasses"),
    // Review-style resources: create only, never stored.
    Resource {
        verbs: VERBS_CREATE,
        ..r!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false, NONE, NONE, NONE, "")
    },
    Resource {
        verbs: VERBS_CREATE,
        ..r!("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", false, NONE, NONE, NONE, "")
    },
    Resource {
        verbs: VERBS_CREATE,
        ..r!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, NONE, NONE, NONE, "")
    },
];

impl Resource {
    /// "v1" for core, "apps/v1" otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects of this resource are persisted (review kinds are not).
    pub fn is_stored(&self) -> bool {
        !self.storage.is_empty()
    }

    /// The etcd key of one object: /registry/<storage>/<ns>/<name> or /registry/<storage>/<name>.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }

    /// The key prefix for a list: all namespaces, or one namespace. Always ends in '/'.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{}/", self.storage, ns),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// The storage-version resource this resource is served from (itself when it is the storage version).
    pub fn storage_resource(&self) -> &'static Resource {
        RESOURCES
            .iter()
            .find(|r| {
                r.storage_version
                    && r.storage == self.storage
                    && r.plural == self.plural
                    && r.is_stored()
            })
            .or_else(|| {
                RESOURCES.iter().find(|r| {
                    r.plural == self.plural && r.group == self.group && r.version == self.version
                })
            })
            .expect("every resource is in RESOURCES")
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// Look a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Look a resource up by apiVersion ("v1", "apps/v1") and kind.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Split "apps/v1" into ("apps", "v1") and "v1" into ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The distinct groups served, in discovery order, each with its versions (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// Resources served at one group/version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kube_apiserver_layout() {
        let cases = [
            (
                "",
                "v1",
                "pods",
                Some("default"),
                "web",
                "/registry/pods/default/web",
            ),
            (
                "",
                "v1",
                "services",
                Some("default"),
                "kubernetes",
                "/registry/services/specs/default/kubernetes",
            ),
            ("", "v1", "nodes", None, "n1", "/registry/minions/n1"),
            (
                "",
                "v1",
                "namespaces",
                None,
                "default",
                "/registry/namespaces/default",
            ),
            (
                "apps",
                "v1",
                "deployments",
                Some("ns"),
                "d",
                "/registry/deployments/ns/d",
            ),
        ];
        for (g, v, p, ns, name, want) in cases {
            assert_eq!(find(g, v, p).unwrap().key(ns, name), want);
        }
    }

    #[test]
    fn converted_versions_share_storage() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        assert_eq!(v1.storage_resource().version, "v2");
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(ev.storage_resource().group, "");
    }

    #[test]
    fn groups_list_core_first() {
        let g = groups();
        assert_eq!(g[0].0, "");
        assert!(g
            .iter()
            .any(|(g, v)| *g == "autoscaling" && v == &vec!["v2", "v1"]));
    }
}
