//! The node agent: supervises containerd (or uses a given CRI endpoint), registers the Node
//! with the API server and keeps its status and Lease fresh.
//!
//! It also writes the node's CNI configuration (bridge + host-local on the podCIDR), runs the
//! pods bound to the node as real containers ([`pods`]) and serves the kubelet's HTTPS
//! endpoints (container logs, exec, attach, port-forward; [`kubelet`]).

pub mod api;
pub mod cni;
pub mod containerd;
pub mod cri;
pub mod kubelet;
pub mod node;
pub mod podnet;
pub mod pods;
pub mod podstatus;
pub mod proxy;
pub mod registries;

use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;

/// The kubelet version the node reports.
pub const KUBELET_VERSION: &str = "v1.32.4+capstan";

/// How an agent runs.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub api_host: String,
    pub api_port: u16,
    pub cluster_cidr: String,
    /// A CRI socket to use instead of starting containerd.
    pub runtime_endpoint: Option<PathBuf>,
    /// Label the node as a control-plane node (the server's own agent).
    pub control_plane: bool,
    /// The cluster DNS service IP pods are pointed at (None until cluster DNS runs).
    pub cluster_dns: Option<String>,
    pub cluster_domain: String,
    /// CRI runtime handler for pods without a RuntimeClass ("" = runc).
    pub default_runtime: String,
    /// The Linux bridge of the node's pod network.
    pub cni_bridge: String,
    /// A directory of static pod manifests (`--pod-manifest-path`).
    pub pod_manifest_path: Option<PathBuf>,
    /// Registry mirrors and credentials (k3s's registries.yaml format).
    pub registries: Option<PathBuf>,
    /// `--system-reserved` ("cpu=500m,memory=1Gi").
    pub system_reserved: String,
    /// `--eviction-hard` ("memory.available<100Mi,nodefs.available<10%"; "" = none).
    pub eviction_hard: String,
    /// Port of the kubelet HTTPS server (logs, exec, attach, port-forward); 0 picks a free one.
    pub kubelet_port: u16,
    /// The service proxy (`--proxy-mode`).
    pub proxy_mode: proxy::Mode,
    /// The proxy's nftables table (`ip <name>`; "" = [`proxy::DEFAULT_TABLE`]).
    pub proxy_table: String,
    /// The node's InternalIP (`--node-ip`); None: [`internal_ip`].
    pub node_ip: Option<String>,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn memory_kib() -> u64 {
    read_trim("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn disk_kib(dir: &std::path::Path) -> u64 {
    std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The node's InternalIP: the first global IPv4 address (127.0.0.1 when there is none).
pub fn internal_ip() -> String {
    std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                l.split_whitespace()
                    .skip_while(|w| *w != "inet")
                    .nth(1)
                    .map(|a| a.split('/').next().unwrap_or("").to_string())
            })
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn os_image() -> String {
    read_trim("/etc/os-release")
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// The source address this network namespace uses to reach `host` (an IPv4 address or a
/// name resolving to one), as `ip -4 route get` says: the address a joining node is reached
/// at. None when there is no route.
pub fn source_ip_towards(host: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let dst = (host, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_loopback() => Some(v4),
            _ => None,
        })?;
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "route", "get", &dst.to_string()])
        .output()
        .ok()?;
    route_source(&String::from_utf8_lossy(&out.stdout))
}

/// The `src` of one `ip -o route get` line (pure).
pub fn route_source(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "src")?;
    let ip: std::net::Ipv4Addr = words.get(i + 1)?.parse().ok()?;
    (!ip.is_loopback()).then(|| ip.to_string())
}

/// Gather the host facts for the Node object.
pub fn host_facts(cfg: &AgentConfig, runtime_version: String) -> node::HostFacts {
    node::HostFacts {
        name: cfg.node_name.clone(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1),
        memory_kib: memory_kib(),
        ephemeral_kib: disk_kib(&cfg.data_dir),
        internal_ip: cfg.node_ip.clone().unwrap_or_else(internal_ip),
        hostname: read_trim("/proc/sys/kernel/hostname"),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        os_image: os_image(),
        arch: capstan_images::archive::oci_arch(),
        machine_id: read_trim("/etc/machine-id"),
        boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
        runtime_version,
        pod_cidr: String::new(),
        control_plane: cfg.control_plane,
        kubelet_port: cfg.kubelet_port,
        reserved_cpu_milli: 0,
        reserved_memory: 0,
        eviction_memory: 0,
        memory_pressure: false,
        disk_pressure: false,
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Bind the kubelet server on all addresses (the API server dials the node's InternalIP) and
/// serve it; the port actually bound goes into the Node's daemonEndpoints.
async fn start_kubelet_server(
    cfg: &AgentConfig,
    facts: &mut node::HostFacts,
    rt: cri::Runtime,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", cfg.kubelet_port))
        .await
        .with_context(|| format!("binding the kubelet port {}", cfg.kubelet_port))?;
    facts.kubelet_port = listener.local_addr()?.port();
    let sans = kubelet::tls::sans(&facts.internal_ip, &facts.hostname, &facts.name);
    let tls = kubelet::tls::server_config(&cfg.data_dir, &facts.name, sans)
        .context("issuing the kubelet serving certificate")?;
    tracing::info!(port = facts.kubelet_port, "kubelet server started");
    Ok(tokio::spawn(kubelet::serve(
        listener,
        std::sync::Arc::new(tls),
        rt,
    )))
}

/// Run the agent until `shutdown` resolves; containerd (if started here) is stopped then.
pub async fn run(cfg: AgentConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let started = match &cfg.runtime_endpoint {
        Some(_) => None,
        None => Some(containerd::Containerd::start(&cfg.data_dir).await?),
    };
    let socket = cfg
        .runtime_endpoint
        .clone()
        .unwrap_or_else(|| capstan_images::containerd_socket(&cfg.data_dir));
    if let Some(c) = &started {
        tracing::info!(pid = c.pid(), socket = %socket.display(), "containerd started");
    }
    let pending = capstan_images::pending_dir(&cfg.data_dir);
    let sock = socket.clone();
    match tokio::task::spawn_blocking(move || capstan_images::import_dir(&sock, &pending)).await? {
        Ok(files) if !files.is_empty() => tracing::info!(count = files.len(), "images imported"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "importing queued images"),
    }
    // containerd creates its socket before its CRI plugin answers; wait (bounded) for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (mut rt, images, version) = loop {
        let attempt = async {
            let (mut rt, images) = cri::connect_both(&socket).await?;
            let version = cri::runtime_version(&mut rt).await.context("CRI Version")?;
            Ok::<_, anyhow::Error>((rt, images, version))
        };
        match attempt.await {
            Ok(v) => break v,
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = format!("{e:#}"), "CRI not answering yet");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let api = api::Api::from_data_dir(&cfg.data_dir, &cfg.api_host, cfg.api_port)?;
    let mut facts = host_facts(&cfg, version);
    let thresholds = pods::eviction::parse(&cfg.eviction_hard).map_err(anyhow::Error::msg)?;
    (facts.reserved_cpu_milli, facts.reserved_memory) =
        node::parse_reserved(&cfg.system_reserved).map_err(anyhow::Error::msg)?;
    facts.eviction_memory = thresholds.memory.as_ref().map_or(0, |(_, t)| {
        t.bytes(facts.memory_kib as i128 * 1024).max(0) as u64
    });
    let kubelet = start_kubelet_server(&cfg, &mut facts, rt.clone()).await?;
    let mut node_obj = node::register(&api, &mut facts, &cfg.cluster_cidr).await?;
    cni::install(&cfg.data_dir, &facts.pod_cidr, &cfg.cni_bridge)
        .context("writing the CNI configuration")?;
    // containerd loads the CNI config asynchronously; give it a moment so the first status
    // already reports the network (bounded: the heartbeat reports whatever is true).
    for _ in 0..50 {
        if matches!(cri::runtime_ready(&mut rt).await, Ok((true, true, _))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Node changes to report at once: the runtime went or came back, pressure changed.
    let runtime_changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let memory_pressure = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let disk_pressure = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ctx = std::sync::Arc::new(pods::Ctx {
        api: api.clone(),
        rt: rt.clone(),
        images,
        node: facts.name.clone(),
        data_dir: cfg.data_dir.clone(),
        host_ip: facts.internal_ip.clone(),
        events: pods::events::Recorder::new(api.clone(), facts.name.clone()),
        node_cpu_milli: facts.cpus as i128 * 1000,
        node_memory: facts.memory_kib as i128 * 1024,
        cluster_dns: cfg.cluster_dns.clone(),
        cluster_domain: cfg.cluster_domain.clone(),
        default_runtime: cfg.default_runtime.clone(),
        registries: cfg.registries.clone(),
        node_changed: runtime_changed.clone(),
    });
    let eviction = tokio::spawn(pods::eviction::run(
        ctx.clone(),
        thresholds,
        memory_pressure.clone(),
        disk_pressure.clone(),
        std::time::Duration::from_secs(5),
    ));
    let pod_manager = tokio::spawn(pods::run(ctx, cfg.pod_manifest_path.clone()));
    let (stop_proxy, proxy_stop) = tokio::sync::oneshot::channel::<()>();
    let proxy = match cfg.proxy_mode {
        proxy::Mode::None => None,
        mode => {
            let table = if cfg.proxy_table.is_empty() {
                proxy::DEFAULT_TABLE.to_string()
            } else {
                cfg.proxy_table.clone()
            };
            Some(tokio::spawn(proxy::run(
                api.clone(),
                mode,
                facts.name.clone(),
                facts.internal_ip.clone(),
                table,
                async {
                    let _ = proxy_stop.await;
                },
            )))
        }
    };
    let (stop_podnet, podnet_stop) = tokio::sync::oneshot::channel::<()>();
    let podnet = tokio::spawn(podnet::run(
        api.clone(),
        podnet::Settings {
            node: facts.name.clone(),
            node_ip: facts.internal_ip.clone(),
            pod_cidr: facts.pod_cidr.clone(),
            cluster_cidr: cfg.cluster_cidr.clone(),
            table: podnet::table_for(if cfg.proxy_table.is_empty() {
                proxy::DEFAULT_TABLE
            } else {
                &cfg.proxy_table
            }),
            vxlan_dev: podnet::routes::vxlan_device(&cfg.cni_bridge),
        },
        async {
            let _ = podnet_stop.await;
        },
    ));
    tracing::info!(node = %facts.name, pod_cidr = %facts.pod_cidr, runtime = %facts.runtime_version, "node agent started");
    // A containerd we started is restarted when it dies; the node reports NotReady meanwhile.
    let (stop_supervisor, supervisor_stop) = tokio::sync::oneshot::channel::<()>();
    let supervisor = started.map(|c| {
        tokio::spawn(containerd::supervise(
            c,
            cfg.data_dir.clone(),
            runtime_changed.clone(),
            supervisor_stop,
        ))
    });
    let heartbeat = async {
        let mut tick = tokio::time::interval(node::HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = runtime_changed.notified() => {}
            }
            facts.memory_pressure = memory_pressure.load(std::sync::atomic::Ordering::Relaxed);
            facts.disk_pressure = disk_pressure.load(std::sync::atomic::Ordering::Relaxed);
            // The bridge's gateway address is ours to keep (the bridge plugin does not add it).
            if let Err(e) = cni::ensure_bridge(&facts.pod_cidr, &cfg.cni_bridge) {
                tracing::warn!(error = %e, "pod network bridge");
            }
            // Ready needs both the runtime and its pod network, as the kubelet reports it.
            let (ready, msg) = match cri::runtime_ready(&mut rt).await {
                Ok((runtime, network, msg)) => (runtime && network, msg),
                Err(e) => (false, e.to_string()),
            };
            let status = node::node_status(
                &facts,
                ready,
                &msg,
                &now(),
                &node::conditions_by_type(&node_obj),
            );
            let path = format!("/api/v1/nodes/{}/status", facts.name);
            match api
                .call("PATCH", &path, Some(&json!({"status": status})))
                .await
            {
                Ok(a) if a.code == 200 => node_obj = a.body,
                Ok(a) if a.code == 404 => {
                    if let Ok(n) = node::register(&api, &mut facts, &cfg.cluster_cidr).await {
                        node_obj = n;
                    }
                }
                Ok(a) => tracing::warn!(code = a.code, body = %a.body, "node status update"),
                Err(e) => tracing::warn!(error = %e, "node status update"),
            }
            if let Err(e) = node::renew_lease(&api, &facts.name, &now_micro()).await {
                tracing::warn!(error = %e, "lease renewal");
            }
        }
    };
    tokio::select! {
        _ = heartbeat => {}
        _ = shutdown => {}
    }
    // The proxy removes its table; a restarted agent rebuilds it from the API.
    let _ = stop_proxy.send(());
    if let Some(p) = proxy {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), p).await;
    }
    // Routes to other nodes' pods and the masquerade table go too.
    let _ = stop_podnet.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), podnet).await;
    // Containers keep running: a restarted agent adopts them.
    pod_manager.abort();
    eviction.abort();
    kubelet.abort();
    if let Some(s) = supervisor {
        let _ = stop_supervisor.send(());
        let _ = s.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_sources() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "10.250.3.1 dev veth0 src 10.250.3.2 uid 0 \\    cache ",
                Some("10.250.3.2"),
            ),
            (
                "192.0.2.9 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0 \\    cache ",
                Some("192.0.2.2"),
            ),
            ("local 127.0.0.1 dev lo src 127.0.0.1 uid 0", None),
            ("10.0.0.1 dev x src", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(super::route_source(text).as_deref(), *want, "{text}");
        }
    }
}
