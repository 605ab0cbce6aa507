//! The service-lb controller's decisions (kube's service-lb-controller with an IP pool
//! instead of a cloud, as OpenShift's ingress IP controller): every type LoadBalancer service
//! without a loadBalancerClass gets one address of the pool (`--ingress-ip-cidr`) in
//! `status.loadBalancer.ingress[{ip, ipMode: VIP}]`; no two services share one; the address
//! goes back to the pool when the service is deleted or stops being a LoadBalancer; the pool
//! is rebuilt from the services' status at start, so assignments survive restarts.

use crate::{name, str_at, time_at};
use capstan_validation::cidr::Cidr;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The default `--ingress-ip-cidr` (OpenShift 3's ingressIPNetworkCIDR default).
pub const DEFAULT_POOL: &str = "172.29.0.0/16";

/// The pool and who holds what (keys `namespace/name`).
#[derive(Debug, Clone)]
pub struct Pool {
    pub cidr: Cidr,
    owner: HashMap<Ipv4Addr, String>,
    held: HashMap<String, Ipv4Addr>,
}

/// What to do for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Write status.loadBalancer.ingress = [{ip, ipMode: VIP}] (events: ensured; `new` when
    /// the address was just taken from the pool).
    Set {
        ip: Ipv4Addr,
        new: bool,
    },
    /// Remove the pool's address from the status (the service is no LoadBalancer now).
    Clear,
    /// No address for it: a SyncLoadBalancerFailed Warning with this message; it stays
    /// `<pending>` until an address is free.
    Failed(String),
}

/// Whether this controller serves `svc`: a LoadBalancer of the default class, not being
/// deleted.
pub fn managed(svc: &Value) -> bool {
    str_at(svc, "/spec/type") == "LoadBalancer"
        && str_at(svc, "/spec/loadBalancerClass").is_empty()
        && svc.pointer("/metadata/deletionTimestamp").is_none()
}

fn status_ips(svc: &Value) -> Vec<Ipv4Addr> {
    svc.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(Value::as_str))
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The status this controller writes for `ip`.
pub fn ingress_status(ip: Ipv4Addr) -> Value {
    json!({"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}})
}

impl Pool {
    pub fn new(cidr: Cidr) -> Pool {
        Pool {
            cidr,
            owner: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Rebuild from the services as stored: a LoadBalancer service keeps the pool address in
    /// its status; where two claim one, the older service (then the lower key) keeps it.
    pub fn rebuild(&mut self, services: &[Value]) {
        self.owner.clear();
        self.held.clear();
        let mut lbs: Vec<&Value> = services.iter().filter(|s| managed(s)).collect();
        lbs.sort_by(|a, b| {
            time_at(a, "/metadata/creationTimestamp")
                .cmp(&time_at(b, "/metadata/creationTimestamp"))
                .then_with(|| key(a).cmp(&key(b)))
        });
        for s in lbs {
            if let Some(ip) = status_ips(s)
                .into_iter()
                .find(|ip| self.cidr.usable(*ip) && !self.owner.contains_key(ip))
            {
                self.take(&key(s), ip);
            }
        }
    }

    fn take(&mut self, key: &str, ip: Ipv4Addr) {
        self.owner.insert(ip, key.to_string());
        self.held.insert(key.to_string(), ip);
    }

    /// Give `key`'s address back; true when it held one.
    pub fn release(&mut self, key: &str) -> bool {
        match self.held.remove(key) {
            Some(ip) => {
                self.owner.remove(&ip);
                true
            }
            None => false,
        }
    }

    pub fn held(&self, key: &str) -> Option<Ipv4Addr> {
        self.held.get(key).copied()
    }

    pub fn in_use(&self) -> usize {
        self.held.len()
    }

    /// The lowest free address.
    fn free(&self) -> Option<Ipv4Addr> {
        let size = self.cidr.size();
        (0..size)
            .map(|o| self.cidr.nth(o as u32))
            .find(|ip| self.cidr.usable(*ip) && !self.owner.contains_key(ip))
    }

    /// Decide for the service `key` (None: it was deleted).
    pub fn sync(&mut self, key: &str, svc: Option<&Value>) -> Action {
        let Some(svc) = svc else {
            self.release(key);
            return Action::Nothing;
        };
        if !managed(svc) {
            self.release(key);
            let ours = status_ips(svc).iter().any(|ip| self.cidr.contains(*ip));
            let lb_of_other_class = str_at(svc, "/spec/type") == "LoadBalancer";
            return if ours && !lb_of_other_class {
                Action::Clear
            } else {
                Action::Nothing
            };
        }
        let want = ingress_status_of(svc);
        if let Some(ip) = self.held(key) {
            return if want.as_ref() == Some(&ingress_status(ip)) {
                Action::Nothing
            } else {
                Action::Set { ip, new: false }
            };
        }
        let requested = str_at(svc, "/spec/loadBalancerIP");
        if !requested.is_empty() {
            let Ok(ip) = requested.parse::<Ipv4Addr>() else {
                return failed(&format!(
                    "requested loadBalancerIP {requested:?} is not an IPv4 address"
                ));
            };
            if !self.cidr.usable(ip) {
                return failed(&format!(
                    "requested loadBalancerIP {ip} is not in the ingress IP pool {}",
                    self.cidr
                ));
            }
            if let Some(o) = self.owner.get(&ip) {
                return failed(&format!(
                    "requested loadBalancerIP {ip} is in use by service {o}"
                ));
            }
            self.take(key, ip);
            return Action::Set { ip, new: true };
        }
        // An address already in its status (a restart raced a write) is kept when free.
        if let Some(ip) = status_ips(svc)
            .into_iter()
            .find(|ip| self.cidr.usable(*ip) && !self.owner.contains_key(ip))
        {
            self.take(key, ip);
            return Action::Set { ip, new: false };
        }
        match self.free() {
            Some(ip) => {
                self.take(key, ip);
                Action::Set { ip, new: true }
            }
            None => failed(&format!(
                "no address left in the ingress IP pool {} ({} in use)",
                self.cidr,
                self.in_use()
            )),
        }
    }
}

fn failed(why: &str) -> Action {
    Action::Failed(format!(
        "Error syncing load balancer: failed to ensure load balancer: {why}"
    ))
}

fn ingress_status_of(svc: &Value) -> Option<Value> {
    let ingress = svc.pointer("/status/loadBalancer/ingress")?;
    Some(json!({"loadBalancer": {"ingress": ingress}}))
}

/// `namespace/name`.
pub fn key(svc: &Value) -> String {
    format!("{}/{}", crate::namespace(svc), name(svc))
}

#[cfg(test)]
mod tests;
