//! The scheduler benchmark's tables and JSON. Every value comes from a [`SchedFigures`]
//! measured in this run.

use super::figures::{SchedFigures, WorkloadFigures};
use super::workloads::FULL_NODES;
use serde_json::json;
use std::fmt::Write;

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn sampled(f: &WorkloadFigures) -> String {
    f.sampled
        .as_ref()
        .map_or("n/a".into(), |t| format!("{:.1}", t.average))
}

fn notes(f: &WorkloadFigures) -> String {
    let mut n = Vec::new();
    if f.init_timed_out {
        n.push(format!(
            "init: {} of {} bound in {:.0} s",
            f.init_bound, f.workload.init_pods, f.init_secs
        ));
    }
    if f.measure_timed_out {
        n.push(format!(
            "{} of {} measured bound",
            f.measured_bound, f.workload.measure_pods
        ));
    }
    if let Some(v) = f.violations {
        n.push(if v == 0 {
            "anti-affinity respected".into()
        } else {
            format!("anti-affinity broken on {v} nodes")
        });
    }
    if f.workload.churn_every.is_some() {
        n.push(format!(
            "high-priority (need preemption): {} of {} bound",
            f.churn_bound, f.churn_created
        ));
    }
    if let Some(e) = &f.error {
        n.push(format!("error: {e}"));
    }
    n.join("; ")
}

pub fn table(figs: &SchedFigures) -> String {
    let mut s = String::new();
    let scale = if figs.nodes == FULL_NODES {
        String::new()
    } else {
        format!(
            "; pod counts scaled to {}/{FULL_NODES} of scheduler_perf's{}: the thresholds are for 5000 nodes",
            figs.nodes,
            if figs.quick { " (--quick)" } else { "" }
        )
    };
    let _ = writeln!(
        s,
        "\nScheduler throughput: scheduler_perf workloads through the API server, {} simulated nodes (4 CPU, 32Gi, 110 pods, a Lease renewed every {} s){scale}",
        figs.nodes, figs.lease_seconds
    );
    let _ = writeln!(
        s,
        "{:<46} {:>5} {:>6} {:>8} {:>6} {:>10} {:>10} {:>7} {:>7}  status",
        "workload", "nodes", "init", "measured", "bound", "pods/s sp", "pods/s e2e", "kube", "3x",
    );
    for f in &figs.workloads {
        let _ = writeln!(
            s,
            "{:<46} {:>5} {:>6} {:>8} {:>6} {:>10} {:>10.1} {:>7.0} {:>7.0}  {}",
            f.workload.name,
            f.nodes,
            f.workload.init_pods,
            f.workload.measure_pods,
            f.measured_bound,
            sampled(f),
            f.wall_rate,
            f.workload.threshold,
            f.target(),
            f.status(),
        );
    }
    let _ = writeln!(
        s,
        "pods/s sp: scheduler_perf's SchedulingThroughput (average of per-second bind counts, kube CI's threshold applies to it); \
         pods/s e2e: measured pods / (first create sent → last bind seen); kube: kube CI threshold; 3x: the target; \
         MET/MISSED against the target."
    );
    let _ = writeln!(
        s,
        "\n{:<46} {:>8} {:>16} {:>18} {:>16} {:>9} {:>14} {:>14}  notes",
        "workload",
        "create/s",
        "create→bound ms",
        "create→Running ms",
        "bound→Running ms",
        "srv cores",
        "server RSS/HWM",
        "sim RSS/HWM",
    );
    for f in &figs.workloads {
        let _ = writeln!(
            s,
            "{:<46} {:>8.0} {:>16} {:>18} {:>16} {:>9.2} {:>14} {:>14}  {}",
            f.workload.name,
            f.create_rate,
            f.create_to_bound.cell(),
            f.create_to_running.cell(),
            f.bound_to_running.cell(),
            f.server_cores,
            format!("{:.0}/{:.0} MB", mb(f.server_rss_kb), mb(f.server_hwm_kb)),
            format!("{:.0}/{:.0} MB", mb(f.sim_rss_kb), mb(f.sim_hwm_kb)),
            notes(f),
        );
    }
    let _ = writeln!(
        s,
        "latencies p50 / p99 over the measured pods; RSS read after each workload's measure phase.\n\
         {} nodes Ready {:.1} s after the simulator started; then server RSS {:.1} MB, simulator RSS {:.1} MB; \
         peaks over the run: server VmHWM {:.1} MB, simulator VmHWM {:.1} MB{}",
        figs.nodes,
        figs.nodes_ready_secs,
        mb(figs.server_rss_nodes_kb),
        mb(figs.sim_rss_nodes_kb),
        mb(figs.server_hwm_kb),
        mb(figs.sim_hwm_kb),
        if figs.watch_relists > 0 {
            format!(
                "; the bench's pod watch relisted {} times (bind times then approximate)",
                figs.watch_relists
            )
        } else {
            String::new()
        }
    );
    s
}

pub fn json(figs: &SchedFigures) -> serde_json::Value {
    let workloads: Vec<serde_json::Value> = figs
        .workloads
        .iter()
        .map(|f| {
            json!({
                "name": f.workload.name,
                "key": f.workload.kind.key(),
                "nodes": f.nodes,
                "init_pods": f.workload.init_pods,
                "measure_pods": f.workload.measure_pods,
                "init_bound": f.init_bound,
                "init_secs": f.init_secs,
                "measured_bound": f.measured_bound,
                "measure_secs": f.measure_secs,
                "scheduling_throughput": f.sampled.as_ref().map(|t| json!({
                    "average": t.average, "p50": t.p50, "p90": t.p90, "p99": t.p99, "samples": t.samples
                })),
                "pods_per_second_e2e": f.wall_rate,
                "create_per_second": f.create_rate,
                "threshold": f.workload.threshold,
                "target": f.target(),
                "status": f.status(),
                "create_to_bound": f.create_to_bound.json(),
                "create_to_running": f.create_to_running.json(),
                "bound_to_running": f.bound_to_running.json(),
                "running": f.running,
                "anti_affinity_violations": f.violations,
                "churn_created": f.churn_created,
                "churn_bound": f.churn_bound,
                "server_cores": f.server_cores,
                "sim_cores": f.sim_cores,
                "server_rss_kb": f.server_rss_kb,
                "server_hwm_kb": f.server_hwm_kb,
                "sim_rss_kb": f.sim_rss_kb,
                "sim_hwm_kb": f.sim_hwm_kb,
                "cleanup_secs": f.cleanup_secs,
                "error": f.error,
            })
        })
        .collect();
    json!({
        "nodes": figs.nodes,
        "quick": figs.quick,
        "lease_seconds": figs.lease_seconds,
        "nodes_ready_secs": figs.nodes_ready_secs,
        "server_rss_nodes_kb": figs.server_rss_nodes_kb,
        "sim_rss_nodes_kb": figs.sim_rss_nodes_kb,
        "server_hwm_kb": figs.server_hwm_kb,
        "sim_hwm_kb": figs.sim_hwm_kb,
        "watch_relists": figs.watch_relists,
        "workloads": workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::figures::Throughput;
    use crate::sched::workloads::{Kind, Workload};

    #[test]
    fn table_shows_each_workload_with_its_status() {
        let mut basic = WorkloadFigures::new(Workload::new(Kind::Basic, 500), 500);
        basic.measured_bound = 1000;
        basic.sampled = Throughput::of(vec![2500.0]);
        basic.wall_rate = 2400.0;
        let mut anti = WorkloadFigures::new(Workload::new(Kind::PodAntiAffinity, 500), 500);
        anti.measure_timed_out = true;
        anti.measured_bound = 150;
        anti.violations = Some(0);
        let figs = SchedFigures {
            nodes: 500,
            quick: true,
            workloads: vec![basic, anti],
            ..Default::default()
        };
        let t = table(&figs);
        let line = |name: &str| t.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        let b = line("SchedulingBasic/5000Nodes_10000Pods");
        assert!(
            b.contains("2500.0") && b.contains("680") && b.contains("2040") && b.ends_with("MET"),
            "{b}"
        );
        let a = line("SchedulingPodAntiAffinity/5000Nodes_2000Pods");
        assert!(a.contains(" 150 ") && a.ends_with("TIMEOUT"), "{a}");
        assert!(t.contains("150 of 200 measured bound"), "{t}");
        assert!(t.contains("--quick"));
        let j = json(&figs);
        assert_eq!(j["workloads"][0]["status"], "MET");
        assert_eq!(j["workloads"][1]["status"], "TIMEOUT");
        assert_eq!(
            j["workloads"][0]["scheduling_throughput"]["average"],
            2500.0
        );
    }
}
