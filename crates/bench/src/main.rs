//! `capstan-bench`: the same `capstan server` on the embedded store and on etcd, measured side
//! by side in one run — creates/s and latency at 1/16/64 clients, GET and LIST latency, watch
//! delivery latency with 1 and 1000 watchers, RSS idle and with 100k pods — printed as a table
//! with the targets; then the pod startup benchmark (`--pods` runs only that): pods through a
//! real server with its node agent against the raw CRI path on the same containerd.
//! `--scheduler` runs only the scheduler benchmark instead: kube's scheduler_perf workloads
//! through a real server on thousands of simulated nodes (`capstan agent --simulate`). Every
//! `--deployment` runs only the controller benchmark: a Deployment of 10,000 replicas created
//! and rolled on 500 simulated nodes, side by side with the same pods created bare
//! (scheduler only), and the controller manager's memory. `--dns` runs only the cluster DNS
//! benchmark (queries/s and p50/p99 at fixed rates, cluster and forwarded names).
//! `--proxy-throughput` runs only the service proxy benchmark: one TCP stream through a VIP
//! with the userspace proxy, the nftables proxy and no proxy, side by side. `--netprog` runs
//! only the network programming benchmark (root, containerd): endpoint change → rule live,
//! probed through the VIP, at 1,000 and 10,000 services, beside full ruleset rebuilds. Every
//! figure comes from measurement in this run.

#![forbid(unsafe_code)]

mod client;
mod deploy;
mod dns;
mod figures;
mod measure;
mod netprog;
mod pods;
mod procs;
mod report;
mod sched;
mod stats;
mod throughput;
mod watch;

use anyhow::{Context, Result};
use clap::Parser;
use figures::{Backend, Sizes};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark capstan on the embedded store and on etcd, side by side")]
struct Args {
    /// The capstan binary (default: `capstan` next to this binary).
    #[arg(long)]
    capstan: Option<PathBuf>,
    /// Backends to measure, comma-separated: embedded, etcd.
    #[arg(long, default_value = "embedded,etcd", value_parser = Backend::parse_list)]
    backends: std::vec::Vec<Backend>,
    /// Small counts, for a smoke test.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run only the pod startup benchmark (root, containerd, runc).
    #[arg(long, conflicts_with = "no_pods")]
    pods: bool,
    /// Skip the pod startup benchmark.
    #[arg(long)]
    no_pods: bool,
    /// CRI runtime handler for the pod benchmark (both paths): runc (containerd's default)
    /// or crun.
    #[arg(long, default_value = "runc", value_parser = ["runc", "crun"])]
    runtime: String,
    /// Pods started one at a time in the pod benchmark (default 20; 5 with --quick).
    #[arg(long)]
    pod_count: Option<usize>,
    /// Run only the scheduler benchmark: scheduler_perf workloads on simulated nodes.
    #[arg(long, conflicts_with_all = ["pods", "no_pods"])]
    scheduler: bool,
    /// Simulated nodes of the scheduler benchmark (default 5000; 500 with --quick). Pod counts
    /// scale with it (scheduler_perf's are for 5000).
    #[arg(long, requires = "scheduler")]
    sched_nodes: Option<usize>,
    /// Scheduler workloads to run, comma-separated: basic, affinity, antiaffinity, preemption.
    #[arg(long, default_value = "basic,affinity,antiaffinity,preemption",
          value_parser = sched::workloads::Kind::parse_list, requires = "scheduler")]
    sched_workloads: std::vec::Vec<sched::workloads::Kind>,
    /// Seconds each scheduler workload phase (init pods bound, measured pods bound) may take
    /// before it is reported TIMEOUT (default 600; 180 with --quick).
    #[arg(long, requires = "scheduler")]
    sched_timeout: Option<u64>,
    /// Seconds between two Lease renewals of each simulated node (a kubelet's 10 s; at 5000
    /// nodes that is 500 writes/s the API server carries throughout, which scheduler_perf's
    /// static nodes do not cost it).
    #[arg(long, default_value_t = 10, requires = "scheduler")]
    sched_lease_seconds: u64,
    /// Run only the controller benchmark: a Deployment created and rolled on simulated nodes,
    /// side by side with the same pods created bare.
    #[arg(long, conflicts_with_all = ["pods", "no_pods", "scheduler"])]
    deployment: bool,
    /// Simulated nodes of the controller benchmark (default 500; 50 with --quick).
    #[arg(long, requires = "deployment")]
    deploy_nodes: Option<usize>,
    /// Replicas of the controller benchmark's Deployment (default 10000; 500 with --quick).
    #[arg(long, requires = "deployment")]
    deploy_replicas: Option<usize>,
    /// Run only the cluster DNS benchmark: queries/s and p50/p99 at fixed rates, cluster
    /// names and forwarded names, against the upstream queried directly.
    #[arg(long, conflicts_with_all = ["pods", "no_pods", "scheduler", "deployment"])]
    dns: bool,
    /// Run only the service proxy benchmark (root): one TCP stream through a ClusterIP with
    /// `--proxy-mode userspace`, with `--proxy-mode nftables`, and to the endpoint directly.
    #[arg(long, conflicts_with_all = ["pods", "no_pods", "scheduler", "deployment", "dns"])]
    proxy_throughput: bool,
    /// Run only the network programming benchmark (root, containerd): endpoint change → rule
    /// live through the VIP, at each --netprog-services size, beside full rebuilds.
    #[arg(long, conflicts_with_all = ["pods", "no_pods", "scheduler", "deployment", "dns", "proxy_throughput"])]
    netprog: bool,
    /// Service counts of the network programming benchmark, comma-separated, ascending
    /// (default 1000,10000; 100,1000 with --quick).
    #[arg(long, value_delimiter = ',', requires = "netprog")]
    netprog_services: Option<Vec<usize>>,
    /// Endpoint changes measured at each size (default 100; 20 with --quick).
    #[arg(long, requires = "netprog")]
    netprog_changes: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sizes = Sizes::new(args.quick);
    let capstan = match args.capstan.clone() {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("capstan"),
    };
    anyhow::ensure!(
        capstan.is_file(),
        "{} not found (cargo build --release -p capstan, or --capstan PATH)",
        capstan.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.netprog {
        let plan = netprog::Plan {
            sizes: args.netprog_services.clone().unwrap_or(if args.quick {
                vec![100, 1000]
            } else {
                vec![1000, 10_000]
            }),
            changes: args
                .netprog_changes
                .unwrap_or(if args.quick { 20 } else { 100 }),
        };
        anyhow::ensure!(
            plan.changes > 0 && plan.sizes.iter().all(|n| *n > 0),
            "--netprog-services and --netprog-changes must be > 0"
        );
        eprintln!("== network programming (services {:?})", plan.sizes);
        let rows = netprog::run(&rt, &capstan, &plan)?;
        println!("{}", netprog::table(&rows));
        if let Some(path) = &args.json {
            let v = serde_json::json!({"quick": args.quick, "netprog": netprog::json(&rows)});
            std::fs::write(path, serde_json::to_vec_pretty(&v)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    if args.dns {
        eprintln!("== cluster DNS");
        let rows = dns::run(&capstan, args.quick)?;
        println!("{}", dns::table(&rows));
        if let Some(path) = &args.json {
            let v = serde_json::json!({"quick": args.quick, "dns": dns::json(&rows)});
            std::fs::write(path, serde_json::to_vec_pretty(&v)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    if args.proxy_throughput {
        eprintln!("== service proxy throughput");
        let rows = throughput::run(&rt, &capstan, args.quick)?;
        println!("{}", throughput::table(&rows, args.quick));
        if let Some(path) = &args.json {
            let v = serde_json::json!({"quick": args.quick, "proxy_throughput": throughput::json(&rows)});
            std::fs::write(path, serde_json::to_vec_pretty(&v)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    if args.deployment {
        let plan = deploy::DeployPlan {
            nodes: args
                .deploy_nodes
                .unwrap_or(if args.quick { 50 } else { 500 }),
            replicas: args
                .deploy_replicas
                .unwrap_or(if args.quick { 500 } else { 10_000 }),
            timeout: Duration::from_secs(if args.quick { 120 } else { 900 }),
        };
        anyhow::ensure!(
            plan.nodes > 0 && plan.replicas > 0,
            "nodes and replicas must be > 0"
        );
        eprintln!(
            "== controllers ({} replicas, {} simulated nodes)",
            plan.replicas, plan.nodes
        );
        let figs = deploy::run(&rt, &capstan, &plan)?;
        println!("{}", deploy::table(&figs));
        if let Some(path) = &args.json {
            let v = serde_json::json!({"quick": args.quick, "controllers": deploy::json(&figs)});
            std::fs::write(path, serde_json::to_vec_pretty(&v)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    if args.scheduler {
        let mut plan = sched::SchedPlan::new(
            args.quick,
            args.sched_nodes,
            args.sched_workloads.clone(),
            args.sched_timeout,
        );
        plan.lease_seconds = args.sched_lease_seconds.max(1);
        anyhow::ensure!(plan.nodes > 0, "--sched-nodes must be at least 1");
        eprintln!("== scheduler ({} simulated nodes)", plan.nodes);
        let figs = sched::run(&rt, &capstan, &plan)?;
        println!("{}", sched::report::table(&figs));
        if let Some(path) = &args.json {
            let v =
                serde_json::json!({"quick": args.quick, "scheduler": sched::report::json(&figs)});
            std::fs::write(path, serde_json::to_vec_pretty(&v)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    let mut results = Vec::new();
    let backends = if args.pods { vec![] } else { args.backends };
    for backend in backends {
        eprintln!("== {}", backend.name());
        let etcd = match backend {
            Backend::Etcd => Some(procs::Etcd::start()?),
            Backend::Embedded => None,
        };
        let server = procs::Server::start(&capstan, etcd.as_ref().map(|e| e.endpoint.as_str()))?;
        let figures = rt
            .block_on(measure::run(&server, etcd.as_ref(), &sizes))
            .with_context(|| {
                format!("on {}; server log:\n{}", backend.name(), server.log_tail())
            })?;
        results.push((backend.name().to_string(), figures));
        // The server goes before the etcd it uses.
        drop(server);
        drop(etcd);
    }
    // runc is containerd's default handler: "" on both paths, as the agent's default.
    let handler = if args.runtime == "runc" {
        ""
    } else {
        args.runtime.as_str()
    };
    let mut pod_sizes = pods::PodPlan::new(args.quick, handler);
    if let Some(n) = args.pod_count {
        anyhow::ensure!(n > 0, "--pod-count must be at least 1");
        pod_sizes.sequential = n;
    }
    let pod_figures = match (args.no_pods, pods::missing_prerequisites()) {
        (true, _) => None,
        (false, Some(why)) if !args.pods => {
            eprintln!("== pods: skipped ({why})");
            None
        }
        (false, Some(why)) => anyhow::bail!("the pod benchmark cannot run here: {why}"),
        (false, None) => {
            eprintln!("== pods");
            Some(pods::run(&rt, &capstan, &pod_sizes)?)
        }
    };
    if !results.is_empty() {
        println!("{}", report::table(&results, &sizes));
    }
    if let Some(f) = &pod_figures {
        println!("{}", pods::report::table(f, &pod_sizes));
    }
    if let Some(path) = &args.json {
        let mut v = if results.is_empty() {
            serde_json::json!({"quick": sizes.quick})
        } else {
            report::json(&results, &sizes)
        };
        if let Some(f) = &pod_figures {
            v["pods"] = pods::report::json(f, &pod_sizes);
        }
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
