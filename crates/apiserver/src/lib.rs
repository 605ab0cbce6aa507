//! The Kubernetes REST API server of Capstan.
//!
//! It knows the `Store` trait, never a backend: the binary opens the store and hands it in.
//! Requests flow: TLS + authentication ([`server`], [`auth`]) → [`router`] (health, version,
//! discovery, OpenAPI) → [`request`] parsing → [`handlers`] (get/list/watch/create/update/
//! patch/delete) → admission and validation → the store. Lists and watches are served from
//! the [`watchcache`], which follows one store watch. Pod streaming subresources (log, exec,
//! attach, portforward) are proxied to the node's kubelet ([`kubelet`]). Joining nodes fetch
//! their credentials with the join token ([`join`]).

pub mod admission;
pub mod allocator;
pub mod auth;
pub mod bootstrap;
pub mod codec;
pub mod convert;
pub mod discovery;
pub mod externalip;
pub mod filter;
pub mod handlers;
pub mod join;
pub mod kubelet;
pub mod meta;
pub mod request;
pub mod respond;
pub mod router;
pub mod server;
pub mod status;
pub mod watchcache;

use capstan_api::resources::{self, Resource};
use capstan_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The Kubernetes version whose API Capstan serves.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "32";
pub const KUBE_GIT_VERSION: &str = "v1.32.4+capstan";

pub fn version_info() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
    })
}

/// Settings of the API server.
#[derive(Debug, Clone)]
pub struct Config {
    pub service_cidr: allocator::Cidr,
    pub cluster_cidr: String,
    pub node_port_range: (u16, u16),
    /// CIDRs a service's spec.externalIPs may use (OpenShift's ExternalIPNetworkCIDRs; `!`
    /// rejects); empty: externalIPs are refused.
    pub external_ip_cidrs: capstan_validation::cidr::CidrRules,
    /// The LoadBalancer ingress pool (OpenShift's ingressIPNetworkCIDR); its addresses are
    /// externalIPs only where the service-lb controller assigned them.
    pub ingress_ip_cidr: Option<allocator::Cidr>,
    /// Bearer tokens the server accepts, with their identities.
    pub tokens: Vec<(String, auth::User)>,
    /// Number of events the watch cache keeps for watchers resuming at an old revision.
    pub watch_cache_events: usize,
    /// How long Events are kept (kube-apiserver's --event-ttl).
    pub event_ttl: Duration,
    /// TLS client config for kubelets (pods/log, exec, attach, portforward); None: those
    /// subresources answer 503.
    pub kubelet_client: Option<Arc<rustls::ClientConfig>>,
    /// Node joining (`/cacerts`, `/capstan/v1/node-credentials`); None: those paths are 404.
    pub node_join: Option<join::NodeJoin>,
    /// tolerationSeconds of the `not-ready` / `unreachable` NoExecute tolerations admission adds
    /// to pods (kube-apiserver's --default-not-ready-toleration-seconds and
    /// --default-unreachable-toleration-seconds).
    pub default_toleration_seconds: (i64, i64),
    /// The address and port other hosts and pods reach this API server at: the endpoints of
    /// the `kubernetes` Service (None: it gets none).
    pub advertise: Option<(String, u16)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            service_cidr: allocator::Cidr::parse("10.43.0.0/16").expect("valid"),
            cluster_cidr: "10.42.0.0/16".into(),
            node_port_range: (30000, 32767),
            external_ip_cidrs: Default::default(),
            ingress_ip_cidr: None,
            tokens: Vec::new(),
            watch_cache_events: 100_000,
            event_ttl: Duration::from_secs(3600),
            kubelet_client: None,
            node_join: None,
            default_toleration_seconds: (300, 300),
            advertise: None,
        }
    }
}

/// Shared state of the running server.
pub struct ApiServer {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub cache: Arc<watchcache::WatchCache>,
    pub allocator: allocator::Allocator,
}

impl ApiServer {
    /// Build the server: start the watch cache and create the objects every cluster has.
    pub async fn new(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<ApiServer>> {
        let cache = watchcache::WatchCache::start(store.clone(), config.watch_cache_events).await?;
        let allocator = allocator::Allocator::new(config.service_cidr, config.node_port_range);
        let api = Arc::new(ApiServer {
            config,
            store,
            cache,
            allocator,
        });
        bootstrap::ensure(&api).await?;
        // kube's repair controller: the allocations are what the stored services hold.
        let n = api.allocator.rebuild(&api.store).await?;
        tracing::debug!(
            allocations = n,
            "service allocations rebuilt from the store"
        );
        let repair = api.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(180));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = repair.allocator.repair(&repair.store).await {
                    tracing::warn!(error = %e, "service allocation repair");
                }
            }
        });
        let gc = api.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                gc.expire_events().await;
            }
        });
        // Compact the store every 5 minutes to the revision seen at the previous tick, as
        // kube-apiserver does for etcd (history older than that is no longer served).
        let compactor = api.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            let mut previous: Option<i64> = None;
            loop {
                tick.tick().await;
                if let Some(rev) = previous {
                    if let Err(e) = compactor.store.compact(rev).await {
                        tracing::debug!(error = %e, revision = rev, "compaction");
                    }
                }
                previous = compactor.store.current_revision().await.ok();
            }
        });
        Ok(api)
    }

    /// Delete Events older than the event TTL (kube-apiserver stores them with an etcd lease).
    pub async fn expire_events(&self) {
        let res = resources::find("", "v1", "events").expect("registered");
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(self.config.event_ttl).unwrap_or_default();
        for ev in self.cache.list_values(&res.prefix(None)) {
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/series/lastObservedTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .filter_map(|p| ev.pointer(p).and_then(Value::as_str))
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .max();
            if last.is_some_and(|t| t < cutoff) {
                let key = res.key(meta::namespace(&ev), meta::name(&ev));
                let _ = self.store.delete(&key, None).await;
            }
        }
    }

    /// Ready when the store answers.
    pub async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.store.health()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("etcd failed: {e}")),
            Err(_) => Err("etcd failed: timed out".into()),
        }
    }

    /// Hook after an object is deleted from the store.
    pub async fn after_delete(&self, res: &Resource, obj: &Value) {
        if res.kind == "Service" {
            self.allocator.release(obj);
        }
    }
}
