//! `capstan-bench`: the same `capstan server` on the embedded store and on etcd, measured side
//! by side in one run — creates/s and latency at 1/16/64 clients, GET and LIST latency, watch
//! delivery latency with 1 and 1000 watchers, RSS idle and with many pods. Every figure comes
//! from measurement in this run.

mod client;
mod procs;
mod stats;

use anyhow::Result;
use clap::Parser;
use client::{pod, Tls};
use http_body_util::BodyExt;
use stats::Summary;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark capstan on the embedded store and on etcd, side by side")]
struct Args {
    /// The capstan binary (default: next to this binary).
    #[arg(long)]
    capstan: Option<std::path::PathBuf>,
    /// Backends to run, comma-separated.
    #[arg(long, default_value = "embedded,etcd")]
    backends: String,
    /// Small counts, for a smoke test.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

struct Sizes {
    creates_per_level: usize,
    list_pods: usize,
    lists: usize,
    gets: usize,
    watchers_many: usize,
    watch_events: usize,
    rss_pods: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                creates_per_level: 200,
                list_pods: 1000,
                lists: 5,
                gets: 50,
                watchers_many: 100,
                watch_events: 30,
                rss_pods: 5000,
            }
        } else {
            Sizes {
                creates_per_level: 3000,
                list_pods: 10_000,
                lists: 20,
                gets: 500,
                watchers_many: 1000,
                watch_events: 200,
                rss_pods: 100_000,
            }
        }
    }
}

#[derive(Default, Clone)]
struct Figures {
    creates: Vec<(usize, f64, Summary)>,
    get: Summary,
    list: Summary,
    list_items: usize,
    watch: Vec<(usize, Summary)>,
    /// Server CPU use during each watch measurement, in cores.
    watch_server_cpu: Vec<f64>,
    rss_idle_kb: u64,
    rss_loaded_kb: u64,
    loaded_pods: usize,
    load_secs: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sizes = Sizes::new(args.quick);
    let capstan = args.capstan.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("current exe")
            .with_file_name("capstan")
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut results: Vec<(String, Figures)> = Vec::new();
    for backend in args
        .backends
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        eprintln!("== {backend}");
        let etcd = if backend == "etcd" {
            Some(procs::Etcd::start()?)
        } else {
            None
        };
        let server = procs::Server::start(&capstan, etcd.as_ref().map(|e| e.endpoint.as_str()))?;
        let figures = rt.block_on(run(&server, &sizes))?;
        results.push((backend.to_string(), figures));
        drop(server);
        drop(etcd);
    }
    print_table(&results, &sizes);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&to_json(&results))?)?;
    }
    Ok(())
}

async fn run(server: &procs::Server, sizes: &Sizes) -> Result<Figures> {
    let tls = Tls::from_data_dir(server.dir.path(), server.port)?;
    let mut f = Figures {
        rss_idle_kb: server.rss_kb(),
        ..Default::default()
    };
    let mut admin = tls.connect().await?;
    for ns in ["bench", "list", "watch", "load"] {
        let body = serde_json::to_vec(
            &serde_json::json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": ns}}),
        )?;
        admin.call("POST", "/api/v1/namespaces", Some(body)).await?;
    }
    // 1. creates at 1, 16, 64 clients.
    for clients in [1usize, 16, 64] {
        let (rate, lat) = creates(
            &tls,
            "bench",
            &format!("c{clients}-"),
            clients,
            sizes.creates_per_level,
        )
        .await?;
        eprintln!("creates at {clients}: {rate:.0}/s {}", lat.short());
        f.creates.push((clients, rate, lat));
    }
    // 2. GET and LIST.
    let mut lat = Vec::new();
    for i in 0..sizes.gets {
        let t = Instant::now();
        admin
            .call(
                "GET",
                &format!(
                    "/api/v1/namespaces/bench/pods/c16-{}",
                    i % sizes.creates_per_level
                ),
                None,
            )
            .await?;
        lat.push(t.elapsed());
    }
    f.get = Summary::of(&mut lat);
    creates(&tls, "list", "l-", 64, sizes.list_pods).await?;
    let mut lat = Vec::new();
    for _ in 0..sizes.lists {
        let t = Instant::now();
        let body = admin
            .call("GET", "/api/v1/namespaces/list/pods", None)
            .await?;
        lat.push(t.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        f.list_items = v["items"].as_array().map(Vec::len).unwrap_or(0);
    }
    f.list = Summary::of(&mut lat);
    eprintln!("list of {}: {}", f.list_items, f.list.short());
    // 3. watch delivery.
    for watchers in [1usize, sizes.watchers_many] {
        let (cpu0, t0) = (server.cpu_secs(), Instant::now());
        let s = watch_latency(&tls, watchers, sizes.watch_events).await?;
        let share = (server.cpu_secs() - cpu0) / t0.elapsed().as_secs_f64();
        eprintln!(
            "watch delivery at {watchers} watchers: {} (server used {:.0}% of a core)",
            s.short(),
            share * 100.0
        );
        f.watch.push((watchers, s));
        f.watch_server_cpu.push(share);
    }
    // 4. RSS with many pods stored.
    let already = 3 * sizes.creates_per_level + sizes.list_pods + 2 * sizes.watch_events;
    let more = sizes.rss_pods.saturating_sub(already);
    let t = Instant::now();
    creates(&tls, "load", "r-", 64, more).await?;
    f.load_secs = t.elapsed().as_secs_f64();
    f.loaded_pods = already + more;
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rss_loaded_kb = server.rss_kb();
    Ok(f)
}

/// `total` creates spread over `clients` connections; returns (creates/s, latency summary).
async fn creates(
    tls: &Tls,
    ns: &str,
    prefix: &str,
    clients: usize,
    total: usize,
) -> Result<(f64, Summary)> {
    let per = total.div_ceil(clients.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let tls = tls.clone();
        let (ns, prefix) = (ns.to_string(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = tls.connect().await?;
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let n = c * per + i;
                if n >= total {
                    break;
                }
                let body = pod(&format!("{prefix}{n}"));
                let t = Instant::now();
                conn.call("POST", &format!("/api/v1/namespaces/{ns}/pods"), Some(body))
                    .await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((all.len() as f64 / secs, Summary::of(&mut all)))
}

/// Watch streams per HTTP/2 connection in the watch measurement.
const WATCHES_PER_CONN: usize = 100;

/// Open `watchers` watches on the "watch" namespace, then create `events` pods a few ms apart;
/// latency = event received at a watcher − create request sent.
async fn watch_latency(tls: &Tls, watchers: usize, events: usize) -> Result<Summary> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let samples: Arc<Mutex<Vec<Duration>>> = Default::default();
    let mut admin = tls.connect().await?;
    let list = admin
        .call("GET", "/api/v1/namespaces/watch/pods?limit=1", None)
        .await?;
    let rv = serde_json::from_slice::<serde_json::Value>(&list)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let tag = format!("w{watchers}-");
    let mut handles = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    // Watches are multiplexed over HTTP/2 connections, WATCHES_PER_CONN streams each, as
    // client-go does with its shared transport.
    let mut conns = Vec::new();
    for _ in 0..watchers.div_ceil(WATCHES_PER_CONN) {
        conns.push(tls.connect_h2().await?);
    }
    for w in 0..watchers {
        let mut conn = conns[w / WATCHES_PER_CONN].clone();
        let (sent, samples, rv, tag, ready) = (
            sent.clone(),
            samples.clone(),
            rv.clone(),
            tag.clone(),
            ready_tx.clone(),
        );
        handles.push(tokio::spawn(async move {
            let resp = conn
                .get(&format!("/api/v1/namespaces/watch/pods?watch=true&resourceVersion={rv}&timeoutSeconds=120"))
                .await?;
            let _ = ready.send(()).await;
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut seen = 0;
            while seen < events {
                let Some(frame) = body.frame().await else { break };
                let Ok(data) = frame?.into_data() else { continue };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    // Cheap scan instead of a full parse, so the client's CPU use does not
                    // dominate on a 2-core machine: the type and the pod's name.
                    let added = line.starts_with(br#"{"type":"ADDED""#);
                    let name = name_in(&line, &tag);
                    if let (true, Some(name)) = (added, name) {
                        if let Some(t) = sent.lock().unwrap().get(&name) {
                            samples.lock().unwrap().push(now - *t);
                        }
                        seen += 1;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..events {
        let name = format!("{tag}{i}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        admin
            .call("POST", "/api/v1/namespaces/watch/pods", Some(pod(&name)))
            .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for h in handles {
        tokio::time::timeout(Duration::from_secs(60), h).await???;
    }
    let mut s = samples.lock().unwrap().clone();
    anyhow::ensure!(
        s.len() == watchers * events,
        "watchers saw {} of {} events",
        s.len(),
        watchers * events
    );
    Ok(Summary::of(&mut s))
}

/// The first `"name":"<tag>…"` value in a watch line.
fn name_in(line: &[u8], tag: &str) -> Option<String> {
    let needle = format!("\"name\":\"{tag}");
    let text = std::str::from_utf8(line).ok()?;
    let at = text.find(&needle)? + "\"name\":\"".len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_string())
}

fn print_table(results: &[(String, Figures)], sizes: &Sizes) {
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    println!();
    println!(
        "{:<44} {}",
        "measurement",
        names.iter().map(|n| format!("{n:>24}")).collect::<String>()
    );
    let row = |label: &str, cells: Vec<String>| {
        println!(
            "{label:<44} {}",
            cells.iter().map(|c| format!("{c:>24}")).collect::<String>()
        );
    };
    for (i, clients) in [1usize, 16, 64].iter().enumerate() {
        row(
            &format!("creates/s, {clients} clients"),
            results
                .iter()
                .map(|(_, f)| format!("{:.0}", f.creates[i].1))
                .collect(),
        );
        row(
            &format!("  create p50/p99 ms, {clients} clients"),
            results
                .iter()
                .map(|(_, f)| f.creates[i].2.p50_p99())
                .collect(),
        );
    }
    row(
        "GET pod p50/p99 ms",
        results.iter().map(|(_, f)| f.get.p50_p99()).collect(),
    );
    row(
        &format!("LIST {} pods p50/p99 ms", sizes.list_pods),
        results.iter().map(|(_, f)| f.list.p50_p99()).collect(),
    );
    for (i, w) in [1usize, sizes.watchers_many].iter().enumerate() {
        row(
            &format!("watch delivery p50/p99 ms, {w} watchers"),
            results
                .iter()
                .map(|(_, f)| f.watch[i].1.p50_p99())
                .collect(),
        );
    }
    for (i, w) in [1usize, sizes.watchers_many].iter().enumerate() {
        row(
            &format!("  server CPU during it, {w} watchers"),
            results
                .iter()
                .map(|(_, f)| format!("{:.0}% of a core", f.watch_server_cpu[i] * 100.0))
                .collect(),
        );
    }
    row(
        "RSS idle MB",
        results
            .iter()
            .map(|(_, f)| format!("{:.1}", f.rss_idle_kb as f64 / 1024.0))
            .collect(),
    );
    row(
        &format!(
            "RSS with {} pods stored MB",
            results.first().map(|(_, f)| f.loaded_pods).unwrap_or(0)
        ),
        results
            .iter()
            .map(|(_, f)| format!("{:.1}", f.rss_loaded_kb as f64 / 1024.0))
            .collect(),
    );
    row(
        "  time to store them s",
        results
            .iter()
            .map(|(_, f)| format!("{:.1}", f.load_secs))
            .collect(),
    );
    println!();
    println!("Targets (checked on this run):");
    let get = |n: &str| results.iter().find(|(b, _)| b == n).map(|(_, f)| f);
    if let Some(e) = get("embedded") {
        if let Some(d) = get("etcd") {
            let ratio = e.creates[1].1 / d.creates[1].1.max(1.0);
            println!(
                "  embedded creates/s >= 2x etcd at 16 clients: {ratio:.2}x  {}",
                verdict(ratio >= 2.0)
            );
        }
        let p99 = e.creates[1].2.p99_ms();
        println!(
            "  create p99 <= 10 ms at 16 clients (embedded): {p99:.2} ms  {}",
            verdict(p99 <= 10.0)
        );
        let l = e.list.p50_ms();
        println!(
            "  list of {} pods <= 100 ms (embedded p50): {l:.1} ms  {}",
            sizes.list_pods,
            verdict(l <= 100.0)
        );
        let w = e.watch[1].1.p99_ms();
        println!(
            "  watch delivery p99 <= 5 ms at {} watchers (embedded): {w:.2} ms  {}",
            sizes.watchers_many,
            verdict(w <= 5.0)
        );
        let r = e.rss_idle_kb as f64 / 1024.0;
        println!(
            "  idle RSS <= 50 MB (embedded): {r:.1} MB  {}",
            verdict(r <= 50.0)
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

fn to_json(results: &[(String, Figures)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, f) in results {
        out.insert(
            name.clone(),
            serde_json::json!({
                "creates": f.creates.iter().map(|(c, r, s)| serde_json::json!({"clients": c, "per_second": r, "p50_ms": s.p50_ms(), "p99_ms": s.p99_ms()})).collect::<Vec<_>>(),
                "get": {"p50_ms": f.get.p50_ms(), "p99_ms": f.get.p99_ms()},
                "list": {"items": f.list_items, "p50_ms": f.list.p50_ms(), "p99_ms": f.list.p99_ms()},
                "watch": f.watch.iter().map(|(w, s)| serde_json::json!({"watchers": w, "p50_ms": s.p50_ms(), "p99_ms": s.p99_ms()})).collect::<Vec<_>>(),
                "rss_idle_mb": f.rss_idle_kb as f64 / 1024.0,
                "rss_loaded_mb": f.rss_loaded_kb as f64 / 1024.0,
                "loaded_pods": f.loaded_pods,
                "load_seconds": f.load_secs,
            }),
        );
    }
    serde_json::Value::Object(out)
}
