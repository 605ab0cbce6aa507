//! `capstan`: one binary for the whole platform. `capstan server` runs the control plane
//! (API server on an embedded store or etcd, and its own node agent); `capstan agent` joins
//! another node; `capstan scheduler` runs a second scheduler; `capstan controller-manager`
//! runs the controllers apart; `capstan images` manages a node's images.

mod agent;
mod controllers;
mod dns;
mod images;
mod pki;
mod scheduler;
mod server;
mod simulate;
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
    /// Run a scheduler of its own (for pods naming --scheduler-name), against a kubeconfig.
    Scheduler(Box<scheduler::SchedulerArgs>),
    /// Run the controllers as a process of their own (with `capstan server
    /// --disable-controllers`), against a kubeconfig.
    ControllerManager(Box<controllers::ControllerManagerArgs>),
    /// Node images: build the built-in ones, import tarballs, list.
    #[command(subcommand)]
    Images(images::ImagesCommand),
}

/// mimalloc's options are read from the environment when it initialises, before `main`. The
/// node agent is a small long-lived process where eagerly committed arenas are most of its
/// RSS (≈11 MB of 26 MB idle, measured): `capstan agent` re-executes itself once with
/// `MIMALLOC_ARENA_EAGER_COMMIT=0` (14.5 MB idle). The server keeps mimalloc's defaults.
fn lean_allocator_for_agent() {
    use std::os::unix::process::CommandExt;
    const KEY: &str = "MIMALLOC_ARENA_EAGER_COMMIT";
    let mut args = std::env::args_os();
    let _ = args.next();
    if args.next().as_deref() != Some(std::ffi::OsStr::new("agent"))
        || std::env::var_os(KEY).is_some()
    {
        return;
    }
    // exec only returns on failure; then run as we are.
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "capstan".into());
    let _ = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(std::env::args_os().skip(1))
        .env(KEY, "0")
        .exec();
}

fn main() -> anyhow::Result<()> {
    lean_allocator_for_agent();
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
        Command::Scheduler(args) => rt.block_on(scheduler::command(*args)),
        Command::ControllerManager(args) => rt.block_on(controllers::command(*args)),
        Command::Images(cmd) => images::run(cmd),
    }
}
