//! Cluster DNS: the answers of CoreDNS's kubernetes plugin (kube's DNS-based service
//! discovery spec) computed from an in-memory [`Index`] of namespaces, services,
//! EndpointSlices and pods. No I/O: the server (`capstan server`'s DNS edge) keeps the index
//! up to date from watches, hands each received message to [`plan`] and sends the reply or
//! relays the query upstream.
//!
//! Records served (`<zone>` is the cluster domain, `cluster.local` by default):
//! - `svc.ns.svc.<zone>` A/AAAA: the cluster IPs; for a headless service the published
//!   endpoint addresses (ready ones, or all with publishNotReadyAddresses); ExternalName:
//!   a CNAME to spec.externalName (chased upstream).
//! - `endpoint.svc.ns.svc.<zone>`: an endpoint by hostname or dashed IP.
//! - `_port._proto.svc.ns.svc.<zone>` SRV (and `svc.ns.svc.<zone>` SRV: every port).
//! - `a-b-c-d.ns.pod.<zone>` A (pods insecure by default, as kubeadm's and k3s's Corefiles).
//! - PTR for cluster IPs and endpoint addresses; `dns-version.<zone>` TXT.
//! - NXDOMAIN / NODATA with the zone's SOA (TTL 5, the plugin's default).

pub mod answer;
pub mod index;
pub mod message;

pub use answer::{resolve, Answer, Resolution};
pub use index::Index;
pub use message::{encode, finish, plan, Plan, Transport};

use hickory_proto::rr::Name;

/// The kubernetes plugin's `pods` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodMode {
    /// `a-b-c-d.ns.pod.<zone>` answers a.b.c.d if the namespace exists.
    Insecure,
    /// Only if a pod in that namespace has the address.
    Verified,
    /// No pod records.
    Disabled,
}

impl std::str::FromStr for PodMode {
    type Err = String;
    fn from_str(s: &str) -> Result<PodMode, String> {
        match s {
            "insecure" => Ok(PodMode::Insecure),
            "verified" => Ok(PodMode::Verified),
            "disabled" => Ok(PodMode::Disabled),
            _ => Err(format!(
                "invalid pod mode {s:?}: want insecure, verified or disabled"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster domain, lowercase and fully qualified.
    pub zone: Name,
    /// TTL of every record served from the index.
    pub ttl: u32,
    pub pods: PodMode,
}

/// The kubernetes plugin's default TTL.
pub const DEFAULT_TTL: u32 = 5;

impl Config {
    /// A configuration for `domain` ("cluster.local", with or without the final dot).
    pub fn new(domain: &str, ttl: u32, pods: PodMode) -> Result<Config, String> {
        let d = domain.trim_end_matches('.');
        if d.is_empty() {
            return Err("the cluster domain is empty".into());
        }
        let zone = Name::from_ascii(format!("{d}."))
            .map_err(|e| format!("invalid cluster domain {domain:?}: {e}"))?
            .to_lowercase();
        Ok(Config { zone, ttl, pods })
    }
}

#[cfg(test)]
mod tests;
