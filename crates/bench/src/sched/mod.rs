//! The scheduler benchmark (`--scheduler`): kube's scheduler_perf workloads end to end through
//! the API server. A fresh `capstan server --disable-agent` (its built-in scheduler running)
//! and `capstan agent --simulate N` (node-default nodes: 4 CPU, 32Gi, 110 pods, zone1); once
//! every node is Ready, each workload creates its init pods (64 in flight over one HTTP/2
//! connection) and waits until they are bound, then creates its measured pods the same way
//! while one watch on all pods records every bind and Running; then its pods are deleted
//! (grace 0) and gone before the next workload. Figures: scheduler_perf's SchedulingThroughput
//! (average of per-second bind counts), measured pods / (first create → last bind), creation
//! rate, create → bound / Running latencies, server and simulator RSS (VmRSS, VmHWM) and CPU.

pub mod figures;
pub mod report;
pub mod watch;
pub mod workloads;

use crate::client::Tls;
use crate::procs::{Server, Simulator};
use crate::stats::Summary;
use anyhow::{bail, Context, Result};
use capstan_agent::api::Api;
use figures::{SchedFigures, Throughput, WorkloadFigures};
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::{Kind, Role, Workload};

/// Creates in flight at once (scheduler_perf's clients multiplex over HTTP/2 too).
pub const CREATE_CONCURRENCY: usize = 64;
/// Node name prefix of the simulated nodes.
pub(crate) const PREFIX: &str = "sched-perf";

/// What to run.
#[derive(Clone, Debug)]
pub struct SchedPlan {
    pub nodes: usize,
    pub quick: bool,
    pub workloads: Vec<Kind>,
    /// Limit for each phase (init pods bound, measured pods bound).
    pub timeout: Duration,
    /// The simulated nodes' Lease renewal period.
    pub lease_seconds: u64,
}

impl SchedPlan {
    pub fn new(
        quick: bool,
        nodes: Option<usize>,
        workloads: Vec<Kind>,
        timeout: Option<u64>,
    ) -> SchedPlan {
        SchedPlan {
            nodes: nodes.unwrap_or(if quick { 500 } else { workloads::FULL_NODES }),
            quick,
            workloads,
            timeout: Duration::from_secs(timeout.unwrap_or(if quick { 180 } else { 600 })),
            lease_seconds: 10,
        }
    }
}

/// POST with a few retries on transport errors and 429/5xx; 409 (a retried create that had
/// gone through) counts as created.
pub(crate) async fn create(api: &Api, path: &str, body: &Value) -> Result<()> {
    let mut wait = Duration::from_millis(100);
    for attempt in 0..6 {
        match api.call_raw("POST", path, Some(body)).await {
            Ok((201 | 200, _)) => return Ok(()),
            Ok((409, _)) if attempt > 0 => return Ok(()),
            Ok((code, b)) if code == 429 || code >= 500 => {
                if attempt == 5 {
                    bail!("POST {path}: HTTP {code}: {}", String::from_utf8_lossy(&b));
                }
            }
            Ok((code, b)) => bail!("POST {path}: HTTP {code}: {}", String::from_utf8_lossy(&b)),
            Err(e) if attempt == 5 => return Err(e.context(format!("POST {path}"))),
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    unreachable!("the last attempt returns")
}

/// Create `names` from `role`'s template, [`CREATE_CONCURRENCY`] in flight; (sent, answered)
/// per pod.
async fn create_pods(
    api: &Api,
    w: &Workload,
    role: Role,
    names: &[String],
) -> Result<Vec<(Instant, Instant)>> {
    let ns = match role {
        Role::Init => &w.init_ns,
        Role::Measure => &w.measure_ns,
        Role::Churn => &w.churn_ns,
    };
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let results: Vec<(usize, Result<(Instant, Instant)>)> =
        futures::stream::iter(names.iter().enumerate())
            .map(|(i, name)| {
                let body = w.pod(role, name);
                let path = &path;
                async move {
                    let t0 = Instant::now();
                    let r = create(api, path, &body).await.map(|_| (t0, Instant::now()));
                    (i, r)
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect()
            .await;
    let mut out = vec![(Instant::now(), Instant::now()); names.len()];
    for (i, r) in results {
        out[i] = r?;
    }
    Ok(out)
}

/// Delete the pods by name (grace 0), [`CREATE_CONCURRENCY`] in flight.
pub(crate) async fn delete_pods(api: &Api, ns: &str, names: &[String]) {
    let body = json!({"gracePeriodSeconds": 0});
    futures::stream::iter(names)
        .for_each_concurrent(CREATE_CONCURRENCY, |name| {
            let (path, body) = (format!("/api/v1/namespaces/{ns}/pods/{name}"), &body);
            async move {
                for _ in 0..3 {
                    match api.call_raw("DELETE", &path, Some(body)).await {
                        Ok((200 | 202 | 404, _)) => return,
                        _ => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .await;
}

/// Wait until `done` holds (polled every 20 ms) or `deadline`; whether it held.
pub(crate) async fn until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn ensure_namespace(api: &Api, ns: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    match api
        .call_raw("POST", "/api/v1/namespaces", Some(&body))
        .await?
    {
        (201 | 409, _) => Ok(()),
        (code, b) => bail!(
            "creating namespace {ns}: HTTP {code}: {}",
            String::from_utf8_lossy(&b)
        ),
    }
}

/// Simulated nodes Ready so far.
pub(crate) async fn ready_nodes(api: &Api) -> Result<usize> {
    let (code, body) = api
        .call_raw(
            "GET",
            "/api/v1/nodes?labelSelector=sim.capstan.io%2Fsimulated%3Dsched-perf",
            None,
        )
        .await?;
    if code != 200 {
        bail!("listing nodes: HTTP {code}");
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct L {
        items: Vec<N>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct N {
        status: S,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct S {
        conditions: Vec<C>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct C {
        #[serde(rename = "type")]
        kind: String,
        status: String,
    }
    let l: L = serde_json::from_slice(&body)?;
    Ok(l.items
        .iter()
        .filter(|n| {
            n.status
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True")
        })
        .count())
}

struct Procs<'a> {
    server: &'a Server,
    sim: &'a Simulator,
}

impl Procs<'_> {
    fn cpu(&self) -> (f64, f64) {
        (self.server.cpu_secs(), self.sim.cpu_secs())
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Run one workload on the running cluster.
async fn run_workload(
    api: &Api,
    watcher: &watch::Watcher,
    procs: &Procs<'_>,
    w: Workload,
    plan: &SchedPlan,
) -> WorkloadFigures {
    let mut f = WorkloadFigures::new(w.clone(), plan.nodes);
    let init_names = names("init", w.init_pods);
    let measure_names = names("pod", w.measure_pods);
    let churn_names: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let r = measure_workload(
        api,
        watcher,
        procs,
        &w,
        plan,
        &mut f,
        &init_names,
        &measure_names,
        &churn_names,
    )
    .await;
    if let Err(e) = r {
        f.error = Some(format!("{e:#}"));
    }
    // After the measure phase (or wherever the workload stopped), before the cleanup.
    f.server_rss_kb = procs.server.rss_kb().unwrap_or(0);
    f.server_hwm_kb = procs.server.hwm_kb().unwrap_or(0);
    f.sim_rss_kb = procs.sim.rss_kb().unwrap_or(0);
    f.sim_hwm_kb = procs.sim.hwm_kb().unwrap_or(0);
    // Cleanup: every pod of the workload deleted and gone (the API, the scheduler's and the
    // simulator's views) before the next one.
    let t = Instant::now();
    let churn = churn_names.lock().expect("churn names").clone();
    for (ns, list) in [
        (&w.init_ns, &init_names),
        (&w.measure_ns, &measure_names),
        (&w.churn_ns, &churn),
    ] {
        delete_pods(api, ns, list).await;
    }
    let namespaces = w.namespaces();
    let gone = until(Instant::now() + Duration::from_secs(120), || {
        watcher.with(|s| namespaces.iter().all(|ns| s.live_in(ns) == 0))
    })
    .await;
    f.cleanup_secs = t.elapsed().as_secs_f64();
    if !gone && f.error.is_none() {
        f.error = Some("pods still there 120 s after their deletion".into());
    }
    f
}

#[allow(clippy::too_many_arguments)]
async fn measure_workload(
    api: &Api,
    watcher: &watch::Watcher,
    procs: &Procs<'_>,
    w: &Workload,
    plan: &SchedPlan,
    f: &mut WorkloadFigures,
    init_names: &[String],
    measure_names: &[String],
    churn_names: &Arc<std::sync::Mutex<Vec<String>>>,
) -> Result<()> {
    for ns in w.namespaces() {
        ensure_namespace(api, &ns).await?;
    }
    // Init pods, all bound before the measurement (scheduler_perf waits for them too).
    let t0 = Instant::now();
    create_pods(api, w, Role::Init, init_names).await?;
    let init_ok = until(t0 + plan.timeout, || {
        watcher.with(|s| s.bound_in(&w.init_ns) >= w.init_pods)
    })
    .await;
    f.init_bound = watcher.with(|s| s.bound_in(&w.init_ns));
    f.init_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "  {}: {} of {} init pods bound in {:.1} s",
        w.name, f.init_bound, w.init_pods, f.init_secs
    );
    if !init_ok {
        f.init_timed_out = true;
        return Ok(());
    }

    // Churn: a high-priority pod every interval while the measured pods go in.
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicUsize::new(0));
    let churn = w.churn_every.map(|every| {
        let (api, w, stop, churned, names) = (
            api.clone(),
            w.clone(),
            stop.clone(),
            churned.clone(),
            churn_names.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let name = format!("high-{i}");
                i += 1;
                names.lock().expect("churn names").push(name.clone());
                let path = format!("/api/v1/namespaces/{}/pods", w.churn_ns);
                if create(&api, &path, &w.pod(Role::Churn, &name))
                    .await
                    .is_ok()
                {
                    churned.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });

    // The measured pods.
    let (cpu0, sim0) = procs.cpu();
    let start = Instant::now();
    let created = create_pods(api, w, Role::Measure, measure_names).await;
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    let first_sent = created.iter().map(|c| c.0).min().unwrap_or(start);
    let last_answered = created.iter().map(|c| c.1).max().unwrap_or(start);
    f.create_rate = w.measure_pods as f64 / (last_answered - first_sent).as_secs_f64().max(1e-9);
    let all = until(start + plan.timeout, || {
        watcher.with(|s| s.bound_in(&w.measure_ns) >= w.measure_pods)
    })
    .await;
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    let (cpu1, sim1) = procs.cpu();
    f.server_cores = (cpu1 - cpu0) / wall;
    f.sim_cores = (sim1 - sim0) / wall;
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = churn {
        let _ = c.await;
    }
    f.measure_timed_out = !all;
    // Time to Running on the simulated nodes (bounded).
    let bound_now = watcher.with(|s| s.bound_in(&w.measure_ns));
    until(Instant::now() + Duration::from_secs(30), || {
        watcher.with(|s| {
            measure_names
                .iter()
                .filter(|n| s.get(&w.measure_ns, n).is_some_and(|p| p.running.is_some()))
                .count()
                >= bound_now
        })
    })
    .await;

    // The figures, from the watch.
    watcher.with(|s| {
        let mut bound_at = Vec::new();
        let (mut c2b, mut c2r, mut b2r) = (Vec::new(), Vec::new(), Vec::new());
        let mut last_bound = first_sent;
        for (name, (sent, _)) in measure_names.iter().zip(&created) {
            let Some(p) = s.get(&w.measure_ns, name) else {
                continue;
            };
            if let Some(b) = p.bound {
                bound_at.push(b.saturating_duration_since(start).as_secs_f64());
                c2b.push(b.saturating_duration_since(*sent));
                last_bound = last_bound.max(b);
                if let Some(r) = p.running {
                    c2r.push(r.saturating_duration_since(*sent));
                    b2r.push(r.saturating_duration_since(b));
                }
            }
        }
        f.measured_bound = bound_at.len();
        f.running = c2r.len();
        f.measure_secs = (last_bound - first_sent).as_secs_f64();
        f.wall_rate = if f.measure_timed_out {
            f.measured_bound as f64 / wall
        } else {
            f.measured_bound as f64 / f.measure_secs.max(1e-9)
        };
        f.sampled = Throughput::of(figures::sampled_throughput(&bound_at));
        f.create_to_bound = Summary::of(c2b);
        f.create_to_running = Summary::of(c2r);
        f.bound_to_running = Summary::of(b2r);
        if w.kind == Kind::PodAntiAffinity {
            let nodes = init_names
                .iter()
                .map(|n| (&w.init_ns, n))
                .chain(measure_names.iter().map(|n| (&w.measure_ns, n)))
                .filter_map(|(ns, n)| s.get(ns, n).and_then(|p| p.node.as_deref()));
            f.violations = Some(figures::crowded_nodes(nodes));
        }
        if w.churn_every.is_some() {
            f.churn_created = churned.load(Ordering::Relaxed);
            f.churn_bound = s.bound_in(&w.churn_ns);
        }
    });
    eprintln!(
        "  {}: {} of {} measured pods bound in {:.1} s: {:.1} pods/s (scheduler_perf average {}), created at {:.0}/s{}",
        w.name,
        f.measured_bound,
        w.measure_pods,
        f.measure_secs,
        f.wall_rate,
        f.sampled
            .as_ref()
            .map_or("n/a".to_string(), |t| format!("{:.1}", t.average)),
        f.create_rate,
        if f.measure_timed_out { " — TIMEOUT" } else { "" }
    );
    Ok(())
}

/// Run the scheduler benchmark against a fresh server and simulator started from `bin`.
pub fn run(rt: &tokio::runtime::Runtime, bin: &Path, plan: &SchedPlan) -> Result<SchedFigures> {
    let server = Server::start(bin, None)?;
    let r = rt.block_on(async {
        let tls = Tls::from_data_dir(&server.data_dir(), server.port)?;
        tls.wait_ready(Duration::from_secs(60)).await?;
        let lease = plan.lease_seconds.to_string();
        let mut flags = workloads::node_flags();
        flags.extend(["--sim-lease-seconds", lease.as_str()]);
        let mut sim = Simulator::start(bin, &server, plan.nodes, PREFIX, &flags)?;
        let r = with_simulator(&server, &mut sim, plan).await;
        r.with_context(|| format!("simulator log:\n{}", sim.log_tail()))
    });
    r.with_context(|| format!("scheduler benchmark; server log:\n{}", server.log_tail()))
}

async fn with_simulator(
    server: &Server,
    sim: &mut Simulator,
    plan: &SchedPlan,
) -> Result<SchedFigures> {
    let api = Api::from_data_dir(&server.data_dir(), "127.0.0.1", server.port)?;
    let mut figs = SchedFigures {
        nodes: plan.nodes,
        quick: plan.quick,
        lease_seconds: plan.lease_seconds,
        ..Default::default()
    };
    // Every simulated node Ready.
    let t = Instant::now();
    let deadline = t + Duration::from_secs(300);
    loop {
        if let Some(status) = sim.exited() {
            bail!("the simulator exited ({status})");
        }
        if ready_nodes(&api).await.unwrap_or(0) >= plan.nodes {
            break;
        }
        if Instant::now() > deadline {
            bail!("not every simulated node was Ready within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    figs.nodes_ready_secs = t.elapsed().as_secs_f64();
    // Let the first round of leases and the scheduler's node view settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    figs.server_rss_nodes_kb = server.rss_kb()?;
    figs.sim_rss_nodes_kb = sim.rss_kb()?;
    eprintln!(
        "  {} simulated nodes Ready after {:.1} s; server RSS {:.1} MB, simulator RSS {:.1} MB",
        plan.nodes,
        figs.nodes_ready_secs,
        figs.server_rss_nodes_kb as f64 / 1024.0,
        figs.sim_rss_nodes_kb as f64 / 1024.0
    );
    create(
        &api,
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        &workloads::high_priority_class(),
    )
    .await
    .or_else(|e| {
        if format!("{e}").contains("409") {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let watcher = watch::Watcher::start(&api).await?;
    let procs = Procs { server, sim };
    for kind in &plan.workloads {
        let w = Workload::new(*kind, plan.nodes);
        eprintln!(
            "  {}: {} init + {} measured pods on {} nodes",
            w.name, w.init_pods, w.measure_pods, plan.nodes
        );
        let f = run_workload(&api, &watcher, &procs, w, plan).await;
        figs.workloads.push(f);
    }
    figs.server_hwm_kb = server.hwm_kb().unwrap_or(0);
    figs.sim_hwm_kb = sim.hwm_kb().unwrap_or(0);
    figs.watch_relists = watcher.with(|s| s.relists);
    Ok(figs)
}
