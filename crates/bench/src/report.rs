//! The comparison table, the target checks and the JSON form of a run's figures. Every value
//! printed here comes from a [`Figures`] measured in this run.

use crate::figures::{Figures, Sizes, CREATE_CLIENTS, LOAD_CLIENTS, WATCHES_PER_CONN};

/// Each backend's name and figures.
pub type Results = [(String, Figures)];

/// A target and what this run measured against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// Create p99 limit at 16 clients, in ms.
const CREATE_P99_MS: f64 = 10.0;
/// LIST limit (checked on p99), in ms.
const LIST_MS: f64 = 100.0;
/// Watch delivery p99 limit with many watchers, in ms.
const WATCH_P99_MS: f64 = 5.0;
const IDLE_RSS_MB: f64 = 50.0;
/// Embedded creates/s over etcd's at 16 clients.
const CREATE_RATIO: f64 = 2.0;

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The targets, checked on every backend measured (the ratio only when both were).
pub fn checks(results: &Results, sizes: &Sizes) -> Vec<Check> {
    let mut out = Vec::new();
    let find = |n: &str| results.iter().find(|(b, _)| b == n).map(|(_, f)| f);
    if let (Some(e), Some(d)) = (find("embedded"), find("etcd")) {
        if let (Some(e16), Some(d16)) = (e.creates_at(16), d.creates_at(16)) {
            let ratio = e16.per_second / d16.per_second;
            out.push(Check {
                target: format!("embedded creates/s >= {CREATE_RATIO}x etcd's at 16 clients"),
                measured: format!(
                    "{ratio:.2}x ({:.0}/s vs {:.0}/s)",
                    e16.per_second, d16.per_second
                ),
                met: ratio >= CREATE_RATIO,
            });
        }
    }
    for (name, f) in results {
        if let Some(c) = f.creates_at(16) {
            let p99 = c.latency.p99_ms();
            out.push(Check {
                target: format!("[{name}] create p99 <= {CREATE_P99_MS} ms at 16 clients"),
                measured: format!("{p99:.2} ms"),
                met: p99 <= CREATE_P99_MS,
            });
        }
        let (p50, p99) = (f.list.p50_ms(), f.list.p99_ms());
        out.push(Check {
            target: format!(
                "[{name}] LIST of {} pods <= {LIST_MS} ms (p99)",
                sizes.list_pods
            ),
            measured: format!("{p99:.1} ms (p50 {p50:.1} ms)"),
            met: p99 <= LIST_MS,
        });
        if let Some(w) = f.watch_at(sizes.watchers_many) {
            let p99 = w.latency.p99_ms();
            out.push(Check {
                target: format!(
                    "[{name}] watch delivery p99 <= {WATCH_P99_MS} ms at {} watchers",
                    sizes.watchers_many
                ),
                measured: format!("{p99:.2} ms"),
                met: p99 <= WATCH_P99_MS,
            });
        }
        let idle = mb(f.rss_idle_kb);
        out.push(Check {
            target: format!("[{name}] idle RSS <= {IDLE_RSS_MB} MB"),
            measured: format!("{idle:.1} MB"),
            met: idle <= IDLE_RSS_MB,
        });
    }
    out
}

/// A table row: label, one cell per backend, target.
type Row = (String, Vec<String>, &'static str);

fn rows(results: &Results, sizes: &Sizes) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let col = |cell: &dyn Fn(&Figures) -> String| -> Vec<String> {
        results.iter().map(|(_, f)| cell(f)).collect()
    };
    let cpu = |server: f64, client: f64| format!("{:.0} / {:.0}", server * 100.0, client * 100.0);
    for clients in CREATE_CLIENTS {
        let level = |f: &Figures| f.creates_at(clients).cloned().unwrap_or_default();
        let at16 = clients == 16;
        rows.push((
            format!("POST pod: creates/s, {clients} clients"),
            col(&|f| format!("{:.0}", level(f).per_second)),
            if at16 { ">= 2x etcd (embedded)" } else { "" },
        ));
        rows.push((
            format!("  latency p50 / p99 ms, {clients} clients"),
            col(&|f| level(f).latency.cell()),
            if at16 { "p99 <= 10 ms" } else { "" },
        ));
        rows.push((
            "  CPU, server / bench, % of a core".into(),
            col(&|f| cpu(level(f).server_cores, level(f).client_cores)),
            "",
        ));
    }
    rows.push(("GET pod p50 / p99 ms".into(), col(&|f| f.get.cell()), ""));
    rows.push((
        format!("LIST {} pods p50 / p99 ms", sizes.list_pods),
        col(&|f| f.list.cell()),
        "<= 100 ms",
    ));
    rows.push((
        "  LIST response size MB".into(),
        col(&|f| format!("{:.1}", f.list_bytes as f64 / 1e6)),
        "",
    ));
    for watchers in [1, sizes.watchers_many] {
        let level = |f: &Figures| f.watch_at(watchers).cloned().unwrap_or_default();
        rows.push((
            format!("watch delivery p50 / p99 ms, {watchers} watchers"),
            col(&|f| level(f).latency.cell()),
            if watchers == sizes.watchers_many {
                "p99 <= 5 ms"
            } else {
                ""
            },
        ));
        rows.push((
            "  CPU, server / bench, % of a core".into(),
            col(&|f| cpu(level(f).server_cores, level(f).client_cores)),
            "",
        ));
    }
    rows.push((
        "server RSS idle MB".into(),
        col(&|f| format!("{:.1}", mb(f.rss_idle_kb))),
        "<= 50 MB",
    ));
    let stored = results.first().map(|(_, f)| f.stored_pods).unwrap_or(0);
    rows.push((
        format!("server RSS with {stored} pods stored MB"),
        col(&|f| format!("{:.1}", mb(f.rss_loaded_kb))),
        "",
    ));
    rows.push((
        "  etcd process RSS idle / loaded MB".into(),
        col(&|f| match (f.etcd_rss_idle_kb, f.etcd_rss_loaded_kb) {
            (Some(idle), Some(loaded)) => format!("{:.1} / {:.1}", mb(idle), mb(loaded)),
            _ => "-".into(),
        }),
        "",
    ));
    let load = results.first().map(|(_, f)| f.load_pods).unwrap_or(0);
    rows.push((
        format!("  time to create {load} of them, {LOAD_CLIENTS} clients, s"),
        col(&|f| {
            let rate = f.load_pods as f64 / f.load_secs.max(1e-9);
            format!("{:.1} ({rate:.0}/s)", f.load_secs)
        }),
        "",
    ));
    rows
}

/// The comparison table: one row per figure, one column per backend, the target last; then
/// how it was measured and the target checks.
pub fn table(results: &Results, sizes: &Sizes) -> String {
    let rows = rows(results, sizes);
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let cell_w = rows
        .iter()
        .flat_map(|r| r.1.iter().map(String::len))
        .chain(results.iter().map(|(n, _)| n.len()))
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    let line = |out: &mut String, label: &str, cells: &[String], target: &str| {
        let mut s = format!("{label:<label_w$}");
        for c in cells {
            s.push_str(&format!("{c:>cell_w$}"));
        }
        s.push_str(&format!("   {target}"));
        out.push_str(s.trim_end());
        out.push('\n');
    };
    let names: Vec<String> = results.iter().map(|(n, _)| n.clone()).collect();
    line(&mut out, "measurement", &names, "target");
    for (label, cells, target) in &rows {
        line(&mut out, label, cells, target);
    }
    out.push_str(&format!(
        "\nCreates, GET and LIST: HTTP/1.1, one TLS connection per client. Watches: HTTP/2, \
         {WATCHES_PER_CONN} streams per TLS connection.\nCreate latency: request sent to \
         response read. Watch delivery: create request sent to its ADDED event read, at every \
         watcher.\n"
    ));
    if sizes.quick {
        out.push_str("Quick run: counts are smaller than the targets assume.\n");
    }
    out.push_str("\nTargets:\n");
    for c in checks(results, sizes) {
        let verdict = if c.met { "MET" } else { "MISSED" };
        out.push_str(&format!("  {verdict:<7} {}: {}\n", c.target, c.measured));
    }
    out
}

/// The run as JSON: sizes, per-backend figures, target checks.
pub fn json(results: &Results, sizes: &Sizes) -> serde_json::Value {
    let mut backends = serde_json::Map::new();
    for (name, f) in results {
        backends.insert(
            name.clone(),
            serde_json::json!({
                "creates": f.creates.iter().map(|c| serde_json::json!({
                    "clients": c.clients, "per_second": c.per_second, "latency": c.latency.json(),
                    "server_cores": c.server_cores, "client_cores": c.client_cores,
                })).collect::<Vec<_>>(),
                "get": f.get.json(),
                "list": {"items": f.list_items, "bytes": f.list_bytes, "latency": f.list.json()},
                "watch": f.watch.iter().map(|w| serde_json::json!({
                    "watchers": w.watchers, "http2_connections": w.connections,
                    "latency": w.latency.json(),
                    "server_cores": w.server_cores, "client_cores": w.client_cores,
                })).collect::<Vec<_>>(),
                "rss_idle_mb": mb(f.rss_idle_kb),
                "rss_loaded_mb": mb(f.rss_loaded_kb),
                "etcd_rss_idle_mb": f.etcd_rss_idle_kb.map(mb),
                "etcd_rss_loaded_mb": f.etcd_rss_loaded_kb.map(mb),
                "stored_pods": f.stored_pods,
                "load": {"pods": f.load_pods, "clients": LOAD_CLIENTS, "seconds": f.load_secs},
            }),
        );
    }
    serde_json::json!({
        "quick": sizes.quick,
        "protocols": {
            "requests": "HTTP/1.1, one TLS connection per client",
            "watches": format!("HTTP/2, {WATCHES_PER_CONN} streams per TLS connection"),
        },
        "sizes": {
            "creates_per_level": sizes.creates_per_level, "list_pods": sizes.list_pods,
            "lists": sizes.lists, "gets": sizes.gets, "watchers": sizes.watchers_many,
            "watch_events": sizes.watch_events, "rss_pods": sizes.rss_pods,
        },
        "backends": backends,
        "checks": checks(results, sizes).iter().map(|c| serde_json::json!({
            "target": c.target, "measured": c.measured, "met": c.met,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{CreateLevel, WatchLevel};
    use crate::stats::Summary;
    use std::time::Duration;

    type Run = (String, Figures);

    fn figures(rate: f64, create_ms: u64, list_ms: u64, watch_ms: u64, idle_mb: u64) -> Figures {
        let ms = |v| Summary::of(vec![Duration::from_millis(v)]);
        Figures {
            creates: CREATE_CLIENTS
                .iter()
                .map(|&clients| CreateLevel {
                    clients,
                    per_second: rate,
                    latency: ms(create_ms),
                    ..Default::default()
                })
                .collect(),
            list: ms(list_ms),
            watch: vec![WatchLevel {
                watchers: 1000,
                latency: ms(watch_ms),
                ..Default::default()
            }],
            rss_idle_kb: idle_mb * 1024,
            ..Default::default()
        }
    }

    fn verdicts(results: &Results) -> Vec<(String, bool)> {
        checks(results, &Sizes::new(false))
            .into_iter()
            .map(|c| (c.target, c.met))
            .collect()
    }

    #[test]
    fn targets() {
        let good = figures(4000.0, 5, 80, 3, 30);
        let bad = figures(1000.0, 20, 150, 9, 60);
        let pair = |e: &Figures, d: &Figures| -> Vec<Run> {
            vec![("embedded".into(), e.clone()), ("etcd".into(), d.clone())]
        };
        // (results, verdicts of [ratio (with etcd only), create, list, watch, rss] for embedded)
        let cases: [(Vec<Run>, Vec<bool>); 4] = [
            (pair(&good, &bad), vec![true, true, true, true, true]),
            (pair(&bad, &good), vec![false, false, false, false, false]),
            // 4000/s against 2000/s is exactly 2x: met.
            (
                pair(&good, &figures(2000.0, 5, 80, 3, 30)),
                vec![true, true, true, true, true],
            ),
            // Without etcd there is no ratio to check.
            (
                vec![("embedded".into(), bad.clone())],
                vec![false, false, false, false],
            ),
        ];
        for (results, want) in cases {
            let got: Vec<bool> = verdicts(&results)
                .into_iter()
                .filter(|(t, _)| !t.starts_with("[etcd]"))
                .map(|(_, met)| met)
                .collect();
            assert_eq!(got, want, "{:?}", verdicts(&results));
        }
    }

    #[test]
    fn table_and_json_carry_the_figures() {
        let results: Vec<Run> = vec![
            ("embedded".into(), figures(4321.0, 5, 80, 3, 30)),
            ("etcd".into(), figures(1234.0, 20, 150, 9, 60)),
        ];
        let sizes = Sizes::new(false);
        let t = table(&results, &sizes);
        for want in [
            "4321", "1234", "3.50x", "MET", "MISSED", "HTTP/2", "embedded", "etcd",
        ] {
            assert!(t.contains(want), "{want} missing from\n{t}");
        }
        let j = json(&results, &sizes);
        assert_eq!(j["backends"]["etcd"]["creates"][1]["per_second"], 1234.0);
        assert_eq!(j["backends"]["embedded"]["rss_idle_mb"], 30.0);
        assert_eq!(j["checks"][0]["met"], true);
    }
}
