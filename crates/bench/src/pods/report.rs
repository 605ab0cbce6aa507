//! The pod benchmark's table, target checks and JSON. Every value comes from a
//! [`PodFigures`] measured in this run.

use super::{PodFigures, PodPlan};
use crate::report::Check;
use crate::stats::Summary;

/// Capstan single-pod p99 over the raw CRI path's.
const SINGLE_RATIO: f64 = 1.3;
/// Burst per-pod p99 limit, in ms.
const BURST_P99_MS: f64 = 1000.0;
/// Agent RSS limit with the burst running, in MB.
const AGENT_RSS_MB: f64 = 25.0;

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The agent's RSS with the burst running: a separate agent process's when measured, else
/// the server process's (an upper bound: API server + agent). (MB, what it is.)
fn agent_rss(f: &PodFigures) -> (f64, &'static str) {
    match f.agent_rss_pods_kb {
        Some(kb) => (mb(kb), "the `capstan agent` process"),
        None => (
            mb(f.server_rss_pods_kb),
            "upper bound: the server process, API server + agent",
        ),
    }
}

pub fn checks(f: &PodFigures, sizes: &PodPlan) -> Vec<Check> {
    let (cap, raw) = (f.single.p99_ms(), f.raw_single.p99_ms());
    let ratio = cap / raw.max(1e-9);
    let burst = f.burst.latency.p99_ms();
    let (rss, what) = agent_rss(f);
    vec![
        Check {
            target: format!("single pod p99 <= {SINGLE_RATIO}x the raw CRI path's"),
            measured: format!(
                "{ratio:.2}x ({cap:.1} ms vs {raw:.1} ms to RUNNING; {:.1} ms to StartContainer answered)",
                f.raw_started.p99_ms()
            ),
            met: ratio <= SINGLE_RATIO,
        },
        Check {
            target: format!("burst of {} pods p99 <= {BURST_P99_MS:.0} ms", sizes.burst),
            measured: format!(
                "{burst:.0} ms (raw CRI {:.0} ms; all Running after {:.0} ms)",
                f.raw_burst.latency.p99_ms(),
                f.burst.wall_ms
            ),
            met: burst <= BURST_P99_MS,
        },
        Check {
            target: format!(
                "agent RSS <= {AGENT_RSS_MB:.0} MB with {} pods running",
                sizes.burst
            ),
            measured: match (f.agent_rss_idle_kb, f.agent_rss_pods_kb) {
                (Some(idle), Some(busy)) => format!(
                    "{rss:.1} MB ({what}; {:.1} MB idle, +{:.1} MB for the pods)",
                    mb(idle),
                    mb(busy) - mb(idle)
                ),
                _ => format!(
                    "{rss:.1} MB ({what}; +{:.1} MB over idle; minus an idle --disable-agent \
                     server's {:.1} MB: {:.1} MB)",
                    mb(f.server_rss_pods_kb) - mb(f.server_rss_idle_kb),
                    mb(f.server_no_agent_rss_kb),
                    mb(f.server_rss_pods_kb) - mb(f.server_no_agent_rss_kb),
                ),
            },
            met: rss <= AGENT_RSS_MB,
        },
    ]
}

type Row = (String, String, String, &'static str);

fn rows(f: &PodFigures, sizes: &PodPlan) -> Vec<Row> {
    let cpu = |c: [f64; 4]| {
        let pct: Vec<String> = c.iter().map(|v| format!("{:.0}", v * 100.0)).collect();
        pct.join(" / ")
    };
    let (n, b) = (sizes.sequential, sizes.burst);
    let dash = || "-".to_string();
    vec![
        (
            format!("1 at a time, create -> Running p50 / p99 ms (n={n})"),
            f.single.cell(),
            f.raw_single.cell(),
            "p99 <= 1.3x raw",
        ),
        (
            "  raw: until StartContainer answered".into(),
            dash(),
            f.raw_started.cell(),
            "",
        ),
        (
            "  delete -> gone p50 / p99 ms (API)".into(),
            f.delete_api.cell(),
            dash(),
            "",
        ),
        (
            "  delete -> sandbox removed p50 / p99 ms".into(),
            f.delete_node.cell(),
            f.raw_remove.cell(),
            "",
        ),
        (
            format!("burst of {b}, per pod p50 / p99 ms"),
            f.burst.latency.cell(),
            f.raw_burst.latency.cell(),
            "p99 <= 1000 ms",
        ),
        (
            "  raw: until StartContainer answered".into(),
            dash(),
            f.raw_burst_started.cell(),
            "",
        ),
        (
            format!("burst of {b}, all Running after ms"),
            format!("{:.0}", f.burst.wall_ms),
            format!("{:.0}", f.raw_burst.wall_ms),
            "",
        ),
        (
            format!("burst of {b}, all removed after ms"),
            format!("{:.0}", f.burst.teardown_ms),
            format!("{:.0}", f.raw_burst.teardown_ms),
            "",
        ),
        (
            "  CPU %, server / containerd / bench / machine".into(),
            cpu(f.burst.cpu),
            cpu(f.raw_burst.cpu),
            "",
        ),
        (
            "server RSS (API server + agent) idle MB".into(),
            format!("{:.1}", mb(f.server_rss_idle_kb)),
            dash(),
            "",
        ),
        (
            format!("server RSS (API server + agent), {b} pods MB"),
            format!("{:.1}", mb(f.server_rss_pods_kb)),
            dash(),
            "agent <= 25 MB",
        ),
        (
            "  delta for the pods MB".into(),
            format!(
                "{:+.1}",
                mb(f.server_rss_pods_kb) - mb(f.server_rss_idle_kb)
            ),
            dash(),
            "",
        ),
        (
            "server --disable-agent RSS idle MB".into(),
            format!("{:.1}", mb(f.server_no_agent_rss_kb)),
            dash(),
            "",
        ),
        (
            format!("  agent estimate: with {b} pods minus that, MB"),
            format!(
                "{:.1}",
                mb(f.server_rss_pods_kb) - mb(f.server_no_agent_rss_kb)
            ),
            dash(),
            "",
        ),
        (
            format!("separate agent process RSS idle / {b} pods MB"),
            match (f.agent_rss_idle_kb, f.agent_rss_pods_kb) {
                (Some(i), Some(p)) => format!("{:.1} / {:.1}", mb(i), mb(p)),
                _ => "n/a".into(),
            },
            dash(),
            "",
        ),
        (
            format!("containerd RSS idle / {b} pods MB"),
            format!(
                "{:.1} / {:.1}",
                mb(f.containerd_rss_idle_kb),
                mb(f.containerd_rss_pods_kb)
            ),
            dash(),
            "",
        ),
        (
            format!("containerd shims RSS, {b} pods, total MB"),
            format!("{:.1}", mb(f.shims_rss_pods_kb)),
            dash(),
            "",
        ),
    ]
}

/// The side-by-side table, how it was measured, and the target checks.
pub fn table(f: &PodFigures, sizes: &PodPlan) -> String {
    let rows = rows(f, sizes);
    let head = (
        "pod startup".to_string(),
        "capstan pod".to_string(),
        "raw CRI".to_string(),
        "target",
    );
    let all: Vec<&Row> = std::iter::once(&head).chain(rows.iter()).collect();
    let lw = all.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let cw = all
        .iter()
        .flat_map(|r| [r.1.len(), r.2.len()])
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    for (label, a, b, target) in all {
        let line = format!("{label:<lw$}{a:>cw$}{b:>cw$}   {target}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(
        "\nCapstan pod: POST sent -> a watch on the namespace shows phase Running with the \
         container running (image local, busybox `sleep 3600`).\nRaw CRI: RunPodSandbox sent \
         -> CreateContainer -> StartContainer -> ContainerStatus RUNNING, on the same containerd \
         with the agent's own sandbox/container configs.\nOne at a time, the two paths \
         alternate; each pod is gone from the API and CRI before the next.\n",
    );
    out.push_str(&format!(
        "Runtime: {} (both paths).\nAgent RSS: {}.\n",
        sizes.runtime_name(),
        f.agent_note
    ));
    out.push_str(&format!(
        "Load average when the measurements began: {:.2} ({} cores).\n",
        f.load_before,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    out.push_str("\nTargets:\n");
    for c in checks(f, sizes) {
        let verdict = if c.met { "MET" } else { "MISSED" };
        out.push_str(&format!("  {verdict:<7} {}: {}\n", c.target, c.measured));
    }
    out
}

pub fn json(f: &PodFigures, sizes: &PodPlan) -> serde_json::Value {
    let burst = |b: &super::Burst, started: Option<&Summary>| {
        serde_json::json!({
            "latency": b.latency.json(),
            "until_start_container": started.map(Summary::json),
            "wall_ms": b.wall_ms, "teardown_ms": b.teardown_ms,
            "cpu_cores": {
                "server": b.cpu[0], "containerd": b.cpu[1], "bench": b.cpu[2], "machine": b.cpu[3],
            },
        })
    };
    serde_json::json!({
        "sizes": {"sequential": sizes.sequential, "burst": sizes.burst},
        "runtime": sizes.runtime_name(),
        "capstan": {
            "single": f.single.json(),
            "delete_api": f.delete_api.json(),
            "delete_node": f.delete_node.json(),
            "burst": burst(&f.burst, None),
        },
        "raw_cri": {
            "single": f.raw_single.json(),
            "single_until_start_container": f.raw_started.json(),
            "remove": f.raw_remove.json(),
            "burst": burst(&f.raw_burst, Some(&f.raw_burst_started)),
        },
        "rss_mb": {
            "server_idle": mb(f.server_rss_idle_kb),
            "server_pods": mb(f.server_rss_pods_kb),
            "server_without_agent_idle": mb(f.server_no_agent_rss_kb),
            "containerd_idle": mb(f.containerd_rss_idle_kb),
            "containerd_pods": mb(f.containerd_rss_pods_kb),
            "shims_pods": mb(f.shims_rss_pods_kb),
            "agent_idle": f.agent_rss_idle_kb.map(mb),
            "agent_pods": f.agent_rss_pods_kb.map(mb),
            "agent_note": f.agent_note,
        },
        "load_average_before": f.load_before,
        "checks": checks(f, sizes).iter().map(|c| serde_json::json!({
            "target": c.target, "measured": c.measured, "met": c.met,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(v: &[u64]) -> Summary {
        Summary::of(v.iter().copied().map(Duration::from_millis).collect())
    }

    fn figures(single: u64, raw: u64, burst: u64, rss_mb: u64) -> PodFigures {
        let mut f = PodFigures {
            single: ms(&[single / 2, single]),
            raw_single: ms(&[raw]),
            raw_started: ms(&[raw - 1]),
            server_rss_idle_kb: 10 * 1024,
            server_rss_pods_kb: rss_mb * 1024,
            ..Default::default()
        };
        f.burst.latency = ms(&[burst]);
        f
    }

    #[test]
    fn targets() {
        let sizes = PodPlan::new(false, "");
        let cases = [
            (figures(120, 100, 900, 20), [true, true, true]),
            // 1.3x exactly is met.
            (figures(130, 100, 1000, 25), [true, true, true]),
            (figures(131, 100, 1001, 26), [false, false, false]),
        ];
        for (f, want) in cases {
            let got: Vec<bool> = checks(&f, &sizes).iter().map(|c| c.met).collect();
            assert_eq!(got, want, "{:?}", checks(&f, &sizes));
        }
        // A separate agent's figure, when there is one, is what the target is checked on.
        let mut f = figures(100, 100, 100, 80);
        f.agent_rss_pods_kb = Some(12 * 1024);
        assert!(checks(&f, &sizes)[2].met);
    }

    #[test]
    fn table_and_json_carry_the_figures() {
        let sizes = PodPlan::new(false, "");
        let f = figures(222, 100, 777, 40);
        let t = table(&f, &sizes);
        for want in [
            "222.00",
            "777.00",
            "2.22x",
            "40.0",
            "MISSED",
            "MET",
            "burst of 30",
        ] {
            assert!(t.contains(want), "{want} missing from\n{t}");
        }
        let j = json(&f, &sizes);
        assert_eq!(j["capstan"]["single"]["p99_ms"], 222.0);
        assert_eq!(j["rss_mb"]["server_pods"], 40.0);
        assert_eq!(j["checks"][1]["met"], true);
    }
}
