//! Node-pressure eviction, as the kubelet does it: hard thresholds on `memory.available` and
//! `nodefs.available` (`--eviction-hard`, kubelet's defaults `memory.available<100Mi,
//! nodefs.available<10%`); while a signal is below its threshold the node reports
//! MemoryPressure / DiskPressure and one pod per cycle is evicted — pods using more than they
//! request first, then lower priority, then the largest use above request; critical pods
//! (priority ≥ 2000000000, static pods) never. The evicted pod is Failed with reason Evicted;
//! its worker stops its containers. Parsing and ranking are pure.

use super::Ctx;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One threshold: an absolute quantity (bytes) or a percentage of capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Bytes(i128),
    Percent(f64),
}

impl Threshold {
    pub fn bytes(&self, capacity: i128) -> i128 {
        match self {
            Threshold::Bytes(b) => *b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as i128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    pub memory: Option<(String, Threshold)>,
    pub nodefs: Option<(String, Threshold)>,
}

/// The kubelet's defaults.
pub const DEFAULT_HARD: &str = "memory.available<100Mi,nodefs.available<10%";

/// Parse `--eviction-hard` ("memory.available<100Mi,nodefs.available<10%").
pub fn parse(s: &str) -> Result<Thresholds, String> {
    let mut t = Thresholds::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (signal, value) = part
            .split_once('<')
            .ok_or_else(|| format!("invalid eviction threshold {part:?}: want signal<quantity"))?;
        let th = if let Some(p) = value.strip_suffix('%') {
            Threshold::Percent(
                p.parse()
                    .map_err(|_| format!("invalid percentage in {part:?}"))?,
            )
        } else {
            let q = capstan_validation::quantity::Quantity::parse(value)
                .map_err(|_| format!("invalid quantity in {part:?}"))?;
            Threshold::Bytes(q.milli_value() / 1000)
        };
        match signal {
            "memory.available" => t.memory = Some((value.to_string(), th)),
            "nodefs.available" | "imagefs.available" => t.nodefs = Some((value.to_string(), th)),
            "nodefs.inodesFree" | "imagefs.inodesFree" | "pid.available" => {}
            other => return Err(format!("unknown eviction signal {other:?}")),
        }
    }
    Ok(t)
}

/// A pod the eviction manager may choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    pub critical: bool,
    pub usage: i128,
    pub request: i128,
}

/// Order in which pods are evicted (first = next victim); critical pods are left out.
pub fn rank(mut pods: Vec<Candidate>) -> Vec<Candidate> {
    pods.retain(|p| !p.critical);
    pods.sort_by(|a, b| {
        let over = |p: &Candidate| p.usage > p.request;
        over(b)
            .cmp(&over(a))
            .then(a.priority.cmp(&b.priority))
            .then((b.usage - b.request).cmp(&(a.usage - a.request)))
    });
    pods
}

fn meminfo(key: &str) -> i128 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<i128>().ok())
        .unwrap_or(0)
        * 1024
}

fn disk(dir: &std::path::Path) -> (i128, i128) {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let f: Vec<i128> = text
        .lines()
        .nth(1)
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match f.as_slice() {
        [total, _used, avail, ..] => (avail * 1024, total * 1024),
        _ => (i128::MAX, i128::MAX),
    }
}

fn candidate(p: &Value) -> Candidate {
    let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
    let qos = p["status"]["qosClass"].as_str().unwrap_or("BestEffort");
    let parent = match qos {
        "Guaranteed" => format!("kubepods/pod{uid}"),
        "Burstable" => format!("kubepods/burstable/pod{uid}"),
        _ => format!("kubepods/besteffort/pod{uid}"),
    };
    let usage = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/{parent}/memory.usage_in_bytes"
    ))
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0);
    let request = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.pointer("/resources/requests/memory")
                .and_then(Value::as_str)
        })
        .filter_map(|q| capstan_validation::quantity::Quantity::parse(q).ok())
        .map(|q| q.milli_value() / 1000)
        .sum();
    let priority = p["spec"]["priority"].as_i64().unwrap_or(0) as i32;
    Candidate {
        namespace: p["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .into(),
        name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
        priority,
        critical: priority >= 2_000_000_000
            || !p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null(),
        usage,
        request,
    }
}

fn human(b: i128) -> String {
    if b >= 1 << 30 {
        format!("{}Gi", b >> 30)
    } else if b >= 1 << 20 {
        format!("{}Mi", b >> 20)
    } else {
        format!("{}Ki", b >> 10)
    }
}

/// Every `interval`: observe, report pressure, evict at most one pod.
pub async fn run(
    ctx: Arc<Ctx>,
    t: Thresholds,
    memory_pressure: Arc<AtomicBool>,
    disk_pressure: Arc<AtomicBool>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let mem_avail = meminfo("MemAvailable:");
        let mem_cap = meminfo("MemTotal:");
        let (disk_avail, disk_cap) = disk(&ctx.data_dir);
        let mem = t
            .memory
            .as_ref()
            .filter(|(_, th)| mem_avail < th.bytes(mem_cap));
        let dsk = t
            .nodefs
            .as_ref()
            .filter(|(_, th)| disk_avail < th.bytes(disk_cap));
        let was = (
            memory_pressure.swap(mem.is_some(), Ordering::Relaxed),
            disk_pressure.swap(dsk.is_some(), Ordering::Relaxed),
        );
        if was != (mem.is_some(), dsk.is_some()) {
            ctx.node_changed.notify_one();
        }
        let (resource, quantity, available) = match (mem, dsk) {
            (Some((q, _)), _) => ("memory", q.clone(), mem_avail),
            (None, Some((q, _))) => ("ephemeral-storage", q.clone(), disk_avail),
            (None, None) => continue,
        };
        let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", ctx.node);
        let Ok(list) = ctx.api.call("GET", &path, None).await else {
            continue;
        };
        let pods: Vec<Value> = list.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p["metadata"]["deletionTimestamp"].is_null()
                    && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
            })
            .collect();
        let ranked = rank(pods.iter().map(candidate).collect());
        let Some(victim) = ranked.first() else {
            continue;
        };
        let message = format!(
            "The node was low on resource: {resource}. Threshold quantity: {quantity}, available: {}. ",
            human(available)
        );
        tracing::warn!(pod = %format!("{}/{}", victim.namespace, victim.name), %message, "evicting");
        let status =
            json!({"status": {"phase": "Failed", "reason": "Evicted", "message": message}});
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/status",
            victim.namespace, victim.name
        );
        let _ = ctx.api.call("PATCH", &path, Some(&status)).await;
        if let Some(p) = pods.iter().find(|p| {
            p["metadata"]["name"] == victim.name.as_str()
                && p["metadata"]["namespace"] == victim.namespace.as_str()
        }) {
            let on = super::events::Involved {
                namespace: victim.namespace.clone(),
                name: victim.name.clone(),
                uid: p["metadata"]["uid"].as_str().unwrap_or_default().into(),
                field_path: String::new(),
            };
            ctx.events.emit(&on, true, "Evicted", &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse() {
        let t = parse(DEFAULT_HARD).unwrap();
        assert_eq!(
            t.memory,
            Some(("100Mi".into(), Threshold::Bytes(100 << 20)))
        );
        assert_eq!(t.nodefs, Some(("10%".into(), Threshold::Percent(10.0))));
        assert_eq!(Threshold::Percent(10.0).bytes(1000), 100);
        for bad in [
            "memory.available>1Gi",
            "memory.available<lots",
            "cpu.available<1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("").unwrap(), Thresholds::default());
    }

    #[test]
    fn ranking() {
        let c = |name: &str, priority: i32, usage: i128, request: i128, critical: bool| Candidate {
            namespace: "ns".into(),
            name: name.into(),
            priority,
            critical,
            usage,
            request,
        };
        let order: Vec<String> = rank(vec![
            c("guaranteed-within", 0, 10, 100, false),
            c("besteffort", 0, 5, 0, false),
            c("burstable-over-big", 0, 500, 100, false),
            c("high-priority-over", 1000, 50, 0, false),
            c("critical", 2_000_001_000, 900, 0, true),
        ])
        .into_iter()
        .map(|c| c.name)
        .collect();
        assert_eq!(
            order,
            [
                "burstable-over-big",
                "besteffort",
                "high-priority-over",
                "guaranteed-within"
            ]
        );
    }
}
