//! The pod startup benchmark (issue #3): a real `capstan server` with its node agent, pods
//! created through the API and timed until a watch shows them Running — one at a time and in
//! a burst — side by side with the raw CRI path (the same sandbox + container issued directly
//! to the same containerd), plus the RSS of the process that runs the agent.
//!
//! One at a time, the two paths alternate pod by pod, so drift on the machine affects both
//! alike; each pod is gone (API and CRI) before the next starts.

pub mod api;
mod figures;
pub mod node;
mod raw;
pub mod report;

pub use figures::{Burst, PodFigures, PodPlan};

use crate::client::{Conn, Tls};
use crate::stats::Summary;
use anyhow::{Context, Result};
use capstan_agent::cri::Runtime;
use node::NodeServer;
use std::path::Path;
use std::time::{Duration, Instant};

/// Why the pod benchmark cannot run here (root and containerd, runc, gcc, busybox-static
/// are needed), or None.
pub fn missing_prerequisites() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Some("needs root".into());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for bin in ["containerd", "ctr", "runc", "gcc"] {
        if !std::env::split_paths(&path).any(|d| d.join(bin).is_file()) {
            return Some(format!("{bin} not on PATH"));
        }
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox missing (apt-get install busybox-static)".into());
    }
    None
}

/// Run the whole pod benchmark against a fresh server started from `bin`.
pub fn run(rt: &tokio::runtime::Runtime, bin: &Path, sizes: &PodPlan) -> Result<PodFigures> {
    let no_agent = rt.block_on(rss_without_agent(bin))?;
    let node = NodeServer::start(bin, &sizes.runtime)?;
    let result = rt.block_on(async {
        let r = measure(&node, sizes).await;
        let c = cleanup(&node).await;
        let r = match r {
            Ok(mut f) => match separate_agent(bin, sizes).await {
                Ok((idle, busy)) => {
                    f.agent_rss_idle_kb = Some(idle);
                    f.agent_rss_pods_kb = Some(busy);
                    f.agent_note = "a separate `capstan agent` process (the same agent code \
                        `capstan server` runs in-process), joined to a --disable-agent server"
                        .into();
                    Ok(f)
                }
                Err(e) => {
                    f.agent_note = format!("separate agent not measured: {e:#}");
                    Ok(f)
                }
            },
            e => e,
        };
        match (r, c) {
            (Ok(f), Ok(())) => Ok(PodFigures {
                server_no_agent_rss_kb: no_agent,
                ..f
            }),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    });
    result.with_context(|| format!("pod benchmark; server log:\n{}", node.log_tail()))
}

/// VmRSS of an idle `capstan server --disable-agent` (the API server alone), in KiB.
async fn rss_without_agent(bin: &Path) -> Result<u64> {
    let server = crate::procs::Server::start(bin, None)?;
    let tls = Tls::from_data_dir(&server.data_dir(), server.port)?;
    tls.wait_ready(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.rss_kb()
}

/// CPU use of the server, containerd, this process and the whole machine over a stretch of
/// time.
struct Meter {
    at: Instant,
    cpu: [f64; 4],
}

impl Meter {
    fn start(node: &NodeServer) -> Meter {
        Meter {
            at: Instant::now(),
            cpu: Self::now(node),
        }
    }

    fn now(node: &NodeServer) -> [f64; 4] {
        [
            node.cpu_secs(),
            node.containerd_cpu_secs(),
            crate::procs::own_cpu_secs(),
            crate::procs::machine_busy_secs(),
        ]
    }

    fn cores(&self, node: &NodeServer) -> [f64; 4] {
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let now = Self::now(node);
        std::array::from_fn(|i| (now[i] - self.cpu[i]) / secs)
    }
}

/// Poll CRI until Capstan pod `uid` has no sandbox left; the instant it was seen gone.
async fn sandbox_gone(rt: &mut Runtime, uid: &str) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if raw::sandboxes_of(rt, uid).await? == 0 {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sandbox of pod {uid} is still there after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One Capstan pod: (create → Running, DELETE → DELETED, DELETE → no sandbox in CRI).
async fn capstan_one(
    w: &api::Watcher,
    conn: &mut Conn,
    rt: &mut Runtime,
    name: &str,
) -> Result<(Duration, Duration, Duration)> {
    let t0 = Instant::now();
    let uid = api::create(conn, name).await?;
    let running = w.running(name).await? - t0;
    let t1 = Instant::now();
    api::delete(conn, name).await?;
    let deleted = w.deleted(name).await? - t1;
    let gone = sandbox_gone(rt, &uid).await? - t1;
    Ok((running, deleted, gone))
}

async fn measure(node: &NodeServer, sizes: &PodPlan) -> Result<PodFigures> {
    let tls = Tls::from_data_dir(&node.data_dir(), node.port)?;
    tls.wait_ready(Duration::from_secs(60)).await?;
    api::prepare(&tls).await?;
    let mut rt = capstan_agent::cri::connect(&node.containerd_socket()).await?;
    let logs = raw::log_root(&node.data_dir());
    let w = api::Watcher::start(&tls).await?;
    let mut conn = tls.connect().await?;
    let mut f = PodFigures::default();

    // Warm-up: one pod on each path.
    capstan_one(&w, &mut conn, &mut rt, "warm-0").await?;
    let s = raw::start(rt.clone(), &sizes.runtime, "raw-warm", "raw-warm", &logs).await?;
    raw::remove(rt.clone(), &s, &logs).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.server_rss_idle_kb = node.rss_kb()?;
    f.containerd_rss_idle_kb = node.containerd_rss_kb().unwrap_or(0);
    eprintln!(
        "  node Ready, warmed up; server RSS {:.1} MB",
        f.server_rss_idle_kb as f64 / 1024.0
    );

    f.load_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    // One at a time, the two paths alternating.
    let tag = std::process::id();
    let (mut single, mut del_api, mut del_node) = (vec![], vec![], vec![]);
    let (mut raw_started, mut raw_running, mut raw_remove) = (vec![], vec![], vec![]);
    for i in 0..sizes.sequential {
        let (r, d, g) = capstan_one(&w, &mut conn, &mut rt, &format!("one-{i}")).await?;
        single.push(r);
        del_api.push(d);
        del_node.push(g);
        let name = format!("raw-one-{i}");
        let uid = format!("raw-{tag}-one-{i}");
        let s = raw::start(rt.clone(), &sizes.runtime, &name, &uid, &logs).await?;
        raw_started.push(s.started);
        raw_running.push(s.running);
        raw_remove.push(raw::remove(rt.clone(), &s, &logs).await?);
    }
    f.single = Summary::of(single);
    f.delete_api = Summary::of(del_api);
    f.delete_node = Summary::of(del_node);
    f.raw_started = Summary::of(raw_started);
    f.raw_single = Summary::of(raw_running);
    f.raw_remove = Summary::of(raw_remove);
    eprintln!(
        "  one at a time: capstan {}; raw CRI {}",
        f.single.short(),
        f.raw_single.short()
    );

    // A burst through Capstan.
    let mut conns = Vec::with_capacity(sizes.burst);
    for _ in 0..sizes.burst {
        conns.push(tls.connect().await?);
    }
    let meter = Meter::start(node);
    let t_start = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let name = format!("burst-{i}");
            let t0 = Instant::now();
            let uid = api::create(&mut c, &name).await?;
            anyhow::Ok((name, uid, t0, c))
        }));
    }
    let (mut created, mut conns) = (Vec::new(), Vec::new());
    for t in tasks {
        let (name, uid, t0, c) = t.await??;
        created.push((name, uid, t0));
        conns.push(c);
    }
    let (mut lat, mut last) = (Vec::new(), t_start);
    for (name, _, t0) in &created {
        let at = w.running(name).await?;
        lat.push(at - *t0);
        last = last.max(at);
    }
    f.burst.cpu = meter.cores(node);
    f.burst.wall_ms = (last - t_start).as_secs_f64() * 1e3;
    f.burst.latency = Summary::of(lat);
    // Let the agent settle (a relist, status writes) before reading RSS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.server_rss_pods_kb = node.rss_kb()?;
    f.containerd_rss_pods_kb = node.containerd_rss_kb().unwrap_or(0);
    f.shims_rss_pods_kb = node.shims_rss_kb();
    eprintln!(
        "  burst of {}: {} (all Running after {:.0} ms); server RSS {:.1} MB",
        sizes.burst,
        f.burst.latency.short(),
        f.burst.wall_ms,
        f.server_rss_pods_kb as f64 / 1024.0
    );
    let t_del = Instant::now();
    let mut tasks = Vec::new();
    for ((name, _, _), mut c) in created.iter().cloned().zip(conns) {
        tasks.push(tokio::spawn(
            async move { api::delete(&mut c, &name).await },
        ));
    }
    for t in tasks {
        t.await??;
    }
    for (name, uid, _) in &created {
        w.deleted(name).await?;
        sandbox_gone(&mut rt, uid).await?;
    }
    f.burst.teardown_ms = t_del.elapsed().as_secs_f64() * 1e3;

    // A burst through raw CRI.
    let meter = Meter::start(node);
    let t_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..sizes.burst {
        let (rt, logs, handler) = (rt.clone(), logs.clone(), sizes.runtime.clone());
        tasks.push(tokio::spawn(async move {
            let uid = format!("raw-{tag}-burst-{i}");
            raw::start(rt, &handler, &format!("raw-burst-{i}"), &uid, &logs).await
        }));
    }
    let mut started = Vec::new();
    for t in tasks {
        started.push(t.await??);
    }
    f.raw_burst.cpu = meter.cores(node);
    let last = started.iter().map(|s| s.at).max().unwrap_or(t_start);
    f.raw_burst.wall_ms = (last - t_start).as_secs_f64() * 1e3;
    f.raw_burst.latency = Summary::of(started.iter().map(|s| s.running).collect());
    f.raw_burst_started = Summary::of(started.iter().map(|s| s.started).collect());
    eprintln!(
        "  raw CRI burst of {}: {} (all running after {:.0} ms)",
        sizes.burst,
        f.raw_burst.latency.short(),
        f.raw_burst.wall_ms
    );
    let t_del = Instant::now();
    let mut tasks = Vec::new();
    for s in started {
        let (rt, logs) = (rt.clone(), logs.clone());
        tasks.push(tokio::spawn(
            async move { raw::remove(rt, &s, &logs).await },
        ));
    }
    for t in tasks {
        t.await??;
    }
    f.raw_burst.teardown_ms = t_del.elapsed().as_secs_f64() * 1e3;
    Ok(f)
}

/// The RSS of a separate `capstan agent` process (joined to a `--disable-agent` server) idle
/// and with a burst of pods running: the agent's own figure.
async fn separate_agent(bin: &Path, sizes: &PodPlan) -> Result<(u64, u64)> {
    let node = NodeServer::start_separate(bin, &sizes.runtime)?;
    let r = async {
        let tls = Tls::from_data_dir(&node.data_dir(), node.port)?;
        tls.wait_ready(Duration::from_secs(60)).await?;
        api::prepare(&tls).await?;
        let w = api::Watcher::start(&tls).await?;
        let mut conn = tls.connect().await?;
        let mut rt = capstan_agent::cri::connect(&node.containerd_socket()).await?;
        capstan_one(&w, &mut conn, &mut rt, "agent-warm").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = node.agent_rss_kb().context("agent RSS")?;
        for i in 0..sizes.burst {
            api::create(&mut conn, &format!("agent-burst-{i}")).await?;
        }
        for i in 0..sizes.burst {
            w.running(&format!("agent-burst-{i}")).await?;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let busy = node.agent_rss_kb().context("agent RSS")?;
        anyhow::Ok((idle, busy))
    }
    .await;
    let c = cleanup(&node).await;
    let figures = r.with_context(|| format!("separate agent; log:\n{}", node.log_tail()))?;
    c?;
    Ok(figures)
}

/// Delete every pod and sandbox; wait (bounded) until CRI has none left.
async fn cleanup(node: &NodeServer) -> Result<()> {
    let Ok(tls) = Tls::from_data_dir(&node.data_dir(), node.port) else {
        return Ok(());
    };
    let _ = api::delete_all(&tls).await;
    let Ok(mut rt) = capstan_agent::cri::connect(&node.containerd_socket()).await else {
        return Ok(());
    };
    raw::remove_all(rt.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while raw::all_sandboxes(&mut rt).await.unwrap_or(0) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = raw::all_sandboxes(&mut rt).await.unwrap_or(0);
    if left > 0 {
        // The agent did not tear them down: remove them directly, so no container outlives
        // the run (containerd's shims would keep them running).
        raw::remove_every_sandbox(rt.clone()).await;
        anyhow::bail!("{left} sandboxes were left after deleting every pod");
    }
    Ok(())
}
