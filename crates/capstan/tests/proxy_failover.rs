//! Killing a backend under load, nftables mode: a 3-replica Deployment of busybox httpd pods
//! (readinessProbe httpGet, periodSeconds 1) behind a ClusterIP Service, a client loop on the
//! host opening a fresh connection to the VIP every few milliseconds (short timeouts), and one
//! backend removed while it runs: force-deleted (`--grace-period=0 --force`: the failures are
//! bounded by the endpoint update, < 5 s), deleted gracefully (the endpoint removal races the
//! SIGTERM as in Kubernetes: figures printed, window bounded) and deleted gracefully with a
//! preStop sleep (the usual user-side fix: no request lost). Each phase prints the requests
//! sent, the failures and their window, and when the EndpointSlice and the nftables table
//! dropped the pod. Needs root, containerd and nft (NOTICE and skip otherwise).

mod common;

use common::{eventually, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NODE: &str = "capstan-failover";
const NS: &str = "failover-e2e";

fn table() -> String {
    format!("cstfo{}", std::process::id() % 100_000)
}

/// The Deployment; `pre_stop`: a 3 s preStop sleep. The shell traps SIGTERM and exits (the
/// container stops at once, like most servers), httpd runs as its child.
fn deployment(pre_stop: bool) -> String {
    let hook = if pre_stop {
        "        lifecycle:\n          preStop:\n            exec: {command: [\"sleep\", \"3\"]}\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: httpd
        image: busybox:1.36
        command:
        - sh
        - -c
        - |
          mkdir -p /www && echo $POD > /www/index.html
          trap 'exit 0' TERM
          httpd -f -p 8080 -h /www &
          wait
        env:
        - name: POD
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
          failureThreshold: 1
{hook}---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
  - {{port: 80, targetPort: 8080, protocol: TCP}}
"#
    )
}

/// One HTTP/1.0 GET over a fresh connection: the body, or what went wrong.
fn request(addr: SocketAddr) -> Result<String, String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect: {e}"))?;
    let io = |e: std::io::Error| format!("io: {e}");
    c.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(io)?;
    c.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(io)?;
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(io)?;
    let mut out = String::new();
    c.read_to_string(&mut out).map_err(io)?;
    match out.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.") && head.contains(" 200 ") && !body.trim().is_empty() =>
        {
            Ok(body.trim().to_string())
        }
        _ => Err(format!("answer: {out:?}")),
    }
}

/// (name, IP) of the ready pods of the Deployment.
fn ready_pods(s: &Server) -> Vec<(String, String)> {
    let out = s
        .kubectl(&["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"])
        .stdout;
    let Ok(v) = serde_json::from_str::<Value>(&out) else {
        return vec![];
    };
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["containerStatuses"][0]["ready"] == true
        })
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The addresses of the Service's ready endpoints.
fn ready_endpoints(s: &Server) -> Option<Vec<String>> {
    let out = s.kubectl(&[
        "get",
        "endpointslices",
        "-n",
        NS,
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    let mut ips = vec![];
    for slice in v["items"].as_array()? {
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if ep["conditions"]["ready"] != false {
                for a in ep["addresses"].as_array().into_iter().flatten() {
                    ips.extend(a.as_str().map(str::to_string));
                }
            }
        }
    }
    Some(ips)
}

fn nft_table(t: &str) -> String {
    Command::new("nft")
        .args(["list", "table", "ip", t])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The MAC address of link `dev` on the host.
fn mac_of(dev: &str) -> String {
    let o = Command::new("ip")
        .args(["-o", "link", "show", "dev", dev])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "link/ether");
    words.next().unwrap_or_default().to_string()
}

/// The pod of `pods` whose host-side veth has the lowest MAC address: the one an unpinned
/// bridge has taken as its own, so that removing it changes the gateway's MAC under every pod.
fn lowest_mac_pod(s: &Server, pods: &[(String, String)]) -> (String, String) {
    let o = Command::new("ip")
        .args(["-o", "link", "show", "master", &common::cni_bridge()])
        .output()
        .expect("ip runs");
    let ports = String::from_utf8_lossy(&o.stdout).into_owned();
    let mac_by_index = |idx: &str| -> Option<String> {
        let line = ports.lines().find(|l| l.split(':').next() == Some(idx))?;
        let mut words = line.split_whitespace();
        words.find(|w| *w == "link/ether")?;
        words.next().map(str::to_string)
    };
    pods.iter()
        .filter_map(|(name, ip)| {
            let idx = s
                .kubectl(&[
                    "exec",
                    "-n",
                    NS,
                    name,
                    "--",
                    "cat",
                    "/sys/class/net/eth0/iflink",
                ])
                .ok();
            Some((mac_by_index(idx.trim())?, (name.clone(), ip.clone())))
        })
        .min()
        .map(|(_, p)| p)
        .expect("the pods' veths are on the bridge")
}

/// What one phase measured, in seconds from the kill.
#[derive(Debug)]
#[allow(dead_code)] // the fields not asserted on are printed
struct Figures {
    sent: usize,
    failed: usize,
    /// First failure → last failure.
    window: f64,
    first_failure: Option<f64>,
    slice_dropped: Option<f64>,
    nft_dropped: Option<f64>,
    /// Successful requests after the last failure.
    ok_after: usize,
}

/// Load the VIP for 2 s, run `kill` on (name, IP) of one ready backend, keep loading until
/// both the slice and the table dropped it plus 3 s, and measure.
fn phase(s: &Server, t: &str, vip: SocketAddr, label: &str, kill: impl Fn(&str)) -> Figures {
    let pods = eventually(120, || {
        let p = ready_pods(s);
        let mut eps = ready_endpoints(s)?;
        let mut ips: Vec<String> = p.iter().map(|(_, ip)| ip.clone()).collect();
        eps.sort();
        ips.sort();
        let table = nft_table(t);
        (ips.len() == 3 && eps == ips && ips.iter().all(|ip| table.contains(ip.as_str())))
            .then_some(p)
    });
    let (victim, victim_ip) = lowest_mac_pod(s, &pods);
    let bridge_mac = mac_of(&common::cni_bridge());
    let stop = AtomicBool::new(false);
    let mut killed_at = None;
    let (log, slice_dropped, nft_dropped) = std::thread::scope(|sc| {
        let client = sc.spawn(|| {
            let mut log: Vec<(Instant, bool)> = vec![];
            while !stop.load(Ordering::Relaxed) {
                let r = request(vip);
                if let Err(e) = &r {
                    println!("{label}: failed at {:?}: {e}", Instant::now());
                }
                log.push((Instant::now(), r.is_ok()));
                std::thread::sleep(Duration::from_millis(5));
            }
            log
        });
        std::thread::sleep(Duration::from_secs(2));
        let at = Instant::now();
        killed_at = Some(at);
        let victim_ip = &victim_ip;
        let watcher = sc.spawn(move || {
            let (mut slice, mut nft) = (None, None);
            while slice.is_none() || nft.is_none() {
                if at.elapsed() > Duration::from_secs(60) {
                    break;
                }
                if nft.is_none() && !nft_table(t).contains(victim_ip.as_str()) {
                    nft = Some(at.elapsed().as_secs_f64());
                }
                if slice.is_none() && ready_endpoints(s).is_some_and(|e| !e.contains(victim_ip)) {
                    slice = Some(at.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (slice, nft)
        });
        kill(&victim);
        let (slice, nft) = watcher.join().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        (client.join().unwrap(), slice, nft)
    });
    let at = killed_at.unwrap();
    let secs = |i: Instant| i.saturating_duration_since(at).as_secs_f64();
    let before = log.iter().filter(|(i, ok)| *i < at && !ok).count();
    assert_eq!(before, 0, "{label}: requests failed before the kill");
    let failures: Vec<Instant> = log.iter().filter(|(_, ok)| !ok).map(|(i, _)| *i).collect();
    let first = failures.first().copied();
    let last = failures.last().copied();
    let f = Figures {
        sent: log.len(),
        failed: failures.len(),
        window: match (first, last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        },
        first_failure: first.map(secs),
        slice_dropped,
        nft_dropped,
        ok_after: log
            .iter()
            .filter(|(i, ok)| *ok && last.is_none_or(|l| *i > l))
            .count(),
    };
    println!("FIGURES {label} (victim {victim} {victim_ip}): {f:?}");
    let mac_after = mac_of(&common::cni_bridge());
    assert_eq!(bridge_mac, mac_after, "{label}: the bridge's MAC changed");
    f
}

#[test]
fn killing_a_backend_under_load_recovers_within_the_endpoint_update() {
    if !common::agent_prerequisites(&["nft"]) {
        return;
    }
    let t = table();
    let s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &t,
        ],
    );
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", NS]).ok();
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &deployment(false))
        .ok();
    let vip: String = s
        .kubectl(&[
            "get",
            "svc",
            "-n",
            NS,
            "web",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .ok();
    let vip: SocketAddr = format!("{}:80", vip.trim()).parse().unwrap();

    // Forced: the pod object goes at once, the container is killed.
    let forced = phase(&s, &t, vip, "force-delete", |pod| {
        s.kubectl(&[
            "delete",
            "pod",
            "-n",
            NS,
            pod,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ])
        .ok();
    });
    let slice = forced.slice_dropped.expect("slice dropped the forced pod");
    assert!(forced.nft_dropped.is_some(), "table dropped the forced pod");
    assert!(slice < 5.0, "slice dropped the pod after {slice:.2}s");
    assert!(forced.window < 5.0, "failure window {:.2}s", forced.window);
    assert!(forced.ok_after > 50, "served again: {forced:?}");

    // Graceful, no preStop: the endpoint removal races the SIGTERM (as in Kubernetes).
    let graceful = phase(&s, &t, vip, "graceful", |pod| {
        s.kubectl(&["delete", "pod", "-n", NS, pod, "--wait=false"])
            .ok();
    });
    assert!(
        graceful.slice_dropped.is_some_and(|d| d < 5.0),
        "{graceful:?}"
    );
    assert!(
        graceful.window < 5.0,
        "failure window {:.2}s",
        graceful.window
    );
    assert!(graceful.ok_after > 50, "served again: {graceful:?}");

    // Graceful with a preStop sleep: the endpoint is gone before the container stops.
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &deployment(true))
        .ok();
    eventually(180, || {
        let out = s
            .kubectl(&["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"])
            .stdout;
        let v: Value = serde_json::from_str(&out).ok()?;
        let items = v["items"].as_array()?;
        (items.len() == 3
            && items
                .iter()
                .all(|p| !p["spec"]["containers"][0]["lifecycle"]["preStop"].is_null()))
        .then_some(())
    });
    let hooked = phase(&s, &t, vip, "graceful+preStop", |pod| {
        s.kubectl(&["delete", "pod", "-n", NS, pod, "--wait=false"])
            .ok();
    });
    assert!(hooked.slice_dropped.is_some_and(|d| d < 3.0), "{hooked:?}");
    assert_eq!(
        hooked.failed, 0,
        "a preStop sleep loses no request: {hooked:?}"
    );
    drop(s);
    assert!(nft_table(&t).is_empty(), "table left");
}
