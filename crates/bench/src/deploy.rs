//! The controller benchmark (`--deployment`): a fresh `capstan server --disable-agent
//! --disable-controllers`, `capstan controller-manager` as a process of its own (so its memory
//! is its own figure) and `capstan agent --simulate N` (the scheduler benchmark's nodes). Side
//! by side in one run, with the same pod template (pause, 100m CPU, 500Mi):
//!
//! 1. scheduler only: R bare pods created by the benchmark (64 in flight), until all are
//!    Running on the simulated nodes; then deleted and gone;
//! 2. a Deployment of R replicas, from its create until status.availableReplicas = R;
//! 3. a rolling update of it (a new template; maxSurge/maxUnavailable 25%), until every
//!    replica is updated and available and no old one is left.
//!
//! Figures: pods/s and wall time of each, the controller manager's and the server's RSS and
//! peak RSS (VmHWM) and CPU cores used.

use crate::client::Tls;
use crate::procs::{ControllerManager, Server, Simulator};
use crate::sched::{self, watch::Watcher};
use anyhow::{bail, Result};
use capstan_agent::api::Api;
use futures::StreamExt;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct DeployPlan {
    pub nodes: usize,
    pub replicas: usize,
    pub timeout: Duration,
}

/// One measured phase.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub name: &'static str,
    pub pods: usize,
    pub secs: f64,
    pub done: bool,
    pub server_cores: f64,
    pub cm_cores: f64,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.pods as f64 / self.secs.max(1e-9)
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeployFigures {
    pub nodes: usize,
    pub replicas: usize,
    pub phases: Vec<Phase>,
    pub cm_rss_idle_kb: u64,
    pub cm_rss_kb: u64,
    pub cm_hwm_kb: u64,
    pub server_hwm_kb: u64,
    pub sim_hwm_kb: u64,
}

const POD_NS: &str = "bench-pods";
const DEPLOY_NS: &str = "bench-deploy";

fn template(version: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10.1",
            "env": [{"name": "VERSION", "value": version}],
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                          "limits": {"cpu": "100m", "memory": "500Mi"}}
        }]}
    })
}

fn deployment(replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": DEPLOY_NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("1")}
    })
}

async fn deployment_status(api: &Api) -> Option<Value> {
    let path = format!("/apis/apps/v1/namespaces/{DEPLOY_NS}/deployments/web");
    match api.call_raw("GET", &path, None).await {
        Ok((200, b)) => serde_json::from_slice(&b).ok(),
        _ => None,
    }
}

/// Poll the Deployment every 100 ms until `done` holds of it, or the deadline.
async fn until_deployment(api: &Api, deadline: Instant, done: impl Fn(&Value) -> bool) -> bool {
    loop {
        if deployment_status(api).await.is_some_and(|d| done(&d)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn n(d: &Value, field: &str) -> usize {
    d["status"][field].as_u64().unwrap_or(0) as usize
}

struct Procs<'a> {
    server: &'a Server,
    cm: &'a ControllerManager,
}

impl Procs<'_> {
    fn cpu(&self) -> (f64, f64) {
        (self.server.cpu_secs(), self.cm.cpu_secs())
    }

    fn phase(
        &self,
        name: &'static str,
        pods: usize,
        t0: Instant,
        cpu0: (f64, f64),
        done: bool,
    ) -> Phase {
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = self.cpu();
        let p = Phase {
            name,
            pods,
            secs,
            done,
            server_cores: (cpu1.0 - cpu0.0) / secs.max(1e-9),
            cm_cores: (cpu1.1 - cpu0.1) / secs.max(1e-9),
        };
        eprintln!(
            "  {name}: {pods} pods in {secs:.1} s: {:.1} pods/s{}",
            p.rate(),
            if done { "" } else { " — TIMEOUT" }
        );
        p
    }
}

pub fn run(rt: &tokio::runtime::Runtime, bin: &Path, plan: &DeployPlan) -> Result<DeployFigures> {
    let server = Server::start_with(bin, None, &["--disable-controllers"])?;
    rt.block_on(async {
        let tls = Tls::from_data_dir(&server.data_dir(), server.port)?;
        tls.wait_ready(Duration::from_secs(60)).await?;
        let mut cm = ControllerManager::start(bin, &server)?;
        let sim = Simulator::start(
            bin,
            &server,
            plan.nodes,
            sched::PREFIX,
            &sched::workloads::node_flags(),
        )?;
        let r = measure(&server, &mut cm, &sim, plan).await;
        r.map_err(|e| {
            e.context(format!(
                "server log:\n{}\ncontroller-manager log:\n{}\nsimulator log:\n{}",
                server.log_tail(),
                cm.log_tail(),
                sim.log_tail()
            ))
        })
    })
}

async fn measure(
    server: &Server,
    cm: &mut ControllerManager,
    sim: &Simulator,
    plan: &DeployPlan,
) -> Result<DeployFigures> {
    let api = Api::from_data_dir(&server.data_dir(), "127.0.0.1", server.port)?;
    let mut f = DeployFigures {
        nodes: plan.nodes,
        replicas: plan.replicas,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while sched::ready_nodes(&api).await.unwrap_or(0) < plan.nodes {
        if let Some(s) = cm.exited() {
            bail!("the controller manager exited ({s})");
        }
        if Instant::now() > deadline {
            bail!("not every simulated node was Ready within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.cm_rss_idle_kb = cm.rss_kb()?;
    eprintln!(
        "  {} nodes Ready; controller manager RSS {:.1} MB",
        plan.nodes,
        f.cm_rss_idle_kb as f64 / 1024.0
    );
    for ns in [POD_NS, DEPLOY_NS] {
        sched::ensure_namespace(&api, ns).await?;
    }
    let watcher = Watcher::start(&api).await?;
    let procs = Procs { server, cm };
    let r = plan.replicas;

    // 1. Scheduler only: bare pods from the benchmark.
    let names: Vec<String> = (0..r).map(|i| format!("pod-{i}")).collect();
    let (t0, cpu0) = (Instant::now(), procs.cpu());
    let path = format!("/api/v1/namespaces/{POD_NS}/pods");
    let results: Vec<Result<()>> = futures::stream::iter(&names)
        .map(|name| {
            let mut body = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": POD_NS}});
            let t = template("1");
            body["metadata"]["labels"] = t["metadata"]["labels"].clone();
            body["spec"] = t["spec"].clone();
            let (api, path) = (&api, &path);
            async move { sched::create(api, path, &body).await }
        })
        .buffer_unordered(sched::CREATE_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let done = sched::until(t0 + plan.timeout, || {
        watcher.with(|s| s.running_in(POD_NS) >= r)
    })
    .await;
    f.phases
        .push(procs.phase("pods, scheduler only", r, t0, cpu0, done));
    sched::delete_pods(&api, POD_NS, &names).await;
    sched::until(Instant::now() + Duration::from_secs(180), || {
        watcher.with(|s| s.live_in(POD_NS) == 0)
    })
    .await;

    // 2. The Deployment, created.
    let (t0, cpu0) = (Instant::now(), procs.cpu());
    sched::create(
        &api,
        &format!("/apis/apps/v1/namespaces/{DEPLOY_NS}/deployments"),
        &deployment(r),
    )
    .await?;
    let done = until_deployment(&api, t0 + plan.timeout, |d| n(d, "availableReplicas") >= r).await;
    f.phases
        .push(procs.phase("deployment create", r, t0, cpu0, done));
    f.cm_rss_kb = procs.cm.rss_kb()?;

    // 3. Its rolling update.
    let (t0, cpu0) = (Instant::now(), procs.cpu());
    let patch = json!({"spec": {"template": template("2")}});
    let (code, body) = api
        .call_raw(
            "PATCH",
            &format!("/apis/apps/v1/namespaces/{DEPLOY_NS}/deployments/web"),
            Some(&patch),
        )
        .await?;
    if code != 200 {
        bail!(
            "updating the deployment: HTTP {code}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let gen = serde_json::from_slice::<Value>(&body)?["metadata"]["generation"]
        .as_i64()
        .unwrap_or(0);
    let done = until_deployment(&api, t0 + plan.timeout, |d| {
        d["status"]["observedGeneration"].as_i64().unwrap_or(0) >= gen
            && n(d, "updatedReplicas") == r
            && n(d, "availableReplicas") == r
            && n(d, "replicas") == r
    })
    .await;
    f.phases
        .push(procs.phase("rolling update", r, t0, cpu0, done));
    f.cm_hwm_kb = procs.cm.hwm_kb().unwrap_or(0);
    f.server_hwm_kb = server.hwm_kb().unwrap_or(0);
    f.sim_hwm_kb = sim.hwm_kb().unwrap_or(0);
    Ok(f)
}

pub fn table(f: &DeployFigures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Controllers: {} replicas on {} simulated nodes (one run, side by side)",
        f.replicas, f.nodes
    );
    let _ = writeln!(
        out,
        "{:<24} {:>8} {:>10} {:>10} {:>13} {:>10}",
        "phase", "pods", "wall s", "pods/s", "server cores", "cm cores"
    );
    for p in &f.phases {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>10.1} {:>10.1} {:>13.2} {:>10.2}{}",
            p.name,
            p.pods,
            p.secs,
            p.rate(),
            p.server_cores,
            p.cm_cores,
            if p.done { "" } else { "  TIMEOUT" }
        );
    }
    if let [pods, create, ..] = f.phases.as_slice() {
        let _ = writeln!(
            out,
            "deployment create / scheduler only: {:.0}% of the rate",
            100.0 * create.rate() / pods.rate().max(1e-9)
        );
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    let _ = writeln!(
        out,
        "controller manager RSS: {:.1} MB idle, {:.1} MB with {} replicas, peak {:.1} MB",
        mb(f.cm_rss_idle_kb),
        mb(f.cm_rss_kb),
        f.replicas,
        mb(f.cm_hwm_kb)
    );
    let _ = writeln!(
        out,
        "server peak RSS {:.1} MB, simulator peak RSS {:.1} MB",
        mb(f.server_hwm_kb),
        mb(f.sim_hwm_kb)
    );
    out
}

pub fn json(f: &DeployFigures) -> Value {
    json!({
        "nodes": f.nodes, "replicas": f.replicas,
        "phases": f.phases.iter().map(|p| json!({"name": p.name, "pods": p.pods,
            "secs": p.secs, "pods_per_sec": p.rate(), "done": p.done,
            "server_cores": p.server_cores, "cm_cores": p.cm_cores})).collect::<Vec<_>>(),
        "cm_rss_idle_kb": f.cm_rss_idle_kb, "cm_rss_kb": f.cm_rss_kb, "cm_hwm_kb": f.cm_hwm_kb,
        "server_hwm_kb": f.server_hwm_kb, "sim_hwm_kb": f.sim_hwm_kb,
    })
}
