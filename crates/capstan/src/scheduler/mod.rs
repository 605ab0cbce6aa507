//! The scheduler: in `capstan server` (`--disable-scheduler` to run none) and alone as
//! `capstan scheduler --scheduler-name X` (a second scheduler for pods naming X). Informers
//! (nodes, pods, namespaces, PodDisruptionBudgets) feed one scheduling thread ([`cycle`])
//! that decides with the pure capstan-scheduler crate; writes go out as tasks
//! ([`actions`]). Profiles come from a KubeSchedulerConfiguration file (`--config`).

mod actions;
mod cycle;
mod informer;
mod queue;

use anyhow::{Context, Result};
use capstan_agent::api::Api;
use capstan_scheduler::Profile;
use informer::Change;
use std::path::{Path, PathBuf};

pub const DEFAULT_NAME: &str = "default-scheduler";

/// Scheduler flags shared by `capstan server` and `capstan scheduler`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SchedulerFlags {
    /// A KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1): profiles, plugin
    /// weights, percentageOfNodesToScore.
    #[arg(long = "scheduler-config")]
    pub scheduler_config: Option<PathBuf>,
    /// Never preempt (the seeds' disablePreemption), whatever the profiles say.
    #[arg(long)]
    pub disable_preemption: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SchedulerArgs {
    /// kubeconfig with the API server and credentials (default: the local server's
    /// admin.kubeconfig).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Schedule pods whose spec.schedulerName is this (ignored with --scheduler-config).
    #[arg(long, default_value = DEFAULT_NAME)]
    pub scheduler_name: String,
    #[command(flatten)]
    pub flags: SchedulerFlags,
}

/// The profiles to serve: the config file's, or one default profile named `name`.
pub fn profiles(name: &str, flags: &SchedulerFlags) -> Result<Vec<Profile>> {
    let mut profiles = match &flags.scheduler_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            capstan_scheduler::parse_config(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => vec![Profile {
            scheduler_name: name.to_string(),
            ..Profile::default()
        }],
    };
    if flags.disable_preemption {
        for p in &mut profiles {
            p.disable_preemption = true;
        }
    }
    Ok(profiles)
}

/// Schedule pods for `profiles` until the process ends.
pub async fn run(api: Api, profiles: Vec<Profile>) {
    let (tx, rx) = std::sync::mpsc::channel::<cycle::Msg>();
    let sched = cycle::Scheduler::new(
        api.clone(),
        tokio::runtime::Handle::current(),
        tx.clone(),
        profiles,
    );
    let thread = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || sched.run(rx));
    if let Err(e) = thread {
        tracing::error!(error = %e, "starting the scheduler thread");
        return;
    }
    macro_rules! inform {
        ($path:expr, $variant:ident) => {{
            let (api, tx) = (api.clone(), tx.clone());
            tokio::spawn(async move {
                informer::run(api, $path, move |c: Change<_>| {
                    tx.send(cycle::Msg::$variant(Box::new(c))).is_ok()
                })
                .await
            })
        }};
    }
    let tasks = [
        inform!("/api/v1/nodes", Nodes),
        inform!("/api/v1/pods", Pods),
        inform!("/api/v1/namespaces", Namespaces),
        inform!("/apis/policy/v1/poddisruptionbudgets", Pdbs),
    ];
    drop(tx);
    for t in tasks {
        let _ = t.await;
    }
}

/// `capstan scheduler`: a scheduler process of its own.
pub async fn command(args: SchedulerArgs) -> Result<()> {
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| crate::server::default_data_dir().join("admin.kubeconfig"));
    let api = Api::from_kubeconfig(Path::new(&kubeconfig))?;
    let profiles = profiles(&args.scheduler_name, &args.flags)?;
    let names: Vec<&str> = profiles.iter().map(|p| p.scheduler_name.as_str()).collect();
    tracing::info!(profiles = ?names, "scheduler started");
    let shutdown = crate::server::shutdown_signal()?;
    tokio::select! {
        _ = run(api, profiles) => {}
        _ = shutdown => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yaml");
        std::fs::write(
            &good,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n- schedulerName: b\n",
        )
        .unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "apiVersion: v0\nkind: Nope\n").unwrap();
        let flags = |config: Option<&Path>, disable_preemption| SchedulerFlags {
            scheduler_config: config.map(Path::to_path_buf),
            disable_preemption,
        };
        let names = |p: &[Profile]| -> Vec<(String, bool)> {
            p.iter()
                .map(|p| (p.scheduler_name.clone(), p.disable_preemption))
                .collect()
        };
        type Want = Result<Vec<(&'static str, bool)>, &'static str>;
        let cases: Vec<(SchedulerFlags, Want)> = vec![
            (flags(None, false), Ok(vec![("x", false)])),
            (flags(None, true), Ok(vec![("x", true)])),
            (
                flags(Some(&good), false),
                Ok(vec![("a", false), ("b", false)]),
            ),
            (flags(Some(&good), true), Ok(vec![("a", true), ("b", true)])),
            (flags(Some(&bad), false), Err("bad.yaml: ")),
            (
                flags(Some(&dir.path().join("missing")), false),
                Err("reading "),
            ),
        ];
        for (f, want) in cases {
            match (profiles("x", &f), want) {
                (Ok(p), Ok(w)) => {
                    let w: Vec<(String, bool)> =
                        w.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
                    assert_eq!(names(&p), w, "{f:?}");
                }
                (Err(e), Err(w)) => assert!(format!("{e:#}").contains(w), "{f:?}: {e:#}"),
                (got, want) => panic!("{f:?}: got {:?}, want {want:?}", got.map(|p| names(&p))),
            }
        }
    }
}
