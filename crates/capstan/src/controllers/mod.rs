//! The controller manager in `capstan server` (`--disable-controllers` runs none,
//! `--controllers replicaset,garbagecollector,…` a subset, as kube-controller-manager's
//! flag): shared list+watch caches ([`cache`]) feed one work queue per controller
//! ([`queue`], keyed by object, level-triggered with a resync); each controller's decision is
//! a pure function of capstan-controllers, its writes go through [`writes`].

pub(crate) mod cache;
mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod endpointslice;
mod expectations;
mod gc;
mod job;
mod namespace;
mod nodelifecycle;
mod podgc;
mod queue;
mod replicaset;
mod servicelb;
mod statefulset;
mod writes;
mod written;

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
    "cronjob",
    "garbagecollector",
    "disruption",
    "nodelifecycle",
    "namespace",
    "podgc",
    "service-lb",
    "endpoint",
    "endpointslice",
];

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerFlags {
    /// Run no controllers.
    #[arg(long)]
    pub disable_controllers: bool,
    /// The controllers to run ("*" for all; "-name" leaves one out): replicaset,
    /// replicationcontroller, deployment, daemonset, statefulset, job, cronjob, garbagecollector,
    /// disruption, nodelifecycle, namespace, podgc, service-lb, endpoint, endpointslice.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Number of terminated pods that can exist before the pod garbage collector starts
    /// deleting them (oldest first); 0 disables it.
    #[arg(long, default_value_t = capstan_controllers::podgc::DEFAULT_THRESHOLD,
        value_parser = clap::value_parser!(i64).range(0..))]
    pub terminated_pod_gc_threshold: i64,
    #[command(flatten)]
    pub node_lifecycle: nodelifecycle::NodeLifecycleFlags,
    /// The pool the service-lb controller assigns LoadBalancer ingress IPs from (OpenShift's
    /// ingressIPNetworkCIDR).
    #[arg(long, default_value = servicelb::DEFAULT_POOL)]
    pub ingress_ip_cidr: String,
}

impl Default for ControllerFlags {
    fn default() -> Self {
        ControllerFlags {
            disable_controllers: false,
            controllers: vec!["*".into()],
            terminated_pod_gc_threshold: capstan_controllers::podgc::DEFAULT_THRESHOLD,
            node_lifecycle: Default::default(),
            ingress_ip_cidr: servicelb::DEFAULT_POOL.into(),
        }
    }
}

/// `capstan controller-manager`: the controllers as a process of their own.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerManagerArgs {
    /// kubeconfig with the API server and credentials (default: the local server's
    /// admin.kubeconfig).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub flags: ControllerFlags,
}

pub async fn command(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| crate::server::default_data_dir().join("admin.kubeconfig"));
    let api = Api::from_kubeconfig(&kubeconfig)?;
    let names = enabled(&args.flags)?;
    tracing::info!(controllers = ?names, "controller manager started");
    let shutdown = crate::server::shutdown_signal()?;
    tokio::select! {
        _ = run(api, names, args.flags) => {}
        _ = shutdown => {}
    }
    Ok(())
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
pub async fn run(api: Api, names: Vec<&'static str>, flags: ControllerFlags) {
    let threshold = flags.terminated_pod_gc_threshold;
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
            "cronjob" => cronjob::register(&mut caches),
            "garbagecollector" => gc::register(&mut caches),
            "disruption" => disruption::register(&mut caches),
            "nodelifecycle" => nodelifecycle::register(&mut caches),
            "namespace" => namespace::register(&mut caches),
            "podgc" => podgc::register(&mut caches),
            "service-lb" => servicelb::register(&mut caches),
            "endpoint" => endpoints::register(&mut caches),
            "endpointslice" => endpointslice::register(&mut caches),
            _ => {}
        }
    }
    let mut tasks = Vec::new();
    for n in names {
        let (api, caches, flags) = (api.clone(), caches.clone(), flags.clone());
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
                "cronjob" => cronjob::run(api, &caches).await,
                "garbagecollector" => gc::run(api, &caches).await,
                "disruption" => disruption::run(api, &caches).await,
                "nodelifecycle" => nodelifecycle::run(api, &caches, flags.node_lifecycle).await,
                "namespace" => namespace::run(api, &caches).await,
                "podgc" => podgc::run(api, &caches, threshold).await,
                "service-lb" => servicelb::run(api, &caches, &flags.ingress_ip_cidr).await,
                "endpoint" => endpoints::run(api, &caches).await,
                "endpointslice" => endpointslice::run(api, &caches).await,
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
            ..Default::default()
        };
        assert_eq!(enabled(&f(&["*"], false)).unwrap(), ALL);
        assert!(enabled(&f(&["*"], true)).unwrap().is_empty());
        assert_eq!(
            enabled(&f(&["garbagecollector", "replicaset"], false)).unwrap(),
            vec!["replicaset", "garbagecollector"]
        );
        assert_eq!(
            enabled(&f(&["*", "-disruption"], false)).unwrap(),
            ALL.iter()
                .copied()
                .filter(|n| *n != "disruption")
                .collect::<Vec<_>>()
        );
        assert!(enabled(&f(&["nope"], false)).is_err());
    }
}
