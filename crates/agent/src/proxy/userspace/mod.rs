//! The userspace proxy (`--proxy-mode userspace`): one listener of the agent per TCP or UDP
//! service port, bound on the node's address on a port the kernel picks; the table
//! (`plan::ruleset`) DNATs the service's cluster/external/ingress IPs and node port to it.
//! A TCP connection dials the endpoints the [`balance::Balancer`] names, in turn, each with
//! [`CONNECT_TIMEOUT`], until one answers, then copies both ways; none answering resets the
//! client. UDP keeps a session socket per client to the endpoint it picked (`udp.rs`).
//!
//! Each pass (after a change): listeners for new frontends are opened, the balancers of kept
//! ones get the new endpoints, the ruleset is applied, then listeners of frontends that are
//! gone are closed (connections already established keep running). On a clean shutdown the
//! table goes first, then every listener.

mod balance;
pub mod plan;
mod tcp;
mod udp;

use super::mirror::Mirrors;
use super::Applier;
use balance::Balancer;
use plan::{Frontend, Proto};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long one endpoint may take to accept a TCP connection before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A UDP session (client → endpoint) is dropped after this long without a datagram.
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

type Shared = Arc<Mutex<Balancer>>;

struct Listener {
    port: u16,
    balancer: Shared,
    task: tokio::task::JoinHandle<()>,
}

pub struct Proxy {
    node: String,
    node_ip: Option<Ipv4Addr>,
    table: String,
    listeners: BTreeMap<String, Listener>,
}

impl Proxy {
    pub fn new(node: &str, node_ip: &str, table: &str) -> Proxy {
        let ip = node_ip.parse().ok();
        if ip.is_none() {
            tracing::warn!(
                node_ip,
                "proxy: the node address is not IPv4; userspace proxy idle"
            );
        }
        Proxy {
            node: node.to_string(),
            node_ip: ip,
            table: table.to_string(),
            listeners: BTreeMap::new(),
        }
    }

    /// Open a listener for `f` on the node's address (port chosen by the kernel).
    async fn open(&self, f: &Frontend) -> std::io::Result<Listener> {
        let ip = self
            .node_ip
            .ok_or_else(|| std::io::Error::other("no node IPv4"))?;
        let balancer: Shared = Default::default();
        let (port, task) = match f.proto {
            Proto::Tcp => {
                let l = tokio::net::TcpListener::bind((ip, 0)).await?;
                let port = l.local_addr()?.port();
                (port, tokio::spawn(tcp::serve(l, balancer.clone())))
            }
            Proto::Udp => {
                let s = tokio::net::UdpSocket::bind((ip, 0)).await?;
                let port = s.local_addr()?.port();
                (port, tokio::spawn(udp::serve(s, balancer.clone())))
            }
        };
        tracing::info!(frontend = %f.id, port, "proxy: listening");
        Ok(Listener {
            port,
            balancer,
            task,
        })
    }

    /// Keep listeners and table in step with the API until cancelled.
    pub async fn sync(&mut self, mirrors: &Mirrors, changed: &Notify) {
        let mut applier = Applier::default();
        loop {
            super::next_pass(changed).await;
            let Some((svcs, sls)) = mirrors.snapshot() else {
                continue;
            };
            let Some(target) = self.node_ip else {
                continue;
            };
            let fronts = plan::frontends(&svcs, &sls, &self.node);
            for f in &fronts {
                if !self.listeners.contains_key(&f.id) {
                    match self.open(f).await {
                        Ok(l) => {
                            self.listeners.insert(f.id.clone(), l);
                        }
                        Err(e) => {
                            tracing::warn!(frontend = %f.id, error = %e, "proxy: cannot listen");
                            continue;
                        }
                    }
                }
                let l = &self.listeners[&f.id];
                l.balancer
                    .lock()
                    .expect("balancer")
                    .update(f.endpoints.clone(), f.affinity.map(Duration::from_secs));
            }
            let listening: Vec<(&Frontend, u16)> = fronts
                .iter()
                .filter_map(|f| self.listeners.get(&f.id).map(|l| (f, l.port)))
                .collect();
            let ips = tokio::task::spawn_blocking(super::node_addresses)
                .await
                .unwrap_or_default();
            let script = plan::ruleset(&self.table, &self.node, &ips, target, &listening);
            if !applier.apply(&self.table, script, changed).await {
                continue;
            }
            let gone: Vec<String> = self
                .listeners
                .keys()
                .filter(|id| !fronts.iter().any(|f| &f.id == *id))
                .cloned()
                .collect();
            for id in gone {
                if let Some(l) = self.listeners.remove(&id) {
                    l.task.abort();
                    tracing::info!(frontend = %id, port = l.port, "proxy: listener closed");
                }
            }
        }
    }

    /// Close every listener (the table is deleted by the caller first).
    pub fn close(self) {
        for (_, l) in self.listeners {
            l.task.abort();
        }
    }
}
