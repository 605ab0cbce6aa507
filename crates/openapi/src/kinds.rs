//! Which k8s-openapi type backs each served kind. k8s-openapi's `JsonSchema` impls already name
//! their schemas the Kubernetes way (`io.k8s.api.core.v1.Pod`), so adding a kind to a generator
//! registers it (and everything it references) under its Kubernetes definition name.

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator};

fn add<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! kinds {
    ($gen:ident, $group:ident, $version:ident, $kind:ident; $( ($g:literal, $v:literal) => { $($k:ident => $t:ty),* $(,)? } )*) => {
        match ($group, $version, $kind) {
            $( $( ($g, $v, stringify!($k)) => Some(add::<$t>($gen)), )* )*
            _ => None,
        }
    };
}

/// Register the schema of kind `group/version/kind` with `gen` and return its definition name;
/// `None` for kinds without a k8s-openapi type (connect options, metrics).
pub fn add_kind(
    gen: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<String> {
    kinds!(gen, group, version, kind;
        ("", "v1") => {
            Namespace => api::core::v1::Namespace,
            Pod => api::core::v1::Pod,
            Service => api::core::v1::Service,
            Endpoints => api::core::v1::Endpoints,
            ConfigMap => api::core::v1::ConfigMap,
            Secret => api::core::v1::Secret,
            ServiceAccount => api::core::v1::ServiceAccount,
            Node => api::core::v1::Node,
            Event => api::core::v1::Event,
            ReplicationController => api::core::v1::ReplicationController,
            ResourceQuota => api::core::v1::ResourceQuota,
            LimitRange => api::core::v1::LimitRange,
            PersistentVolumeClaim => api::core::v1::PersistentVolumeClaim,
            PersistentVolume => api::core::v1::PersistentVolume,
            PodTemplate => api::core::v1::PodTemplate,
            Binding => api::core::v1::Binding,
            Status => meta::Status,
            DeleteOptions => meta::DeleteOptions,
            APIVersions => meta::APIVersions,
            APIGroupList => meta::APIGroupList,
            APIGroup => meta::APIGroup,
            APIResourceList => meta::APIResourceList,
        }
        ("apps", "v1") => {
            Deployment => api::apps::v1::Deployment,
            ReplicaSet => api::apps::v1::ReplicaSet,
            DaemonSet => api::apps::v1::DaemonSet,
            StatefulSet => api::apps::v1::StatefulSet,
            ControllerRevision => api::apps::v1::ControllerRevision,
        }
        ("batch", "v1") => {
            Job => api::batch::v1::Job,
            CronJob => api::batch::v1::CronJob,
        }
        ("autoscaling", "v2") => {
            HorizontalPodAutoscaler => api::autoscaling::v2::HorizontalPodAutoscaler,
        }
        ("autoscaling", "v1") => {
            HorizontalPodAutoscaler => api::autoscaling::v1::HorizontalPodAutoscaler,
            Scale => api::autoscaling::v1::Scale,
        }
        ("policy", "v1") => {
            PodDisruptionBudget => api::policy::v1::PodDisruptionBudget,
            Eviction => api::policy::v1::Eviction,
        }
        ("scheduling.k8s.io", "v1") => {
            PriorityClass => api::scheduling::v1::PriorityClass,
        }
        ("node.k8s.io", "v1") => {
            RuntimeClass => api::node::v1::RuntimeClass,
        }
        ("coordination.k8s.io", "v1") => {
            Lease => api::coordination::v1::Lease,
        }
        ("discovery.k8s.io", "v1") => {
            EndpointSlice => api::discovery::v1::EndpointSlice,
        }
        ("events.k8s.io", "v1") => {
            Event => api::events::v1::Event,
        }
        ("rbac.authorization.k8s.io", "v1") => {
            Role => api::rbac::v1::Role,
            RoleBinding => api::rbac::v1::RoleBinding,
            ClusterRole => api::rbac::v1::ClusterRole,
            ClusterRoleBinding => api::rbac::v1::ClusterRoleBinding,
        }
        ("networking.k8s.io", "v1") => {
            Ingress => api::networking::v1::Ingress,
            NetworkPolicy => api::networking::v1::NetworkPolicy,
            IngressClass => api::networking::v1::IngressClass,
        }
        ("authorization.k8s.io", "v1") => {
            SelfSubjectAccessReview => api::authorization::v1::SelfSubjectAccessReview,
            SubjectAccessReview => api::authorization::v1::SubjectAccessReview,
        }
        ("authentication.k8s.io", "v1") => {
            SelfSubjectReview => api::authentication::v1::SelfSubjectReview,
            TokenRequest => api::authentication::v1::TokenRequest,
        }
    )
}

/// Register the meta types every group-version document references.
pub fn add_common(gen: &mut SchemaGenerator) -> Common {
    Common {
        status: add::<meta::Status>(gen),
        delete_options: add::<meta::DeleteOptions>(gen),
        patch: add::<meta::Patch>(gen),
        list_meta: add::<meta::ListMeta>(gen),
        watch_event: add::<meta::WatchEvent<meta::Status>>(gen),
    }
}

/// Definition names of the meta types operations reference.
#[derive(Debug, Clone)]
pub struct Common {
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.Status`.
    pub status: String,
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions`.
    pub delete_options: String,
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.Patch`.
    pub patch: String,
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta`.
    pub list_meta: String,
    /// `io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent`.
    pub watch_event: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_api::resources::RESOURCES;
    use schemars::generate::SchemaSettings;

    #[test]
    fn every_registered_kind_has_a_type() {
        let mut gen = SchemaSettings::openapi3().into_generator();
        for r in RESOURCES {
            let name = add_kind(&mut gen, r.group, r.version, r.kind);
            assert!(name.is_some(), "{}/{} {}", r.group, r.version, r.kind);
            assert!(name.unwrap().ends_with(&format!(".{}", r.kind)));
        }
    }

    #[test]
    fn names_are_kubernetes_definition_names() {
        let mut gen = SchemaSettings::openapi3().into_generator();
        let cases = [
            ("", "v1", "Pod", "io.k8s.api.core.v1.Pod"),
            ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
            (
                "autoscaling",
                "v1",
                "Scale",
                "io.k8s.api.autoscaling.v1.Scale",
            ),
            ("events.k8s.io", "v1", "Event", "io.k8s.api.events.v1.Event"),
        ];
        for (g, v, k, want) in cases {
            assert_eq!(add_kind(&mut gen, g, v, k).as_deref(), Some(want));
        }
        assert!(gen
            .definitions()
            .contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(gen
            .definitions()
            .contains_key("io.k8s.apimachinery.pkg.api.resource.Quantity"));
    }
}
