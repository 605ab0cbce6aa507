//! `capstan server`: open the datastore, create or load the PKI, start the API server and
//! write the admin kubeconfig. Components start in order: store → API server.

use crate::pki;
use anyhow::{Context, Result};
use capstan_apiserver::{allocator::Cidr, ApiServer, Config};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Directory for the embedded store, certificates and kubeconfig.
    #[arg(long, short = 'd')]
    pub data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// etcd endpoints (etcd://HOST:PORT[,HOST:PORT…]); the embedded store when absent.
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// Do not run the node agent in this process.
    #[arg(long)]
    pub disable_agent: bool,
    /// Run no scheduler (pods then need spec.nodeName, or another scheduler).
    #[arg(long)]
    pub disable_scheduler: bool,
    #[command(flatten)]
    pub scheduler: crate::scheduler::SchedulerFlags,
    #[command(flatten)]
    pub controllers: crate::controllers::ControllerFlags,
    #[command(flatten)]
    pub dns: crate::dns::DnsFlags,
    /// CIDR for service cluster IPs.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// CIDR for pod IPs (a /24 per node).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Port range for NodePort services.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// CIDRs a service's spec.externalIPs may use, comma-separated ("!CIDR" rejects); empty:
    /// externalIPs are refused (OpenShift's ExternalIPNetworkCIDRs).
    #[arg(long, default_value = "")]
    pub external_ip_cidrs: String,
    /// Extra names or IPs for the serving certificate.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Where to write the admin kubeconfig (default <data-dir>/admin.kubeconfig).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Name of this node (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// A CRI socket to use instead of starting containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeFlags,
    /// tolerationSeconds of the not-ready:NoExecute toleration added to pods that have none.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable:NoExecute toleration added to pods that have none.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Port of the node agent's kubelet HTTPS server (logs, exec, attach, port-forward).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
}

/// Node-agent flags shared by `capstan server` and `capstan agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeFlags {
    /// The cluster DNS service IP written into pods' resolv.conf (dnsPolicy ClusterFirst);
    /// unset, pods use the node's resolvers.
    #[arg(long)]
    pub cluster_dns: Option<String>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The runtime handler for pods without a RuntimeClass: runc (default) or crun.
    #[arg(long, default_value = "")]
    pub default_runtime: String,
    /// The Linux bridge the node's pods attach to (one per node on a host).
    #[arg(long, default_value = capstan_agent::cni::BRIDGE)]
    pub cni_bridge: String,
    /// A directory of static pod manifests the node agent runs (with mirror pods in the API).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Registry mirrors and credentials (k3s's registries.yaml format); default
    /// <data-dir>/registries.yaml when it exists.
    #[arg(long)]
    pub registries_config: Option<PathBuf>,
    /// Resources kept for the system, taken off the node's allocatable ("cpu=500m,memory=1Gi").
    #[arg(long, default_value = "")]
    pub system_reserved: String,
    /// Hard eviction thresholds of the node agent ("" turns node-pressure eviction off).
    #[arg(long, default_value = capstan_agent::pods::eviction::DEFAULT_HARD)]
    pub eviction_hard: String,
    /// The service proxy of the node: nftables (DNAT to the endpoints in table
    /// `ip <--proxy-nft-table>`), userspace (listeners in the agent that try the endpoints in
    /// turn; the table only redirects to them) or none.
    #[arg(long, default_value = "nftables")]
    pub proxy_mode: capstan_agent::proxy::Mode,
    /// The nftables table the proxy owns (one per node on a host).
    #[arg(long, default_value = capstan_agent::proxy::DEFAULT_TABLE, value_parser = parse_table)]
    pub proxy_nft_table: String,
    /// The node's InternalIP (what the API server dials for logs/exec and other nodes route
    /// this node's pods through). Default: a server's specific --bind-address, an agent's
    /// source address towards its server, else the first global IPv4 address.
    #[arg(long)]
    pub node_ip: Option<std::net::Ipv4Addr>,
}

fn parse_table(s: &str) -> Result<String, String> {
    // The pod network's masquerade table is `<table>-net`: both must be valid names.
    if capstan_agent::proxy::valid_table(s)
        && capstan_agent::proxy::valid_table(&capstan_agent::podnet::table_for(s))
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid nftables table name {s:?} (a letter, then letters, digits, '-' or '_'; at most 63)"
        ))
    }
}

impl NodeFlags {
    /// Fill the agent configuration's node settings (the registries file defaults to
    /// `<data-dir>/registries.yaml`).
    pub fn apply(&self, cfg: &mut capstan_agent::AgentConfig) -> Result<()> {
        cfg.proxy_mode = self.proxy_mode;
        cfg.proxy_table = self.proxy_nft_table.clone();
        cfg.cluster_dns = self.cluster_dns.clone();
        cfg.cluster_domain = self.cluster_domain.clone();
        cfg.default_runtime = self.default_runtime.clone();
        cfg.cni_bridge = self.cni_bridge.clone();
        cfg.pod_manifest_path = self.pod_manifest_path.clone();
        cfg.registries = Some(
            self.registries_config
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("registries.yaml")),
        );
        cfg.system_reserved = self.system_reserved.clone();
        cfg.eviction_hard = self.eviction_hard.clone();
        if let Some(ip) = self.node_ip {
            cfg.node_ip = Some(ip.to_string());
        }
        Ok(())
    }
}

pub fn default_data_dir() -> PathBuf {
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        PathBuf::from("/var/lib/capstan")
    } else {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        PathBuf::from(home).join(".capstan")
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .context("--service-node-port-range must be FROM-TO")?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a <= b, "--service-node-port-range: {a} > {b}");
    Ok((a, b))
}

pub async fn run(args: ServerArgs) -> Result<()> {
    let started = Instant::now();
    let shutdown = shutdown_signal()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let service_cidr = Cidr::parse(&args.service_cidr).map_err(anyhow::Error::msg)?;
    Cidr::parse(&args.cluster_cidr).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        service_cidr.prefix <= 30,
        "--service-cidr {service_cidr} is too small"
    );
    let node_port_range = parse_port_range(&args.service_node_port_range)?;
    let external_ip_cidrs = capstan_validation::cidr::CidrRules::parse(&args.external_ip_cidrs)
        .map_err(|e| anyhow::anyhow!("--external-ip-cidrs: {e}"))?;
    let ingress_ip_cidr = Cidr::parse(&args.controllers.ingress_ip_cidr)
        .map_err(|e| anyhow::anyhow!("--ingress-ip-cidr: {e}"))?;

    // Store.
    let ds = capstan_store::Datastore::parse(args.datastore_endpoint.as_deref(), &data_dir)?;
    let store = capstan_store::open(&ds)
        .await
        .context("opening the datastore")?;
    tracing::info!(datastore = %describe(&ds), "store started");

    // Certificates and credentials.
    let first_ip = service_cidr.nth(1).to_string();
    let mut sans = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        first_ip,
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ];
    if let Some(ip) = args.node.node_ip {
        sans.push(ip.to_string());
    }
    if !args.bind_address.is_unspecified() {
        sans.push(args.bind_address.to_string());
    } else {
        // Joining nodes on other hosts reach the server at this host's address.
        let ip = capstan_agent::internal_ip();
        if !sans.contains(&ip) {
            sans.push(ip);
        }
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim().to_string();
        if !h.is_empty() && !sans.contains(&h) {
            sans.push(h);
        }
    }
    for s in &args.tls_san {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    let pki = pki::ensure(&data_dir, &sans)?;
    let (token, parsed_token) = pki::ensure_token(&data_dir, &pki.ca_cert)?;
    let tls = Arc::new(pki::server_tls(&pki)?);
    let node_join = capstan_apiserver::join::NodeJoin {
        ca_cert: pki.ca_cert.clone(),
        secrets: vec![token, parsed_token.secret],
        issuer: Arc::new(pki::NodeIssuer::load(&data_dir)?),
    };

    // Where other hosts and pods reach this server (the kubernetes and kube-dns endpoints).
    let advertise_ip = if args.bind_address.is_unspecified() || args.bind_address.is_loopback() {
        match args.node.node_ip {
            // Listening everywhere: the node's own address is where the others reach it.
            Some(ip) if args.bind_address.is_unspecified() => ip.to_string(),
            _ => capstan_agent::internal_ip(),
        }
    } else {
        args.bind_address.to_string()
    };
    let config = Config {
        service_cidr,
        cluster_cidr: args.cluster_cidr.clone(),
        node_port_range,
        external_ip_cidrs,
        ingress_ip_cidr: Some(ingress_ip_cidr),
        kubelet_client: Some(Arc::new(pki::kubelet_client_tls(&pki)?)),
        node_join: Some(node_join),
        advertise: Some((advertise_ip.clone(), args.https_listen_port)),
        default_toleration_seconds: (
            args.default_not_ready_toleration_seconds,
            args.default_unreachable_toleration_seconds,
        ),
        ..Config::default()
    };
    let api = ApiServer::new(config, store).await?;
    let addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let host = if args.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        args.bind_address.to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let kubeconfig = args
        .write_kubeconfig
        .clone()
        .unwrap_or_else(|| data_dir.join("admin.kubeconfig"));
    pki::write_kubeconfig(
        &kubeconfig,
        &format!("https://{host}:{}", args.https_listen_port),
        &pki,
    )?;
    tracing::info!(%addr, kubeconfig = %kubeconfig.display(), "apiserver started");
    let serving = tokio::spawn(capstan_apiserver::server::serve(api.clone(), listener, tls));
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "capstan server ready"
    );
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let profiles = crate::scheduler::profiles(crate::scheduler::DEFAULT_NAME, &args.scheduler)?;
        let api =
            capstan_agent::api::Api::from_data_dir(&data_dir, "127.0.0.1", args.https_listen_port)?;
        let names: Vec<&str> = profiles.iter().map(|p| p.scheduler_name.as_str()).collect();
        tracing::info!(profiles = ?names, "scheduler started");
        Some(tokio::spawn(crate::scheduler::run(api, profiles)))
    };
    let controllers = crate::controllers::enabled(&args.controllers)?;
    let controllers = if controllers.is_empty() {
        None
    } else {
        let api =
            capstan_agent::api::Api::from_data_dir(&data_dir, "127.0.0.1", args.https_listen_port)?;
        tracing::info!(controllers = ?controllers, "controller manager started");
        Some(tokio::spawn(crate::controllers::run(
            api,
            controllers,
            args.controllers.clone(),
        )))
    };
    let dns = {
        let api =
            capstan_agent::api::Api::from_data_dir(&data_dir, "127.0.0.1", args.https_listen_port)?;
        // The kube-dns Service's IP: --cluster-dns, else the 10th of the service CIDR (k3s's).
        let service_ip = match args.node.cluster_dns.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => ip,
            _ => IpAddr::V4(service_cidr.nth(10)),
        };
        match crate::dns::start(
            api,
            &args.dns,
            args.node.cluster_dns.as_deref(),
            &args.node.cluster_domain,
            service_ip,
            advertise_ip
                .parse()
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        )
        .await
        {
            Ok(d) => d,
            // The control plane keeps serving without DNS (say, port 53 taken).
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cluster DNS failed to start");
                None
            }
        }
    };
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = if args.disable_agent {
        None
    } else {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let mut cfg = capstan_agent::AgentConfig {
            data_dir: data_dir.clone(),
            node_name: args.node_name.clone().unwrap_or(if hostname.is_empty() {
                "capstan".into()
            } else {
                hostname
            }),
            api_host: "127.0.0.1".into(),
            api_port: args.https_listen_port,
            cluster_cidr: args.cluster_cidr.clone(),
            runtime_endpoint: args.container_runtime_endpoint.clone(),
            control_plane: true,
            kubelet_port: args.kubelet_port,
            // A server bound to one address is reached there (its node too).
            node_ip: (!args.bind_address.is_unspecified() && !args.bind_address.is_loopback())
                .then(|| args.bind_address.to_string()),
            ..Default::default()
        };
        args.node.apply(&mut cfg)?;
        Some(tokio::spawn(async move {
            // The control plane keeps serving if the node agent cannot start (say, no containerd).
            if let Err(e) = capstan_agent::run(cfg, async {
                let _ = agent_stopped.await;
            })
            .await
            {
                tracing::error!(
                    error = format!("{e:#}"),
                    "node agent failed; the control plane keeps running"
                );
            }
        }))
    };
    tokio::select! {
        _ = serving => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    if let Some(s) = scheduler {
        s.abort();
    }
    if let Some(c) = controllers {
        c.abort();
    }
    if let Some(d) = dns {
        d.abort();
    }
    let _ = stop_agent.send(());
    if let Some(a) = agent {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), a).await;
    }
    Ok(())
}

fn describe(ds: &capstan_store::Datastore) -> String {
    match ds {
        capstan_store::Datastore::Embedded { dir } => format!("embedded:{}", dir.display()),
        capstan_store::Datastore::Etcd { endpoints } => format!("etcd:{}", endpoints.join(",")),
    }
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed now, so a signal that arrives
/// while the caller is still starting is not lost (nor fatal).
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
