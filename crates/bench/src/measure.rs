//! The measurements against one running server: creates at several concurrency levels, GET and
//! LIST latency, watch delivery (in [`crate::watch`]), and RSS idle and with many pods stored.

use crate::client::{pod, Tls};
use crate::figures::{CreateLevel, Figures, Sizes, CREATE_CLIENTS, LOAD_CLIENTS};
use crate::procs::{self, Etcd, Server};
use crate::stats::Summary;
use crate::watch;
use anyhow::Result;
use std::time::{Duration, Instant};

/// CPU use of the server and of this process over a stretch of time, in cores.
pub struct CpuMeter {
    server0: f64,
    client0: f64,
    start: Instant,
}

impl CpuMeter {
    pub fn start(server: &Server) -> CpuMeter {
        CpuMeter {
            server0: server.cpu_secs(),
            client0: procs::own_cpu_secs(),
            start: Instant::now(),
        }
    }

    /// (server cores, client cores) since `start`.
    pub fn cores(&self, server: &Server) -> (f64, f64) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        (
            (server.cpu_secs() - self.server0) / secs,
            (procs::own_cpu_secs() - self.client0) / secs,
        )
    }
}

/// Run every measurement against `server` (on `etcd`, when given).
pub async fn run(server: &Server, etcd: Option<&Etcd>, sizes: &Sizes) -> Result<Figures> {
    let tls = Tls::from_data_dir(&server.data_dir(), server.port)?;
    tls.wait_ready(Duration::from_secs(60)).await?;
    let mut f = Figures {
        rss_idle_kb: server.rss_kb()?,
        etcd_rss_idle_kb: etcd.map(Etcd::rss_kb).transpose()?,
        ..Default::default()
    };
    eprintln!("  idle RSS {:.1} MB", f.rss_idle_kb as f64 / 1024.0);
    let mut admin = tls.connect().await?;
    for ns in ["bench", "list", "watch", "load"] {
        let body =
            serde_json::json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": ns}});
        admin
            .call(
                "POST",
                "/api/v1/namespaces",
                Some(serde_json::to_vec(&body)?),
            )
            .await?;
    }

    // 1. Creates at 1, 16 and 64 clients.
    for clients in CREATE_CLIENTS {
        let meter = CpuMeter::start(server);
        let (per_second, latency) = creates(
            &tls,
            "bench",
            &format!("c{clients}-"),
            clients,
            sizes.creates_per_level,
        )
        .await?;
        let (server_cores, client_cores) = meter.cores(server);
        eprintln!(
            "  creates at {clients} clients: {per_second:.0}/s, {} (server {:.0}%, bench {:.0}% of a core)",
            latency.short(),
            server_cores * 100.0,
            client_cores * 100.0
        );
        f.creates.push(CreateLevel {
            clients,
            per_second,
            latency,
            server_cores,
            client_cores,
        });
    }

    // 2. GET of one pod, LIST of a namespace's pods.
    let mut lat = Vec::with_capacity(sizes.gets);
    for _ in 0..sizes.gets {
        let t = Instant::now();
        admin
            .call("GET", "/api/v1/namespaces/bench/pods/c16-0", None)
            .await?;
        lat.push(t.elapsed());
    }
    f.get = Summary::of(lat);
    eprintln!("  GET: {}", f.get.short());
    creates(&tls, "list", "l-", LOAD_CLIENTS, sizes.list_pods).await?;
    let mut lat = Vec::with_capacity(sizes.lists);
    for _ in 0..sizes.lists {
        let t = Instant::now();
        let body = admin
            .call("GET", "/api/v1/namespaces/list/pods", None)
            .await?;
        lat.push(t.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        f.list_items = v["items"].as_array().map(Vec::len).unwrap_or(0);
        f.list_bytes = body.len();
        anyhow::ensure!(
            f.list_items == sizes.list_pods,
            "LIST returned {} of {} pods",
            f.list_items,
            sizes.list_pods
        );
    }
    f.list = Summary::of(lat);
    eprintln!(
        "  LIST of {} pods ({:.1} MB): {}",
        f.list_items,
        f.list_bytes as f64 / 1e6,
        f.list.short()
    );

    // 3. Watch delivery with 1 and with many watchers.
    for watchers in [1, sizes.watchers_many] {
        let level = watch::measure(server, &tls, watchers, sizes.watch_events).await?;
        eprintln!(
            "  watch delivery at {watchers} watchers: {} (server {:.0}%, bench {:.0}% of a core)",
            level.latency.short(),
            level.server_cores * 100.0,
            level.client_cores * 100.0
        );
        f.watch.push(level);
    }

    // 4. RSS with many pods stored.
    let before = sizes.stored_before_load();
    f.load_pods = sizes.rss_pods.saturating_sub(before);
    let t = Instant::now();
    creates(&tls, "load", "r-", LOAD_CLIENTS, f.load_pods).await?;
    f.load_secs = t.elapsed().as_secs_f64();
    f.stored_pods = before + f.load_pods;
    // Let background work (compaction, caches) settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.rss_loaded_kb = server.rss_kb()?;
    f.etcd_rss_loaded_kb = etcd.map(Etcd::rss_kb).transpose()?;
    eprintln!(
        "  stored {} more pods in {:.1} s; RSS with {} pods {:.1} MB",
        f.load_pods,
        f.load_secs,
        f.stored_pods,
        f.rss_loaded_kb as f64 / 1024.0
    );
    Ok(f)
}

/// `total` creates of distinct pods spread over `clients` HTTP/1.1 connections, each client
/// sending its next request when the previous answered; returns (creates/s, latency).
pub async fn creates(
    tls: &Tls,
    ns: &str,
    prefix: &str,
    clients: usize,
    total: usize,
) -> Result<(f64, Summary)> {
    let clients = clients.clamp(1, total.max(1));
    // Connect first, so connection setup is not in the figures.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(tls.connect().await?);
    }
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (c, mut conn) in conns.into_iter().enumerate() {
        let (path, prefix) = (path.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            // Client c creates pods c, c + clients, c + 2·clients, …
            let mut lat = Vec::with_capacity(total / clients + 1);
            for n in (c..total).step_by(clients) {
                let body = pod(&format!("{prefix}{n}"));
                let t = Instant::now();
                conn.call("POST", &path, Some(body)).await?;
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
    Ok((all.len() as f64 / secs, Summary::of(all)))
}
