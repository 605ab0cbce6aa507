//! `capstan-bench`: the same `capstan server` on the embedded store and on etcd, measured side
//! by side in one run — creates/s and latency at 1/16/64 clients, GET and LIST latency, watch
//! delivery latency with 1 and 1000 watchers, RSS idle and with 100k pods — printed as a table
//! with the targets. Every figure comes from measurement in this run.

#![forbid(unsafe_code)]

mod client;
mod figures;
mod measure;
mod procs;
mod report;
mod stats;
mod watch;

use anyhow::{Context, Result};
use clap::Parser;
use figures::{Backend, Sizes};
use std::path::PathBuf;

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
    let mut results = Vec::new();
    for backend in args.backends {
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
    println!("{}", report::table(&results, &sizes));
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&report::json(&results, &sizes))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
