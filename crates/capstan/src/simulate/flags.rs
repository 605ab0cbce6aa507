//! The simulator's flags (`capstan agent --simulate N …`) and their parsing into a node
//! template (pure, table-tested).

use capstan_validation::quantity::Quantity;
use serde_json::{json, Value};

/// Flags of `capstan agent --simulate N`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SimFlags {
    /// Register N simulated (hollow) nodes, as kubemark/kwok do, instead of running a real node:
    /// no containerd, pods bound to them are reported Running with fake IPs.
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    /// Simulated nodes are named PREFIX-0 … PREFIX-(N-1).
    #[arg(long, default_value = "sim", requires = "simulate")]
    pub node_name_prefix: String,
    /// CPU capacity (= allocatable) of each simulated node.
    #[arg(long, default_value = "32", requires = "simulate")]
    pub sim_cpu: String,
    /// Memory capacity of each simulated node.
    #[arg(long, default_value = "256Gi", requires = "simulate")]
    pub sim_memory: String,
    /// Pod capacity of each simulated node.
    #[arg(long, default_value = "110", requires = "simulate")]
    pub sim_pods: String,
    /// More resources of each simulated node, NAME=QTY (repeatable): extended resources
    /// such as example.com/dongle=4 or nvidia.com/gpu=8, or ephemeral-storage=100Gi.
    #[arg(long = "sim-extended", value_name = "NAME=QTY", requires = "simulate")]
    pub sim_extended: Vec<String>,
    /// Labels added to every simulated node: k=v,k2=v2.
    #[arg(long, default_value = "", requires = "simulate")]
    pub sim_labels: String,
    /// Spread the nodes over K zones (topology.kubernetes.io/zone=zone-<i mod K>); 0: none.
    #[arg(long, default_value_t = 0, requires = "simulate")]
    pub sim_zones: usize,
    /// Taints of every simulated node: key=value:Effect,key:Effect.
    #[arg(long, default_value = "", requires = "simulate")]
    pub sim_taints: String,
    /// The range the simulated nodes' podCIDRs (a /24 each) are taken from; pod IPs come from
    /// the node's podCIDR. Nothing is routed to them: no address is configured on the host.
    #[arg(long, default_value = "100.64.0.0/10", requires = "simulate")]
    pub sim_pod_cidr: String,
    /// Seconds between two Lease renewals of a node (the kubelet's 10 s).
    #[arg(long, default_value_t = 10, requires = "simulate")]
    pub sim_lease_seconds: u64,
    /// Seconds between two status posts of a node when nothing changed (the kubelet's
    /// nodeStatusReportFrequency, 5 min).
    #[arg(long, default_value_t = 300, requires = "simulate")]
    pub sim_status_seconds: u64,
    /// Status writes (pods and nodes) in flight at once.
    #[arg(long, default_value_t = 32, requires = "simulate")]
    pub sim_concurrency: usize,
}

/// What every simulated node is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub prefix: String,
    pub count: usize,
    /// Capacity = allocatable: (resource name, quantity as given).
    pub resources: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub zones: usize,
    /// Taints as API objects.
    pub taints: Vec<Value>,
    /// The first address and prefix length of the podCIDR range.
    pub pod_range: (u32, u8),
}

/// `name=quantity`: a resource name and a valid quantity.
pub fn parse_resource(s: &str) -> Result<(String, String), String> {
    let (name, qty) = s
        .split_once('=')
        .map(|(n, q)| (n.trim(), q.trim()))
        .ok_or_else(|| format!("invalid resource {s:?}: want NAME=QUANTITY"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("invalid resource name in {s:?}"));
    }
    check_quantity(name, qty)?;
    Ok((name.to_string(), qty.to_string()))
}

fn check_quantity(name: &str, qty: &str) -> Result<(), String> {
    let q = Quantity::parse(qty).map_err(|_| format!("invalid quantity {qty:?} for {name}"))?;
    if q.milli_value() < 0 {
        return Err(format!("{name}: quantity {qty:?} must not be negative"));
    }
    // Extended resources (a domain-prefixed name) count whole devices, as kube validates.
    if name.contains('/') && q.milli_value() % 1000 != 0 {
        return Err(format!("{name}: quantity {qty:?} must be an integer"));
    }
    Ok(())
}

/// `k=v,k2=v2` (empty: none).
pub fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid label {part:?}: want key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.contains(char::is_whitespace) || v.contains(char::is_whitespace) {
            return Err(format!("invalid label {part:?}"));
        }
        out.retain(|(have, _)| have != k);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// `key=value:Effect,key:Effect` (empty: none) as Taint objects.
pub fn parse_taints(s: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid taint {part:?}: want key[=value]:Effect"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "invalid taint effect {effect:?} in {part:?}: NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("invalid taint key in {part:?}"));
        }
        let mut t = json!({"key": key, "effect": effect});
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            t["value"] = json!(v);
        }
        out.push(t);
    }
    Ok(out)
}

/// `a.b.c.d/len` as (address, len); the address is masked to the prefix.
pub fn parse_cidr(s: &str) -> Result<(u32, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR {s:?}: want a.b.c.d/len"))?;
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR {s:?}: not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 24)
        .ok_or_else(|| format!("invalid CIDR {s:?}: the prefix must be at most /24"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((u32::from(ip) & mask, len))
}

impl Template {
    /// The node template the flags describe, or why they are invalid.
    pub fn from_flags(f: &SimFlags) -> Result<Template, String> {
        let count = f.simulate.unwrap_or(0);
        if count == 0 {
            return Err("--simulate N: N must be at least 1".into());
        }
        let prefix = f.node_name_prefix.trim().to_string();
        let longest = format!("{prefix}-{}", count - 1);
        let errs = capstan_validation::names::is_dns1123_subdomain(&longest);
        if prefix.is_empty() || !errs.is_empty() {
            return Err(format!(
                "--node-name-prefix {prefix:?}: node names such as {longest:?} must be DNS subdomains: {}",
                errs.join("; ")
            ));
        }
        let mut resources = Vec::new();
        for (name, flag, value) in [
            ("cpu", "--sim-cpu", &f.sim_cpu),
            ("memory", "--sim-memory", &f.sim_memory),
            ("pods", "--sim-pods", &f.sim_pods),
        ] {
            check_quantity(name, value.trim()).map_err(|e| format!("{flag}: {e}"))?;
            resources.push((name.to_string(), value.trim().to_string()));
        }
        for e in &f.sim_extended {
            let (name, qty) = parse_resource(e).map_err(|e| format!("--sim-extended: {e}"))?;
            resources.retain(|(n, _)| *n != name);
            resources.push((name, qty));
        }
        let labels = parse_labels(&f.sim_labels).map_err(|e| format!("--sim-labels: {e}"))?;
        let taints = parse_taints(&f.sim_taints).map_err(|e| format!("--sim-taints: {e}"))?;
        let pod_range = parse_cidr(&f.sim_pod_cidr).map_err(|e| format!("--sim-pod-cidr: {e}"))?;
        let slots = 1usize << (24 - pod_range.1);
        if count > slots {
            return Err(format!(
                "--sim-pod-cidr {} holds {slots} node podCIDRs (/24), fewer than --simulate {count}",
                f.sim_pod_cidr
            ));
        }
        Ok(Template {
            prefix,
            count,
            resources,
            labels,
            zones: f.sim_zones,
            taints,
            pod_range,
        })
    }

    /// The name of node `i`.
    pub fn node_name(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// How many /24 podCIDRs the range holds.
    pub fn pod_cidr_slots(&self) -> u32 {
        1u32 << (24 - self.pod_range.1)
    }

    /// Capacity (= allocatable) as a ResourceList.
    pub fn capacity(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.resources {
            m.insert(k.clone(), json!(v));
        }
        Value::Object(m)
    }

    /// The labels the flags add to node `i` (zone included).
    pub fn labels_of(&self, i: usize) -> Vec<(String, String)> {
        let mut out = self.labels.clone();
        if self.zones > 0 {
            out.retain(|(k, _)| k != ZONE);
            out.push((ZONE.into(), format!("zone-{}", i % self.zones)));
        }
        out
    }
}

pub const ZONE: &str = "topology.kubernetes.io/zone";

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(n: usize) -> SimFlags {
        SimFlags {
            simulate: Some(n),
            node_name_prefix: "sim".into(),
            sim_cpu: "32".into(),
            sim_memory: "256Gi".into(),
            sim_pods: "110".into(),
            sim_pod_cidr: "100.64.0.0/10".into(),
            sim_lease_seconds: 10,
            sim_status_seconds: 300,
            sim_concurrency: 32,
            ..Default::default()
        }
    }

    #[test]
    fn resources() {
        type Case<'a> = (&'a str, Result<(&'a str, &'a str), &'a str>);
        let cases: &[Case] = &[
            ("example.com/dongle=4", Ok(("example.com/dongle", "4"))),
            ("nvidia.com/gpu = 8", Ok(("nvidia.com/gpu", "8"))),
            (
                "ephemeral-storage=100Gi",
                Ok(("ephemeral-storage", "100Gi")),
            ),
            ("hugepages-2Mi=1Gi", Ok(("hugepages-2Mi", "1Gi"))),
            ("example.com/dongle=1.5", Err("must be an integer")),
            ("example.com/dongle=500m", Err("must be an integer")),
            ("example.com/dongle", Err("want NAME=QUANTITY")),
            ("=4", Err("invalid resource name")),
            ("gpu=lots", Err("invalid quantity")),
            ("cpu=-1", Err("must not be negative")),
        ];
        for (input, want) in cases {
            match (parse_resource(input), want) {
                (Ok((n, q)), Ok((wn, wq))) => assert_eq!((n.as_str(), q.as_str()), (*wn, *wq)),
                (Err(e), Err(w)) => assert!(e.contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn labels() {
        type Case<'a> = (&'a str, Result<Vec<(&'a str, &'a str)>, &'a str>);
        let cases: &[Case] = &[
            ("", Ok(vec![])),
            ("a=1", Ok(vec![("a", "1")])),
            (
                "example.com/rack=r1, tier=gpu",
                Ok(vec![("example.com/rack", "r1"), ("tier", "gpu")]),
            ),
            ("a=1,a=2", Ok(vec![("a", "2")])),
            ("empty=", Ok(vec![("empty", "")])),
            ("novalue", Err("want key=value")),
            ("=v", Err("invalid label")),
        ];
        for (input, want) in cases {
            match (parse_labels(input), want) {
                (Ok(got), Ok(w)) => {
                    let w: Vec<(String, String)> = w
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(got, w, "{input}")
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn taints() {
        let cases: &[(&str, Result<Value, &str>)] = &[
            ("", Ok(json!([]))),
            (
                "dedicated=gpu:NoSchedule",
                Ok(json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])),
            ),
            (
                "a:NoExecute, b=x:PreferNoSchedule",
                Ok(json!([{"key": "a", "effect": "NoExecute"},
                           {"key": "b", "value": "x", "effect": "PreferNoSchedule"}])),
            ),
            (
                "example.com/t=v:NoSchedule",
                Ok(json!([{"key": "example.com/t", "value": "v", "effect": "NoSchedule"}])),
            ),
            ("a=b", Err("want key[=value]:Effect")),
            ("a=b:Sometimes", Err("invalid taint effect")),
            (":NoSchedule", Err("invalid taint key")),
        ];
        for (input, want) in cases {
            match (parse_taints(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(Value::Array(got), *w, "{input}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        type Case<'a> = (&'a str, Result<(u32, u8), &'a str>);
        let cases: &[Case] = &[
            ("100.64.0.0/10", Ok((ip("100.64.0.0"), 10))),
            ("100.64.7.9/16", Ok((ip("100.64.0.0"), 16))),
            ("10.0.0.0/24", Ok((ip("10.0.0.0"), 24))),
            ("10.0.0.0/25", Err("at most /24")),
            ("10.0.0.0", Err("want a.b.c.d/len")),
            ("fd00::/64", Err("not an IPv4 address")),
        ];
        for (input, want) in cases {
            match (parse_cidr(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{input}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn templates() {
        let mut f = flags(3);
        f.sim_extended = vec!["example.com/dongle=4".into(), "cpu=8".into()];
        f.sim_labels = "tier=sim".into();
        f.sim_zones = 2;
        f.sim_taints = "sim=true:NoSchedule".into();
        let t = Template::from_flags(&f).unwrap();
        assert_eq!(
            t.capacity(),
            json!({"memory": "256Gi", "pods": "110", "example.com/dongle": "4", "cpu": "8"})
        );
        assert_eq!(t.node_name(2), "sim-2");
        let zone = |i| {
            t.labels_of(i)
                .into_iter()
                .find(|(k, _)| k == ZONE)
                .map(|(_, v)| v)
        };
        assert_eq!(zone(0).as_deref(), Some("zone-0"));
        assert_eq!(zone(3).as_deref(), Some("zone-1"));
        assert_eq!(t.taints.len(), 1);
        assert_eq!(t.pod_cidr_slots(), 16384);

        type Bad = fn(&mut SimFlags);
        let bad: &[(Bad, &str)] = &[
            (|f| f.simulate = Some(0), "at least 1"),
            (|f| f.node_name_prefix = "Sim_".into(), "DNS subdomains"),
            (|f| f.sim_cpu = "many".into(), "--sim-cpu"),
            (|f| f.sim_memory = "-1Gi".into(), "--sim-memory"),
            (|f| f.sim_extended = vec!["x".into()], "--sim-extended"),
            (|f| f.sim_labels = "x".into(), "--sim-labels"),
            (|f| f.sim_taints = "x:Y".into(), "--sim-taints"),
            (|f| f.sim_pod_cidr = "10.0.0.0/23".into(), "fewer than"),
        ];
        for (change, want) in bad {
            let mut f = flags(3);
            change(&mut f);
            let e = Template::from_flags(&f).unwrap_err();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
