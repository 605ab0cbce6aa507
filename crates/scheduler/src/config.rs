//! Scheduling profiles: [`Profile`] (kube's default-scheduler by default: its filters, its
//! score plugins and weights, DefaultPreemption and the plugin args this crate honours).
//! `parse` reads them from a KubeSchedulerConfiguration.

use std::collections::{BTreeMap, BTreeSet};

/// NodeResourcesFit's scoring strategy type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrategyType {
    #[default]
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

/// NodeResourcesFit's `scoringStrategy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoringStrategy {
    pub kind: StrategyType,
    /// (resource, weight)
    pub resources: Vec<(String, i64)>,
    /// RequestedToCapacityRatio's shape: (utilization 0–100, score 0–10), increasing.
    pub shape: Vec<(i64, i64)>,
}

impl Default for ScoringStrategy {
    fn default() -> Self {
        ScoringStrategy {
            kind: StrategyType::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
            shape: vec![(0, 10), (100, 0)],
        }
    }
}

/// One scheduling profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    /// None (or 0) = adaptive as kube: max(5, 50 - nodes/125)% with at least 100 nodes.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// DefaultPreemption (PostFilter) is off.
    pub disable_preemption: bool,
    /// Score plugin → weight; a plugin not here (or at 0) does not score.
    pub score_weights: BTreeMap<String, i64>,
    /// Filter plugins that do not run (kube's names, e.g. "NodePorts").
    pub disabled_filters: BTreeSet<String>,
    /// Score plugins that do not run, whatever their weight.
    pub disabled_scores: BTreeSet<String>,
    pub scoring_strategy: ScoringStrategy,
    /// NodeResourcesBalancedAllocation's resources.
    pub balanced_resources: Vec<String>,
    /// NodeResourcesFit's ignoredResources / ignoredResourceGroups (extended resources).
    pub ignored_resources: BTreeSet<String>,
    pub ignored_resource_groups: BTreeSet<String>,
    /// InterPodAffinity's hardPodAffinityWeight.
    pub hard_pod_affinity_weight: i64,
    pub ignore_preferred_terms_of_existing_pods: bool,
    /// DefaultPreemption's minCandidateNodesPercentage / minCandidateNodesAbsolute.
    pub min_candidate_nodes_percentage: u32,
    pub min_candidate_nodes_absolute: u32,
}

/// The filter plugins this crate implements, in kube's default order.
pub const FILTER_PLUGINS: [&str; 8] = [
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
];

/// The score plugins this crate implements with kube's default weights.
pub const SCORE_PLUGINS: [(&str, i64); 7] = [
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
];

impl Default for Profile {
    fn default() -> Self {
        Profile {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: None,
            disable_preemption: false,
            score_weights: SCORE_PLUGINS
                .iter()
                .map(|(n, w)| (n.to_string(), *w))
                .collect(),
            disabled_filters: BTreeSet::new(),
            disabled_scores: BTreeSet::new(),
            scoring_strategy: ScoringStrategy::default(),
            balanced_resources: vec!["cpu".into(), "memory".into()],
            ignored_resources: BTreeSet::new(),
            ignored_resource_groups: BTreeSet::new(),
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

impl Profile {
    /// The weight a score plugin scores with (0 = it does not run).
    pub fn score_weight(&self, plugin: &str) -> i64 {
        if self.disabled_scores.contains(plugin) {
            return 0;
        }
        self.score_weights.get(plugin).copied().unwrap_or(0).max(0)
    }

    pub fn filter_enabled(&self, plugin: &str) -> bool {
        !self.disabled_filters.contains(plugin)
    }
}
