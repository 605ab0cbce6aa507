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
    /// Address (IP:PORT) the cluster DNS server listens on, UDP and TCP (default, when
    /// --cluster-dns is set: this server's advertised address, port 10053, which the kube-dns
    /// Service's endpoints name, so pods reach it at <--cluster-dns>:53 through the service
    /// proxy; without --cluster-dns no DNS server runs). Pods are answered over UDP only on
    /// a specific address: a wildcard socket replies from the pod bridge's address, which the
    /// proxy's connection tracking does not map back.
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

/// The port the DNS server listens on by default (the kube-dns Service maps 53 to it).
pub const DEFAULT_PORT: u16 = 10053;

/// Where to listen: the flag, else (with a cluster DNS IP) the advertised address on
/// [`DEFAULT_PORT`], else nowhere.
fn listen_address(
    flags: &DnsFlags,
    cluster_dns: Option<&str>,
    advertise: IpAddr,
) -> Result<Option<SocketAddr>> {
    if flags.disable_dns {
        return Ok(None);
    }
    if let Some(a) = flags.cluster_dns_listen {
        return Ok(Some(a));
    }
    match cluster_dns {
        Some(ip) => {
            ip.parse::<IpAddr>()
                .with_context(|| format!("--cluster-dns {ip:?} is not an IP address"))?;
            Ok(Some(SocketAddr::new(advertise, DEFAULT_PORT)))
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
    advertise: IpAddr,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = listen_address(flags, cluster_dns, advertise)? else {
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
    tokio::spawn(ensure_service(api, service_ip, listen, advertise));
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
            "clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}
            ]
        }
    })
}

/// The kube-dns Service's Endpoints and EndpointSlice: the DNS server in this process (the
/// Service has no selector: no pods serve it). `at` is an address pods can reach.
pub fn kube_dns_endpoints(at: SocketAddr) -> (Value, Value) {
    let (ip, port) = (at.ip().to_string(), at.port());
    let ports = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(n, proto)| json!({"name": n, "port": port, "protocol": proto}))
            .collect::<Vec<_>>()
    };
    let p = ports(&[("dns", "UDP"), ("dns-tcp", "TCP")]);
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": p}]});
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "capstan-dns"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": p});
    (endpoints, slice)
}

/// Create or replace `obj` at `collection`/name.
async fn put(api: &Api, collection: &str, obj: &Value) -> bool {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let path = format!("{collection}/{name}");
    match api.call("GET", &path, None).await {
        Ok(a) if a.code == 200 => {
            let mut o = obj.clone();
            o["metadata"]["resourceVersion"] = a.body["metadata"]["resourceVersion"].clone();
            matches!(api.call("PUT", &path, Some(&o)).await, Ok(a) if a.code == 200)
        }
        Ok(a) if a.code == 404 => {
            matches!(api.call("POST", collection, Some(obj)).await, Ok(a) if a.code == 201)
        }
        _ => false,
    }
}

async fn ensure_service(api: Api, ip: IpAddr, listen: SocketAddr, advertise: IpAddr) {
    // Pods reach the server at its advertised address (a loopback listener they cannot).
    let at = match listen.ip() {
        a if a.is_unspecified() => Some(SocketAddr::new(advertise, listen.port())),
        a if a.is_loopback() => None,
        _ => Some(listen),
    };
    if let Some(at) = at {
        let (endpoints, slice) = kube_dns_endpoints(at);
        for _ in 0..60 {
            let ok = put(&api, "/api/v1/namespaces/kube-system/endpoints", &endpoints).await
                && put(
                    &api,
                    "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                    &slice,
                )
                .await;
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
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
    fn listen_address_defaults_to_the_advertised_address() {
        let adv: IpAddr = "192.0.2.2".parse().unwrap();
        let a = |f: &DnsFlags, c| listen_address(f, c, adv).unwrap().map(|a| a.to_string());
        assert_eq!(a(&flags(None, false), None), None);
        assert_eq!(
            a(&flags(None, false), Some("10.43.0.10")).as_deref(),
            Some("192.0.2.2:10053")
        );
        assert_eq!(
            a(&flags(Some("127.0.0.1:5353"), false), Some("10.43.0.10")).as_deref(),
            Some("127.0.0.1:5353")
        );
        assert_eq!(a(&flags(Some("127.0.0.1:5353"), true), None), None);
        assert!(listen_address(&flags(None, false), Some("nope"), adv).is_err());
        let (ep, slice) = kube_dns_endpoints("192.0.2.2:10053".parse().unwrap());
        assert_eq!(
            ep["subsets"][0]["ports"][0],
            json!({"name": "dns", "port": 10053, "protocol": "UDP"})
        );
        assert_eq!(slice["endpoints"][0]["addresses"][0], "192.0.2.2");
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "kube-dns"
        );
    }
}
