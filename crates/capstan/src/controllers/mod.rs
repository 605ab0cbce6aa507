//! The controller manager in `capstan server` (`--disable-controllers` runs none,
//! `--controllers replicaset,garbagecollector,…` a subset, as kube-controller-manager's
//! flag): shared list+watch caches ([`cache`]) feed one work queue per controller
//! ([`queue`], keyed by object, level-triggered with a resync); each controller's decision is
//! a pure function of capstan-controllers, its writes go through [`writes`].

mod cache;
mod daemonset;
mod deployment;
mod disruption;
mod expectations;
mod gc;
mod job;
mod queue;
mod replicaset;
mod statefulset;
mod writes;

use capstan_agent::api::Api;
use capstan_controllers::replicaset::Kind;

/// The controllers there are, by kube-controller-manager's names.
pub const ALL: &[&str] = &[
    "replicaset",
    "replicationcontroller",
    "deployment",
    "daemonset",
    "statefulset",
    "job",
    "garbagecollector",
    "disruption",
];

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ControllerFlags {
    /// Run no controllers.
    #[arg(long)]
    pub disable_controllers: bool,
    /// The controllers to run ("*" for all; "-name" leaves one out): replicaset,
    /// replicationcontroller, deployment, daemonset, statefulset, job, garbagecollector, disruption.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
}

/// The controllers the flags enable.
pub fn enabled(flags: &ControllerFlags) -> anyhow::Result<Vec<&'static str>> {
    if flags.disable_controllers {
        return Ok(Vec::new());
    }
    let star = flags.controllers.iter().any(|c| c == "*");
    for c in &flags.controllers {
        let n = c.trim_start_matches('-');
        if n != "*" && !ALL.contains(&n) {
            anyhow::bail!("unknown controller {c:?} (known: {})", ALL.join(", "));
        }
    }
    Ok(ALL
        .iter()
        .copied()
        .filter(|n| {
            let off = flags
                .controllers
                .iter()
                .any(|c| c.strip_prefix('-') == Some(n));
            !off && (star || flags.controllers.iter().any(|c| c == n))
        })
        .collect())
}

/// Run `names` until the process ends.
pub async fn run(api: Api, names: Vec<&'static str>) {
    let mut caches = cache::Caches::default();
    for n in &names {
        match *n {
            "replicaset" => {
                replicaset::register(&mut caches, Kind::ReplicaSet);
            }
            "replicationcontroller" => {
                replicaset::register(&mut caches, Kind::ReplicationController);
            }
            "deployment" => deployment::register(&mut caches),
            "daemonset" => daemonset::register(&mut caches),
            "statefulset" => statefulset::register(&mut caches),
            "job" => job::register(&mut caches),
            "garbagecollector" => gc::register(&mut caches),
            "disruption" => disruption::register(&mut caches),
            _ => {}
        }
    }
    let mut tasks = Vec::new();
    for n in names {
        let (api, caches) = (api.clone(), caches.clone());
        tasks.push(tokio::spawn(async move {
            match n {
                "replicaset" => replicaset::run(api, &caches, Kind::ReplicaSet).await,
                "replicationcontroller" => {
                    replicaset::run(api, &caches, Kind::ReplicationController).await
                }
                "deployment" => deployment::run(api, &caches).await,
                "daemonset" => daemonset::run(api, &caches).await,
                "statefulset" => statefulset::run(api, &caches).await,
                "job" => job::run(api, &caches).await,
                "garbagecollector" => gc::run(api, &caches).await,
                "disruption" => disruption::run(api, &caches).await,
                _ => {}
            }
        }));
    }
    // Let the controllers register their handlers before the first lists arrive.
    tokio::task::yield_now().await;
    for c in caches.by_plural.values() {
        tasks.push(tokio::spawn(c.clone().run(api.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_controllers() {
        let f = |v: &[&str], off: bool| ControllerFlags {
            disable_controllers: off,
            controllers: v.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(enabled(&f(&["*"], false)).unwrap(), ALL);
        assert!(enabled(&f(&["*"], true)).unwrap().is_empty());
        assert_eq!(
            enabled(&f(&["garbagecollector", "replicaset"], false)).unwrap(),
            vec!["replicaset", "garbagecollector"]
        );
        assert_eq!(
            enabled(&f(&["*", "-disruption"], false)).unwrap(),
            &ALL[..7]
        );
        assert!(enabled(&f(&["nope"], false)).is_err());
    }
}
