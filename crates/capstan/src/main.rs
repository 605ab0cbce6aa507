//! `capstan`: one binary for the whole platform. `capstan server` runs the control plane
//! (API server on an embedded store or etcd, and its own node agent); `capstan agent` joins
//! another node; `capstan images` manages a node's images.

mod agent;
mod images;
mod pki;
mod server;
mod token;

use clap::{Parser, Subcommand};

/// mimalloc returns freed memory to the OS far better than glibc's malloc under the API
/// server's allocation pattern (many short-lived JSON values), which keeps RSS close to the
/// live data (see capstan-bench's RSS figures).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "capstan",
    version,
    about = "Capstan: a Kubernetes-compatible container platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server, on an embedded store unless --datastore-endpoint).
    Server(Box<server::ServerArgs>),
    /// Run a node agent that joins a server (--server https://HOST:6443 --token-file F).
    Agent(Box<agent::AgentArgs>),
    /// Node images: build the built-in ones, import tarballs, list.
    #[command(subcommand)]
    Images(images::ImagesCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => rt.block_on(server::run(*args)),
        Command::Agent(args) => rt.block_on(agent::run(*args)),
        Command::Images(cmd) => images::run(cmd),
    }
}
