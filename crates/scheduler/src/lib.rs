//! The scheduler's decision as pure functions, no I/O: kube-scheduler v1.32's default profile
//! over a [`Snapshot`] the loop keeps up to date.
//!
//! - [`schedule`]: PreFilter, the filters (NodeUnschedulable, NodeName, TaintToleration,
//!   NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity, with the
//!   pods nominated to a node counted there) from a round-robin start until
//!   numFeasibleNodesToFind nodes pass, then the weighted scores (NodeResourcesFit,
//!   BalancedAllocation, TaintToleration, NodeAffinity, InterPodAffinity, PodTopologySpread,
//!   ImageLocality); or a [`FitError`] with kube's "0/N nodes are available: …" message.
//! - [`preempt`]: DefaultPreemption for a pod that fits nowhere.
//! - [`parse_config`]: KubeSchedulerConfiguration profiles.
//!
//! A loop builds one [`PodInfo`] per pod version (shared with `Arc`), feeds watch events to
//! the [`Snapshot`] (`upsert_node`, `add_pod` for bound and assumed pods, `nominate` for
//! `status.nominatedNodeName`, `set_namespace`, `set_pdbs`), calls `schedule(pod, &snap,
//! &profile, start)` advancing `start` by `Decision::evaluated`, assumes the pod
//! (`add_pod`) before binding, and on a [`FitError`] calls [`preempt`] and reports
//! `err.message_with_preemption(..)`. Not here: volume plugins, DRA, scheduling gates,
//! extenders, kube's system default topology spread constraints, NodeAffinity addedAffinity.
#![forbid(unsafe_code)]

mod config;
mod filters;
mod framework;
mod hash;
mod image;
mod intern;
mod interpod;
mod message;
mod node;
mod parse;
mod podinfo;
mod preemption;
mod resources;
mod scores;
mod selector;
mod snapshot;
mod spread;
#[cfg(test)]
mod tests;

pub use config::{Profile, ScoringStrategy, StrategyType, FILTER_PLUGINS, SCORE_PLUGINS};
pub use framework::{num_feasible_nodes_to_find, schedule, score_nodes, Decision};
pub use image::normalize_image;
pub use message::{FitError, NodeStatus};
pub use node::NodeInfo;
pub use parse::parse_config;
pub use podinfo::PodInfo;
pub use preemption::{preempt, Preemption};
pub use resources::{pod_requests, Resources};
pub use snapshot::{Pdb, Snapshot};
