//! What the scheduler benchmark measures, and scheduler_perf's way of turning bind times into
//! SchedulingThroughput (pure, table-tested).

use super::workloads::Workload;
use crate::stats::Summary;

/// scheduler_perf's throughput collector, replayed on exact bind times: every second after
/// the collector started it counts the measured pods scheduled so far; the first sample with
/// any is skipped (creation and sampling start independently), a second with no new pod is
/// folded into the next one (which is recorded once per folded second at the averaged rate),
/// and sampling ends with the first tick at or after the last bind.
/// `bound` are seconds since the collector started. Returns the per-second samples.
pub fn sampled_throughput(bound: &[f64]) -> Vec<f64> {
    let mut t: Vec<f64> = bound.iter().copied().filter(|v| v.is_finite()).collect();
    t.sort_by(f64::total_cmp);
    let Some(&last) = t.last() else {
        return Vec::new();
    };
    let ticks = last.max(0.0).ceil().max(1.0) as usize;
    let mut samples = Vec::new();
    let (mut started, mut last_count, mut last_tick, mut skipped) = (false, 0usize, 0usize, 0usize);
    let mut i = 0usize;
    for tick in 1..=ticks {
        while i < t.len() && t[i] <= tick as f64 {
            i += 1;
        }
        let scheduled = i;
        if scheduled == 0 {
            continue;
        }
        if !started {
            started = true;
            last_count = scheduled;
            last_tick = tick;
            continue;
        }
        let new = scheduled - last_count;
        if new == 0 {
            skipped += 1;
            continue;
        }
        let rate = new as f64 / (tick - last_tick) as f64;
        samples.extend(std::iter::repeat_n(rate, skipped + 1));
        last_count = scheduled;
        last_tick = tick;
        skipped = 0;
    }
    samples
}

/// Average and nearest-rank percentiles of throughput samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Throughput {
    pub samples: usize,
    pub average: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Throughput {
    pub fn of(mut samples: Vec<f64>) -> Option<Throughput> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let pct = |p: usize| samples[(n * p).div_ceil(100).clamp(1, n) - 1];
        Some(Throughput {
            samples: n,
            average: samples.iter().sum::<f64>() / n as f64,
            p50: pct(50),
            p90: pct(90),
            p99: pct(99),
        })
    }
}

/// One workload's figures.
#[derive(Clone, Debug)]
pub struct WorkloadFigures {
    pub workload: Workload,
    pub nodes: usize,
    pub init_bound: usize,
    pub init_secs: f64,
    pub init_timed_out: bool,
    pub measured_bound: usize,
    pub measure_timed_out: bool,
    /// scheduler_perf's SchedulingThroughput over the measured pods.
    pub sampled: Option<Throughput>,
    /// Measured pods bound / (first measured create sent → last measured bind).
    pub wall_rate: f64,
    pub measure_secs: f64,
    /// Measured pods created / (first create sent → last create answered).
    pub create_rate: f64,
    pub create_to_bound: Summary,
    pub create_to_running: Summary,
    pub bound_to_running: Summary,
    pub running: usize,
    /// Nodes with two or more anti-affinity pods (PodAntiAffinity only).
    pub violations: Option<usize>,
    pub churn_created: usize,
    pub churn_bound: usize,
    /// Server and simulator CPU use over the measure phase, in cores.
    pub server_cores: f64,
    pub sim_cores: f64,
    pub server_rss_kb: u64,
    pub server_hwm_kb: u64,
    pub sim_rss_kb: u64,
    pub sim_hwm_kb: u64,
    pub cleanup_secs: f64,
    pub error: Option<String>,
}

impl WorkloadFigures {
    pub fn new(workload: Workload, nodes: usize) -> WorkloadFigures {
        WorkloadFigures {
            workload,
            nodes,
            init_bound: 0,
            init_secs: 0.0,
            init_timed_out: false,
            measured_bound: 0,
            measure_timed_out: false,
            sampled: None,
            wall_rate: 0.0,
            measure_secs: 0.0,
            create_rate: 0.0,
            create_to_bound: Summary::default(),
            create_to_running: Summary::default(),
            bound_to_running: Summary::default(),
            running: 0,
            violations: None,
            churn_created: 0,
            churn_bound: 0,
            server_cores: 0.0,
            sim_cores: 0.0,
            server_rss_kb: 0,
            server_hwm_kb: 0,
            sim_rss_kb: 0,
            sim_hwm_kb: 0,
            cleanup_secs: 0.0,
            error: None,
        }
    }

    /// The throughput the threshold is checked on: scheduler_perf's average, or the wall rate
    /// when the run was too short for a sample.
    pub fn rate(&self) -> f64 {
        self.sampled.as_ref().map_or(self.wall_rate, |s| s.average)
    }

    /// The target: three times kube CI's threshold.
    pub fn target(&self) -> f64 {
        3.0 * self.workload.threshold
    }

    /// ERROR, TIMEOUT, INVALID (a placement constraint broken), MET or MISSED (against the
    /// target).
    pub fn status(&self) -> &'static str {
        if self.error.is_some() {
            "ERROR"
        } else if self.init_timed_out || self.measure_timed_out {
            "TIMEOUT"
        } else if self.violations.is_some_and(|v| v > 0) {
            "INVALID"
        } else if self.rate() >= self.target() {
            "MET"
        } else {
            "MISSED"
        }
    }
}

/// Nodes hosting more than one of the given pods' nodes (one entry per pod).
pub fn crowded_nodes<'a>(nodes: impl Iterator<Item = &'a str>) -> usize {
    let mut per: std::collections::HashMap<&str, usize> = Default::default();
    for n in nodes {
        *per.entry(n).or_default() += 1;
    }
    per.values().filter(|c| **c > 1).count()
}

/// The whole run.
#[derive(Clone, Debug, Default)]
pub struct SchedFigures {
    pub nodes: usize,
    pub quick: bool,
    pub lease_seconds: u64,
    /// Simulator start → every node Ready.
    pub nodes_ready_secs: f64,
    pub server_rss_nodes_kb: u64,
    pub sim_rss_nodes_kb: u64,
    pub workloads: Vec<WorkloadFigures>,
    pub server_hwm_kb: u64,
    pub sim_hwm_kb: u64,
    /// Times the bench's pod watch had to relist (bind times then approximate).
    pub watch_relists: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::workloads::{Kind, Workload};

    #[test]
    fn scheduler_perf_sampling() {
        // 100 pods/s for 10 s: the first second is skipped, nine samples of 100.
        let steady: Vec<f64> = (1..=1000).map(|i| (i as f64 - 0.5) * 0.01).collect();
        assert_eq!(sampled_throughput(&steady), vec![100.0; 9]);
        // Nothing bound in second 3: it folds into second 4 (two samples of the average).
        let gap: Vec<f64> = [0.5, 1.5, 1.6, 3.5, 3.6, 3.7, 3.8].to_vec();
        assert_eq!(sampled_throughput(&gap), vec![2.0, 2.0, 2.0]);
        // Unsorted input, a late tail; ticks stop at the first one after the last bind.
        assert_eq!(
            sampled_throughput(&[2.2, 0.1, 1.2, 5.0]),
            vec![1.0, 1.0, 0.5, 0.5]
        );
        // Everything within the first second: no sample.
        assert!(sampled_throughput(&[0.1, 0.2, 0.9]).is_empty());
        assert!(sampled_throughput(&[]).is_empty());
        let t = Throughput::of(vec![1.0, 2.0, 3.0, 10.0]).unwrap();
        assert_eq!(
            (t.samples, t.average, t.p50, t.p90, t.p99),
            (4, 4.0, 2.0, 10.0, 10.0)
        );
        assert_eq!(Throughput::of(vec![]), None);
    }

    #[test]
    fn statuses() {
        let w = Workload::new(Kind::Basic, 500);
        let mut f = WorkloadFigures::new(w, 500);
        f.wall_rate = 2100.0;
        assert_eq!((f.target(), f.status()), (2040.0, "MET"));
        f.sampled = Throughput::of(vec![1000.0]);
        assert_eq!((f.rate(), f.status()), (1000.0, "MISSED"));
        f.violations = Some(0);
        assert_eq!(f.status(), "MISSED");
        f.violations = Some(3);
        assert_eq!(f.status(), "INVALID");
        f.measure_timed_out = true;
        assert_eq!(f.status(), "TIMEOUT");
        f.error = Some("boom".into());
        assert_eq!(f.status(), "ERROR");
    }

    #[test]
    fn crowding() {
        assert_eq!(crowded_nodes(["a", "b", "c"].into_iter()), 0);
        assert_eq!(crowded_nodes(["a", "b", "a", "c", "c", "c"].into_iter()), 2);
        assert_eq!(crowded_nodes(std::iter::empty()), 0);
    }
}
