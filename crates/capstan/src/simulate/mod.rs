//! `capstan agent --simulate N`: N simulated ("hollow") nodes from one process, as kubemark and
//! kwok provide, for scheduler and control-plane tests at scale without containers.
//!
//! The process joins like a real agent (token → CA pinned → credentials, `agent.rs`), once, for
//! the simulator as a whole; registers `PREFIX-0 … PREFIX-(N-1)` with the capacity, labels and
//! taints of the flags ([`flags`], [`nodes`]); renews a Lease per node every 10 s and re-posts
//! each node's status every 5 min, spread over the period; and runs a simulated runtime over
//! ONE watch of all pods ([`pods`]). SIGTERM/SIGINT stop it and leave the nodes registered
//! (their leases then expire, as a stopped kubelet's do).
//!
//! Node InternalIPs are loopback addresses of their own (127.1.x.y) and pod IPs come from the
//! node's podCIDR in `--sim-pod-cidr` (default 100.64.0.0/10): nothing is configured on the
//! host, and a dial of a node's kubelet (logs, exec) stays on this machine and fails.

pub mod flags;
pub mod nodes;
pub mod pods;

pub use flags::SimFlags;

use crate::agent::{self, AgentArgs};
use anyhow::{Context, Result};
use capstan_agent::api::Api;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The simulator's default data dir (its credentials): next to the agent's.
pub fn default_data_dir() -> std::path::PathBuf {
    let a = agent::default_data_dir();
    let name = format!(
        "{}-sim",
        a.file_name().unwrap_or_default().to_string_lossy()
    );
    a.with_file_name(name)
}

/// Run the simulator until `shutdown` resolves.
pub async fn run(args: AgentArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let t = Arc::new(flags::Template::from_flags(&args.sim).map_err(anyhow::Error::msg)?);
    let (full_token, token) = agent::read_token(&args)?;
    let (host, port) = agent::parse_server(&args.server).map_err(anyhow::Error::msg)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    // One credential for the whole simulator (the API server has no per-node authorization).
    let who = format!("{}-simulator", t.prefix);
    let addresses = vec!["127.0.0.1".to_string()];
    let conc = args.sim.sim_concurrency.max(1);
    let lease = Duration::from_secs(args.sim.sim_lease_seconds.max(1));
    let status = Duration::from_secs(args.sim.sim_status_seconds.max(1));
    tokio::pin!(shutdown);
    let work = async {
        agent::credentials(
            &args.server,
            &data_dir.join("tls"),
            (&host, port),
            (&token, &full_token),
            &who,
            &addresses,
        )
        .await?;
        let api = Api::from_data_dir(&data_dir, &host, port)?;
        let started = Instant::now();
        let existing = nodes::list_nodes(&api).await?;
        let mut plan = nodes::plan(&t, &existing).map_err(anyhow::Error::msg)?;
        drop(existing);
        // Ready from now on for nodes that were not Ready before (kept across status posts).
        let registered = nodes::now();
        for n in &mut plan {
            n.since.get_or_insert_with(|| registered.clone());
        }
        let plan = Arc::new(plan);
        let facts = Arc::new(nodes::Host::gather());
        nodes::register_all(&api, &t, &plan, &facts, conc).await?;
        nodes::first_leases(&api, &plan, conc).await;
        tracing::info!(
            nodes = plan.len(),
            prefix = %t.prefix,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "simulated nodes registered"
        );
        let beats = tokio::spawn(nodes::heartbeat(
            api.clone(),
            t.clone(),
            plan.clone(),
            facts,
            lease,
            status,
            conc,
        ));
        let runtime = tokio::spawn(pods::run(api, plan, conc));
        tracing::info!("simulated runtime started");
        Ok::<_, anyhow::Error>((beats, runtime))
    };
    let (mut beats, runtime) = tokio::select! {
        r = work => r?,
        _ = &mut shutdown => return Ok(()),
    };
    tokio::select! {
        _ = &mut shutdown => {}
        r = &mut beats => tracing::error!(result = ?r, "node heartbeats stopped"),
    }
    beats.abort();
    runtime.abort();
    tracing::info!("simulator stopped; its nodes stay registered");
    Ok(())
}
