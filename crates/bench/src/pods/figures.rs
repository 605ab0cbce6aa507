//! What the pod benchmark measures: its sizes and the figures of one run.

use crate::stats::Summary;

/// What the pod benchmark runs: its counts and the CRI runtime handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPlan {
    /// Pods started one at a time (on each path).
    pub sequential: usize,
    /// Pods started at once (on each path).
    pub burst: usize,
    /// The CRI runtime handler of both paths ("" = containerd's default, runc; or crun).
    pub runtime: String,
}

impl PodPlan {
    pub fn new(quick: bool, runtime: &str) -> PodPlan {
        let (sequential, burst) = if quick { (5, 10) } else { (20, 30) };
        PodPlan {
            sequential,
            burst,
            runtime: runtime.to_string(),
        }
    }

    /// The runtime's name for the report.
    pub fn runtime_name(&self) -> &str {
        if self.runtime.is_empty() {
            "runc"
        } else {
            &self.runtime
        }
    }
}

/// One path's (Capstan or raw CRI) burst.
#[derive(Clone, Debug, Default)]
pub struct Burst {
    /// Per pod: its create (or RunPodSandbox) sent → Running.
    pub latency: Summary,
    /// First create sent → last pod Running, in ms.
    pub wall_ms: f64,
    /// Teardown of the whole burst: first delete sent → last pod gone, in ms.
    pub teardown_ms: f64,
    /// CPU use during the burst, in cores: server, containerd, bench, the whole machine.
    pub cpu: [f64; 4],
}

/// Everything the pod benchmark measured.
#[derive(Clone, Debug, Default)]
pub struct PodFigures {
    /// Capstan, one at a time: create sent → watch shows it Running.
    pub single: Summary,
    /// Capstan, one at a time: DELETE sent → DELETED event read.
    pub delete_api: Summary,
    /// Capstan, one at a time: DELETE sent → no sandbox of the pod left in CRI.
    pub delete_node: Summary,
    /// Raw CRI, one at a time: RunPodSandbox sent → StartContainer answered.
    pub raw_started: Summary,
    /// Raw CRI, one at a time: … → ContainerStatus RUNNING.
    pub raw_single: Summary,
    /// Raw CRI, one at a time: StopPodSandbox + RemovePodSandbox.
    pub raw_remove: Summary,
    pub burst: Burst,
    pub raw_burst: Burst,
    /// Raw CRI burst: per pod until StartContainer answered.
    pub raw_burst_started: Summary,
    /// VmRSS of the server process (API server + agent) with the node Ready and no pod, KiB.
    pub server_rss_idle_kb: u64,
    /// … with the Capstan burst's pods all Running.
    pub server_rss_pods_kb: u64,
    /// VmRSS of the node's containerd at the same two moments.
    pub containerd_rss_idle_kb: u64,
    pub containerd_rss_pods_kb: u64,
    /// Sum of the VmRSS of the containerd shims with the burst's pods Running.
    pub shims_rss_pods_kb: u64,
    /// VmRSS of a `capstan server --disable-agent` (same binary, no agent), idle, KiB: the
    /// API server's own share, to estimate the agent's.
    pub server_no_agent_rss_kb: u64,
    /// VmRSS of a separate `capstan agent` process, idle (node registered, one pod run and
    /// gone) and with the burst running.
    pub agent_rss_idle_kb: Option<u64>,
    pub agent_rss_pods_kb: Option<u64>,
    /// What the agent figure is (or why there is none).
    pub agent_note: String,
    /// /proc/loadavg's 1-minute figure when the measurements began (other work on the host).
    pub load_before: f64,
}
