//! Cluster DNS in `capstan server`: list+watch caches of namespaces, services,
//! EndpointSlices (and pods with `--cluster-dns-pods verified`) keep a capstan-dns
//! [`Index`] current; a UDP and a TCP server answer every query from it in memory
//! ([`serve`]) and relay names outside the cluster domain to the host's resolvers
//! ([`upstream`]). At start the `kube-dns` Service is created in kube-system if absent.

mod serve;
mod upstream;

use crate::controllers::cache::Cache;
use anyhow::{Context, Result};
use capstan_agent::api::Api;
use capstan_dns::{Config, Index, PodMode};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct DnsFlags {
    /// Address (IP:PORT) the cluster DNS server listens on, UDP and TCP (default
    /// <--cluster-dns>:53 when --cluster-dns is set; otherwise no DNS server runs).
    #[arg(long)]
    pub cluster_dns_listen: Option<SocketAddr>,
    /// Run no cluster DNS server.
    #[arg(long)]
    pub disable_dns: bool,
    /// Resolvers for names outside the cluster domain (default: the host's resolv.conf).
    #[arg(long, hide = true)]
    pub dns_upstream: Vec<SocketAddr>,
    /// Pod records: insecure (any a-b-c-d.<ns>.pod name), verified (a pod has the IP) or
    /// disabled.
    #[arg(long, default_value = "insecure", value_parser = parse_pod_mode)]
    pub cluster_dns_pods: PodMode,
}

fn parse_pod_mode(s: &str) -> Result<PodMode, String> {
    s.parse()
}

/// The shared state of the DNS servers.
pub struct Dns {
    pub index: RwLock<Index>,
    pub cfg: Config,
    pub upstreams: upstream::Upstreams,
}

/// Where to listen: the flag, else the cluster DNS IP on port 53, else nowhere.
fn listen_address(flags: &DnsFlags, cluster_dns: Option<&str>) -> Result<Option<SocketAddr>> {
    if flags.disable_dns {
        return Ok(None);
    }
    if let Some(a) = flags.cluster_dns_listen {
        return Ok(Some(a));
    }
    match cluster_dns {
        Some(ip) => {
            let ip: IpAddr = ip
                .parse()
                .with_context(|| format!("--cluster-dns {ip:?} is not an IP address"))?;
            Ok(Some(SocketAddr::new(ip, 53)))
        }
        None => Ok(None),
    }
}

fn now_serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// A cache of `path` whose changes `apply` (upsert on Some(new), remove on None) writes
/// into the index.
fn watch(
    dns: &Arc<Dns>,
    plural: &'static str,
    path: &str,
    apply: fn(&mut Index, Option<&Value>, Option<&Value>),
) -> Arc<Cache> {
    let cache = Cache::new(plural, path);
    let d = dns.clone();
    cache.on_change(move |old, new| {
        let mut ix = d.index.write().unwrap();
        apply(&mut ix, old, new);
        ix.serial = now_serial();
    });
    cache
}

/// Start the cluster DNS server if it is enabled: bind now (an error is returned), then
/// serve once the caches have listed (or after 5 s, as CoreDNS starts unsynced).
pub async fn start(
    api: Api,
    flags: &DnsFlags,
    cluster_dns: Option<&str>,
    cluster_domain: &str,
    service_ip: IpAddr,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = listen_address(flags, cluster_dns)? else {
        return Ok(None);
    };
    let cfg = Config::new(
        cluster_domain,
        capstan_dns::DEFAULT_TTL,
        flags.cluster_dns_pods,
    )
    .map_err(anyhow::Error::msg)
    .context("--cluster-domain")?;
    let upstreams = if flags.dns_upstream.is_empty() {
        upstream::Upstreams::from_host(listen)
    } else {
        upstream::Upstreams::new(flags.dns_upstream.clone())
    };
    let udp = tokio::net::UdpSocket::bind(listen)
        .await
        .with_context(|| format!("binding the cluster DNS server to udp {listen}"))?;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the cluster DNS server to tcp {listen}"))?;
    tracing::info!(%listen, domain = %cfg.zone, upstreams = ?upstreams.servers(), "cluster DNS started");
    let dns = Arc::new(Dns {
        index: RwLock::new(Index::new()),
        cfg,
        upstreams,
    });
    let mut caches = vec![
        watch(
            &dns,
            "namespaces",
            "/api/v1/namespaces",
            |ix, old, new| match (old, new) {
                (_, Some(n)) => ix.set_namespace(n, true),
                (Some(o), None) => ix.set_namespace(o, false),
                _ => {}
            },
        ),
        watch(
            &dns,
            "services",
            "/api/v1/services",
            |ix, old, new| match (old, new) {
                (_, Some(n)) => ix.upsert_service(n),
                (Some(o), None) => ix.remove_service(o),
                _ => {}
            },
        ),
        watch(
            &dns,
            "endpointslices",
            "/apis/discovery.k8s.io/v1/endpointslices",
            |ix, old, new| match (old, new) {
                (_, Some(n)) => ix.upsert_slice(n),
                (Some(o), None) => ix.remove_slice(o),
                _ => {}
            },
        ),
    ];
    if flags.cluster_dns_pods == PodMode::Verified {
        caches.push(watch(&dns, "pods", "/api/v1/pods", |ix, old, new| {
            match (old, new) {
                (_, Some(n)) => ix.upsert_pod(n),
                (Some(o), None) => ix.remove_pod(o),
                _ => {}
            }
        }));
    }
    for c in &caches {
        tokio::spawn(c.clone().run(api.clone()));
    }
    tokio::spawn(ensure_service(api, service_ip));
    Ok(Some(tokio::spawn(async move {
        let synced = futures::future::join_all(caches.iter().map(|c| c.wait_synced()));
        if tokio::time::timeout(Duration::from_secs(5), synced)
            .await
            .is_err()
        {
            tracing::warn!("cluster DNS serving before its caches have listed");
        }
        serve::run(dns, udp, tcp).await;
    })))
}

/// The `kube-dns` Service (k3s's and kube's DNS addon's), created if absent.
pub fn kube_dns_service(ip: IpAddr) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS"},
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}
        },
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}
            ]
        }
    })
}

async fn ensure_service(api: Api, ip: IpAddr) {
    let path = "/api/v1/namespaces/kube-system/services";
    loop {
        match api.call("GET", &format!("{path}/kube-dns"), None).await {
            Ok(a) if a.code == 200 => return,
            Ok(a) if a.code == 404 => {
                match api.call("POST", path, Some(&kube_dns_service(ip))).await {
                    Ok(a) if a.code == 201 || a.code == 409 => return,
                    Ok(a) if a.code == 422 => {
                        let msg = a.body["message"].as_str().unwrap_or("").to_string();
                        tracing::warn!(%ip, error = msg, "cannot create the kube-dns Service");
                        return;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(listen: Option<&str>, disable: bool) -> DnsFlags {
        DnsFlags {
            cluster_dns_listen: listen.map(|l| l.parse().unwrap()),
            disable_dns: disable,
            dns_upstream: Vec::new(),
            cluster_dns_pods: PodMode::Insecure,
        }
    }

    #[test]
    fn listen_address_defaults_to_the_cluster_dns_ip() {
        let a = |f: &DnsFlags, c| listen_address(f, c).unwrap().map(|a| a.to_string());
        assert_eq!(a(&flags(None, false), None), None);
        assert_eq!(
            a(&flags(None, false), Some("10.43.0.10")).as_deref(),
            Some("10.43.0.10:53")
        );
        assert_eq!(
            a(&flags(Some("127.0.0.1:5353"), false), Some("10.43.0.10")).as_deref(),
            Some("127.0.0.1:5353")
        );
        assert_eq!(a(&flags(Some("127.0.0.1:5353"), true), None), None);
        assert!(listen_address(&flags(None, false), Some("nope")).is_err());
    }
}
