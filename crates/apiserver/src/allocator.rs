//! Service cluster IP and node port allocation. Allocations are derived from the stored
//! services under one lock, so concurrent creates never get the same IP or port, and nothing
//! leaks across restarts (the stored services are the allocation table).

use crate::status::{ApiError, ApiResult};
use crate::{meta, ApiServer};
use capstan_api::resources;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        let prefix: u8 = len.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        if prefix > 30 {
            return Err(format!("CIDR {s:?} is too small"));
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        u32::from(ip) & mask == self.base
    }

    /// The n-th address (1 = first usable).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

pub struct Allocator {
    pub service_cidr: Cidr,
    pub node_ports: (u16, u16),
    lock: tokio::sync::Mutex<()>,
}

fn invalid(svc: &Value, field: &str, value: Value, why: &str) -> ApiError {
    let name = meta::name(svc);
    ApiError::invalid(
        "Service",
        "",
        name,
        format!("Service \"{name}\" is invalid: {field}: Invalid value: {value}: {why}"),
        vec![
            json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {value}: {why}"), "field": field}),
        ],
    )
}

impl Allocator {
    pub fn new(service_cidr: Cidr, node_ports: (u16, u16)) -> Allocator {
        Allocator {
            service_cidr,
            node_ports,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn used(&self, api: &Arc<ApiServer>) -> ApiResult<(HashSet<Ipv4Addr>, HashSet<u16>)> {
        let svc = resources::find("", "v1", "services").expect("registered");
        let list = api.store.list(&svc.prefix(None), None, None, 0).await?;
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        for kv in list.kvs {
            let v: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
            if let Some(ip) = v
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                ips.insert(ip);
            }
            for p in v
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                    ports.insert(n as u16);
                }
            }
        }
        Ok((ips, ports))
    }

    /// Fill spec.clusterIP(s) and node ports of a new service.
    pub async fn allocate(&self, api: &Arc<ApiServer>, svc: &mut Value) -> ApiResult<()> {
        let _g = self.lock.lock().await;
        let (ips, ports) = self.used(api).await?;
        self.assign(svc, &ips, &ports, None)
    }

    /// Keep the allocated IP on update (clusterIP is immutable) and allocate node ports when the
    /// type changes to NodePort/LoadBalancer.
    pub async fn keep_on_update(
        &self,
        api: &Arc<ApiServer>,
        old: &Value,
        new: &mut Value,
    ) -> ApiResult<()> {
        let _g = self.lock.lock().await;
        let (ips, mut ports) = self.used(api).await?;
        for p in old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                ports.remove(&(n as u16));
            }
        }
        self.assign(new, &ips, &ports, Some(old))
    }

    fn assign(
        &self,
        svc: &mut Value,
        ips: &HashSet<Ipv4Addr>,
        ports: &HashSet<u16>,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if ty == "ExternalName" {
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            return Ok(());
        }
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let requested = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| {
                svc.pointer("/spec/clusterIPs/0")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        let ip = match (requested, old_ip) {
            (Some(r), Some(o)) if r == o => r,
            (None, Some(o)) => o,
            (Some(r), Some(o)) => {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    json!(r),
                    &format!("may not change once set (was {o})"),
                ));
            }
            (Some(r), None) if r == "None" => r,
            (Some(r), None) => {
                let Ok(addr) = r.parse::<Ipv4Addr>() else {
                    return Err(invalid(
                        svc,
                        "spec.clusterIPs",
                        json!([r]),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                };
                if !self.service_cidr.contains(addr) {
                    return Err(invalid(svc, "spec.clusterIPs", json!([r]), &format!(
                        "failed to allocate IP {r}: the provided IP ({r}) is not in the valid range. The range of valid IPs is {}",
                        self.service_cidr
                    )));
                }
                if ips.contains(&addr) {
                    return Err(invalid(
                        svc,
                        "spec.clusterIPs",
                        json!([r]),
                        &format!("failed to allocate IP {r}: provided IP is already allocated"),
                    ));
                }
                r
            }
            (None, None) => {
                let size = self.service_cidr.size();
                let start = rand::random::<u32>() % (size - 2);
                let found = (0..size - 2)
                    .map(|i| self.service_cidr.nth(1 + (start + i) % (size - 2)))
                    .find(|ip| !ips.contains(ip) && *ip != self.service_cidr.nth(10));
                match found {
                    Some(ip) => ip.to_string(),
                    None => {
                        return Err(ApiError::internal(format!(
                            "failed to allocate a serviceIP: range is full ({})",
                            self.service_cidr
                        )))
                    }
                }
            }
        };
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
        if ip != "None" {
            if svc.pointer("/spec/ipFamilies").is_none() {
                svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            }
            if svc.pointer("/spec/ipFamilyPolicy").is_none() {
                svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
        let mut taken: HashSet<u16> = ports.clone();
        let n = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        for i in 0..n {
            let p = &mut svc["spec"]["ports"][i];
            if !wants_node_ports {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
                continue;
            }
            match p.get("nodePort").and_then(Value::as_u64) {
                Some(np) => {
                    let np16 = np as u16;
                    let kept = old
                        .and_then(|o| o.pointer(&format!("/spec/ports/{i}/nodePort")))
                        .and_then(Value::as_u64)
                        == Some(np);
                    if np < self.node_ports.0 as u64 || np > self.node_ports.1 as u64 {
                        let field = format!("spec.ports[{i}].nodePort");
                        let (lo, hi) = self.node_ports;
                        return Err(invalid(&svc.clone(), &field, json!(np), &format!(
                            "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                        )));
                    }
                    if taken.contains(&np16) && !kept {
                        let field = format!("spec.ports[{i}].nodePort");
                        return Err(invalid(
                            &svc.clone(),
                            &field,
                            json!(np),
                            "provided port is already allocated",
                        ));
                    }
                    taken.insert(np16);
                }
                None => {
                    let (lo, hi) = self.node_ports;
                    let span = (hi - lo + 1) as u32;
                    let start = rand::random::<u32>() % span;
                    let Some(port) = (0..span)
                        .map(|k| lo + ((start + k) % span) as u16)
                        .find(|p| !taken.contains(p))
                    else {
                        return Err(ApiError::internal(
                            "failed to allocate a nodePort: range is full",
                        ));
                    };
                    taken.insert(port);
                    svc["spec"]["ports"][i]["nodePort"] = json!(port);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_math() {
        let c = Cidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(c.nth(1).to_string(), "10.43.0.1");
        assert_eq!(c.nth(10).to_string(), "10.43.0.10");
        assert!(c.contains("10.43.255.1".parse().unwrap()));
        assert!(!c.contains("10.44.0.1".parse().unwrap()));
        assert!(Cidr::parse("nope").is_err());
        assert_eq!(
            Cidr::parse("10.42.7.9/24").unwrap().to_string(),
            "10.42.7.0/24"
        );
    }
}
