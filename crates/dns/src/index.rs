//! The cluster as DNS sees it: namespaces, services, the endpoints of their EndpointSlices
//! (discovery.k8s.io/v1) and pod IPs, kept up to date one object at a time from the JSON the
//! API serves (a change costs the size of that object, never a rebuild), with the reverse
//! maps PTR answers need.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// `namespace/name`.
type Key = (String, String);

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceKind {
    /// spec.clusterIPs (IPv4 and/or IPv6).
    ClusterIp(Vec<IpAddr>),
    /// clusterIP None: answered from the endpoints.
    Headless,
    /// spec.externalName, lowercased, without a trailing dot.
    ExternalName(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// The port's name ("" when unnamed).
    pub name: String,
    /// "tcp", "udp" or "sctp" (lowercase, as SRV names spell it).
    pub protocol: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub kind: ServiceKind,
    pub ports: Vec<Port>,
    pub publish_not_ready: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub addresses: Vec<IpAddr>,
    pub hostname: Option<String>,
    /// conditions.ready (nil counts as ready, as the API documents).
    pub ready: bool,
}

#[derive(Debug, Clone)]
struct Slice {
    service: Key,
    endpoints: Vec<Endpoint>,
    ports: Vec<Port>,
}

/// One endpoint address of a service with the ports its slice lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Address<'a> {
    pub ip: IpAddr,
    pub hostname: Option<&'a str>,
    pub ports: &'a [Port],
}

impl Address<'_> {
    /// The label naming this endpoint under its service: the hostname, else the IP with
    /// dashes (CoreDNS's endpointHostname).
    pub fn label(&self) -> String {
        match self.hostname {
            Some(h) => h.to_string(),
            None => dashed(self.ip),
        }
    }
}

/// `10-42-0-5` for 10.42.0.5, `fd00--1` for fd00::1.
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

#[derive(Debug, Default)]
pub struct Index {
    namespaces: HashSet<String>,
    services: HashMap<Key, Service>,
    service_by_ip: HashMap<IpAddr, Key>,
    slices: HashMap<Key, Slice>,
    slices_by_service: HashMap<Key, BTreeSet<Key>>,
    slices_by_ip: HashMap<IpAddr, BTreeSet<Key>>,
    /// Pod IP → namespaces of the pods that have it (with a count: old and new pods can
    /// briefly share an IP).
    pods_by_ip: HashMap<IpAddr, HashMap<String, usize>>,
    pod_ips: HashMap<Key, (Vec<IpAddr>, String)>,
    /// The SOA serial: set by the caller when the index changes.
    pub serial: u32,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn key_of(v: &Value) -> Key {
    (
        str_at(v, "/metadata/namespace").to_string(),
        str_at(v, "/metadata/name").to_string(),
    )
}

fn ports_of(v: Option<&Value>) -> Vec<Port> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p.get("port").and_then(Value::as_u64)?;
            Some(Port {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_lowercase(),
                protocol: p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_lowercase(),
                port: u16::try_from(port).ok()?,
            })
        })
        .collect()
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.services.get(&(ns.to_string(), name.to_string()))
    }

    /// The service whose cluster IP is `ip`, as (namespace, name).
    pub fn service_for_ip(&self, ip: IpAddr) -> Option<(&str, &str)> {
        self.service_by_ip
            .get(&ip)
            .map(|(ns, n)| (ns.as_str(), n.as_str()))
    }

    /// Whether a pod in `ns` has `ip`.
    pub fn pod_has_ip(&self, ns: &str, ip: IpAddr) -> bool {
        self.pods_by_ip.get(&ip).is_some_and(|m| m.contains_key(ns))
    }

    /// The endpoint addresses DNS publishes for a service: ready ones, or all when the
    /// service publishes not-ready addresses; slices in name order, duplicates dropped.
    pub fn addresses(&self, ns: &str, name: &str) -> Vec<Address<'_>> {
        let key = (ns.to_string(), name.to_string());
        let all = self.services.get(&key).is_some_and(|s| s.publish_not_ready);
        let mut out: Vec<Address<'_>> = Vec::new();
        for sk in self.slices_by_service.get(&key).into_iter().flatten() {
            let Some(slice) = self.slices.get(sk) else {
                continue;
            };
            for ep in slice.endpoints.iter().filter(|e| all || e.ready) {
                for ip in &ep.addresses {
                    let a = Address {
                        ip: *ip,
                        hostname: ep.hostname.as_deref(),
                        ports: &slice.ports,
                    };
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
        }
        out
    }

    /// The (namespace, service, endpoint label) of every published endpoint with `ip`.
    pub fn endpoints_for_ip(&self, ip: IpAddr) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for sk in self.slices_by_ip.get(&ip).into_iter().flatten() {
            let Some(slice) = self.slices.get(sk) else {
                continue;
            };
            let (ns, svc) = &slice.service;
            for a in self.addresses(ns, svc) {
                let e = (ns.clone(), svc.clone(), a.label());
                if a.ip == ip && !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        out
    }

    pub fn set_namespace(&mut self, ns: &Value, present: bool) {
        let name = str_at(ns, "/metadata/name").to_string();
        if present {
            self.namespaces.insert(name);
        } else {
            self.namespaces.remove(&name);
        }
    }

    /// Add or replace a Service (v1, as served).
    pub fn upsert_service(&mut self, svc: &Value) {
        self.remove_service(svc);
        let key = key_of(svc);
        let spec = &svc["spec"];
        let kind = if spec["type"].as_str() == Some("ExternalName") {
            let ext = spec["externalName"]
                .as_str()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_lowercase();
            ServiceKind::ExternalName(ext)
        } else if spec["clusterIP"].as_str() == Some("None") {
            ServiceKind::Headless
        } else {
            let mut ips: Vec<IpAddr> = spec["clusterIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect();
            if ips.is_empty() {
                ips.extend(
                    spec["clusterIP"]
                        .as_str()
                        .and_then(|s| s.parse::<IpAddr>().ok()),
                );
            }
            for ip in &ips {
                self.service_by_ip.insert(*ip, key.clone());
            }
            ServiceKind::ClusterIp(ips)
        };
        let service = Service {
            kind,
            ports: ports_of(spec.get("ports")),
            publish_not_ready: spec["publishNotReadyAddresses"].as_bool() == Some(true),
        };
        self.services.insert(key, service);
    }

    pub fn remove_service(&mut self, svc: &Value) {
        let key = key_of(svc);
        if let Some(old) = self.services.remove(&key) {
            if let ServiceKind::ClusterIp(ips) = old.kind {
                for ip in ips {
                    if self.service_by_ip.get(&ip) == Some(&key) {
                        self.service_by_ip.remove(&ip);
                    }
                }
            }
        }
    }

    /// Add or replace an EndpointSlice (discovery.k8s.io/v1, as served). FQDN slices and
    /// slices without a `kubernetes.io/service-name` label publish nothing.
    pub fn upsert_slice(&mut self, slice: &Value) {
        self.remove_slice(slice);
        let key = key_of(slice);
        let service = str_at(slice, "/metadata/labels/kubernetes.io~1service-name");
        let ty = str_at(slice, "/addressType");
        if service.is_empty() || !(ty == "IPv4" || ty == "IPv6") {
            return;
        }
        let endpoints: Vec<Endpoint> = slice["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| Endpoint {
                addresses: e["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str()?.parse().ok())
                    .collect(),
                hostname: e["hostname"]
                    .as_str()
                    .filter(|h| !h.is_empty())
                    .map(str::to_lowercase),
                ready: e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false),
            })
            .collect();
        for ip in endpoints.iter().flat_map(|e| &e.addresses) {
            self.slices_by_ip
                .entry(*ip)
                .or_default()
                .insert(key.clone());
        }
        let svc_key = (key.0.clone(), service.to_string());
        self.slices_by_service
            .entry(svc_key.clone())
            .or_default()
            .insert(key.clone());
        let ports = ports_of(slice.get("ports"));
        self.slices.insert(
            key,
            Slice {
                service: svc_key,
                endpoints,
                ports,
            },
        );
    }

    pub fn remove_slice(&mut self, slice: &Value) {
        let key = key_of(slice);
        let Some(old) = self.slices.remove(&key) else {
            return;
        };
        if let Some(set) = self.slices_by_service.get_mut(&old.service) {
            set.remove(&key);
            if set.is_empty() {
                self.slices_by_service.remove(&old.service);
            }
        }
        for ip in old.endpoints.iter().flat_map(|e| &e.addresses) {
            if let Some(set) = self.slices_by_ip.get_mut(ip) {
                set.remove(&key);
                if set.is_empty() {
                    self.slices_by_ip.remove(ip);
                }
            }
        }
    }

    /// Add or replace a Pod: its status.podIPs (or podIP) while it is not finished.
    pub fn upsert_pod(&mut self, pod: &Value) {
        self.remove_pod(pod);
        let phase = str_at(pod, "/status/phase");
        if phase == "Succeeded" || phase == "Failed" {
            return;
        }
        let mut ips: Vec<IpAddr> = pod
            .pointer("/status/podIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p["ip"].as_str()?.parse().ok())
            .collect();
        if ips.is_empty() {
            ips.extend(str_at(pod, "/status/podIP").parse::<IpAddr>().ok());
        }
        if ips.is_empty() {
            return;
        }
        let key = key_of(pod);
        for ip in &ips {
            *self
                .pods_by_ip
                .entry(*ip)
                .or_default()
                .entry(key.0.clone())
                .or_default() += 1;
        }
        let ns = key.0.clone();
        self.pod_ips.insert(key, (ips, ns));
    }

    pub fn remove_pod(&mut self, pod: &Value) {
        let Some((ips, ns)) = self.pod_ips.remove(&key_of(pod)) else {
            return;
        };
        for ip in ips {
            if let Some(m) = self.pods_by_ip.get_mut(&ip) {
                if let Some(n) = m.get_mut(&ns) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&ns);
                    }
                }
                if m.is_empty() {
                    self.pods_by_ip.remove(&ip);
                }
            }
        }
    }
}
