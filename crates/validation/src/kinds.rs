//! Maps a served (group, version, kind) to its `k8s-openapi` Rust type, so that type
//! checking and strict field validation can use the type's JSON schema and decoder.

use k8s_openapi::api as a;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// Something done with the Rust type of one kind.
pub(crate) trait Visit {
    type Out;
    fn visit<T: JsonSchema + DeserializeOwned>(self) -> Self::Out;
}

/// Calls `v.visit::<T>()` with the k8s-openapi type of group/version/kind; `None` when unknown.
pub(crate) fn dispatch<V: Visit>(group: &str, version: &str, kind: &str, v: V) -> Option<V::Out> {
    Some(match (group, version, kind) {
        ("", "v1", "Namespace") => v.visit::<a::core::v1::Namespace>(),
        ("", "v1", "Pod") => v.visit::<a::core::v1::Pod>(),
        ("", "v1", "Service") => v.visit::<a::core::v1::Service>(),
        ("", "v1", "Endpoints") => v.visit::<a::core::v1::Endpoints>(),
        ("", "v1", "ConfigMap") => v.visit::<a::core::v1::ConfigMap>(),
        ("", "v1", "Secret") => v.visit::<a::core::v1::Secret>(),
        ("", "v1", "ServiceAccount") => v.visit::<a::core::v1::ServiceAccount>(),
        ("", "v1", "Node") => v.visit::<a::core::v1::Node>(),
        ("", "v1", "Event") => v.visit::<a::core::v1::Event>(),
        ("", "v1", "ReplicationController") => v.visit::<a::core::v1::ReplicationController>(),
        ("", "v1", "ResourceQuota") => v.visit::<a::core::v1::ResourceQuota>(),
        ("", "v1", "LimitRange") => v.visit::<a::core::v1::LimitRange>(),
        ("", "v1", "PersistentVolumeClaim") => v.visit::<a::core::v1::PersistentVolumeClaim>(),
        ("", "v1", "PersistentVolume") => v.visit::<a::core::v1::PersistentVolume>(),
        ("", "v1", "Binding") => v.visit::<a::core::v1::Binding>(),
        ("apps", "v1", "Deployment") => v.visit::<a::apps::v1::Deployment>(),
        ("apps", "v1", "ReplicaSet") => v.visit::<a::apps::v1::ReplicaSet>(),
        ("apps", "v1", "DaemonSet") => v.visit::<a::apps::v1::DaemonSet>(),
        ("apps", "v1", "StatefulSet") => v.visit::<a::apps::v1::StatefulSet>(),
        ("apps", "v1", "ControllerRevision") => v.visit::<a::apps::v1::ControllerRevision>(),
        ("autoscaling", "v1", "Scale") => v.visit::<a::autoscaling::v1::Scale>(),
        ("batch", "v1", "Job") => v.visit::<a::batch::v1::Job>(),
        ("batch", "v1", "CronJob") => v.visit::<a::batch::v1::CronJob>(),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            v.visit::<a::autoscaling::v2::HorizontalPodAutoscaler>()
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            v.visit::<a::autoscaling::v1::HorizontalPodAutoscaler>()
        }
        ("policy", "v1", "PodDisruptionBudget") => v.visit::<a::policy::v1::PodDisruptionBudget>(),
        ("policy", "v1", "Eviction") => v.visit::<a::policy::v1::Eviction>(),
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            v.visit::<a::scheduling::v1::PriorityClass>()
        }
        ("node.k8s.io", "v1", "RuntimeClass") => v.visit::<a::node::v1::RuntimeClass>(),
        ("coordination.k8s.io", "v1", "Lease") => v.visit::<a::coordination::v1::Lease>(),
        ("discovery.k8s.io", "v1", "EndpointSlice") => v.visit::<a::discovery::v1::EndpointSlice>(),
        ("events.k8s.io", "v1", "Event") => v.visit::<a::events::v1::Event>(),
        ("rbac.authorization.k8s.io", "v1", "Role") => v.visit::<a::rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => v.visit::<a::rbac::v1::RoleBinding>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => v.visit::<a::rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            v.visit::<a::rbac::v1::ClusterRoleBinding>()
        }
        ("networking.k8s.io", "v1", "Ingress") => v.visit::<a::networking::v1::Ingress>(),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            v.visit::<a::networking::v1::NetworkPolicy>()
        }
        ("networking.k8s.io", "v1", "IngressClass") => v.visit::<a::networking::v1::IngressClass>(),
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => {
            v.visit::<a::authorization::v1::SelfSubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "SubjectAccessReview") => {
            v.visit::<a::authorization::v1::SubjectAccessReview>()
        }
        ("authentication.k8s.io", "v1", "SelfSubjectReview") => {
            v.visit::<a::authentication::v1::SelfSubjectReview>()
        }
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            v.visit::<a::authentication::v1::TokenRequest>()
        }
        _ => return None,
    })
}
