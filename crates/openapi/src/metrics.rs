//! The `metrics.k8s.io/v1beta1` resources (`kubectl top`), listed in discovery only on request.

use capstan_api::resources::Resource;

/// Group of the resource metrics API.
pub const GROUP: &str = "metrics.k8s.io";

const VERBS: &[&str] = &["get", "list"];

const fn metrics(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group: GROUP,
        version: "v1beta1",
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        storage: "",
        verbs: VERBS,
        storage_version: true,
    }
}

/// NodeMetrics and PodMetrics, as metrics-server registers them.
pub static RESOURCES: &[Resource] = &[
    metrics("NodeMetrics", "nodes", "", false),
    metrics("PodMetrics", "pods", "", true),
];
