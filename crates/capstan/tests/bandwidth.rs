//! The bandwidth annotations with real containers (its own test process: agent servers of one
//! test process share its pod CIDR and bridge): a busybox pod annotated
//! `kubernetes.io/egress-bandwidth: 1M` sends to a TCP sink the test runs on the bridge's
//! gateway address at about 1 Mbit/s, an unannotated pod next to it many times faster; the
//! same for `kubernetes.io/ingress-bandwidth` with the sink sending (both measured past the
//! token bucket containerd's burst leaves full at the start, read from `tc`); a bad quantity
//! fails the sandbox with a FailedCreatePodSandBox event naming it and creates nothing. Needs root and containerd (NOTICE
//! and skip otherwise).

mod common;

use common::{eventually, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

const NODE: &str = "capstan-bandwidth";
const NS: &str = "bw-e2e";
/// 1 Mbit/s: the limit both annotated pods get.
const LIMIT_BPS: f64 = 1_000_000.0;
/// Bytes each measurement moves: about 3.3 s at the limit.
const BYTES: usize = 400 * 1024;

fn pod(name: &str, annotation: Option<(&str, &str)>) -> String {
    let ann = annotation
        .map(|(k, v)| format!("  annotations: {{\"{k}\": \"{v}\"}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{ann}spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// The bridge gateway of the node's podCIDR: an address of this host every pod reaches.
fn gateway(s: &Server) -> Ipv4Addr {
    let cidr = s
        .kubectl(&["get", "node", NODE, "-o", "jsonpath={.spec.podCIDR}"])
        .ok();
    let net: Ipv4Addr = cidr.split('/').next().unwrap().parse().unwrap();
    Ipv4Addr::from(u32::from(net) + 1)
}

/// The token bucket the limited pods' tbf qdiscs were given: containerd asks the bandwidth
/// plugin for a burst of 2^32-1 bits, which the plugin's tick arithmetic turns into about
/// 20 MiB at 1 Mbit/s. The bucket starts full: that much passes at line rate first (as on
/// Kubernetes with containerd), the limit holds after it.
fn bucket_bytes() -> usize {
    let out = std::process::Command::new("tc")
        .args(["-j", "qdisc", "show"])
        .output()
        .unwrap();
    let qdiscs: Value = serde_json::from_slice(&out.stdout).unwrap();
    qdiscs
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["kind"] == "tbf" && q["options"]["rate"] == (LIMIT_BPS as u64 / 8))
        .filter_map(|q| q["options"]["burst"].as_u64())
        .max()
        .expect("a tbf qdisc at 1 Mbit/s for the annotated pods") as usize
}

/// Bits per second of `BYTES` moved between the pod and a sink on `gw`, after `warm` bytes
/// that drain the token bucket: with `pod_sends` the pod pipes zeros into `nc` and the sink
/// reads (timed here); otherwise the sink writes and the pod reads (timed in the pod with
/// /proc/uptime).
fn measure(s: &Server, pod: &str, gw: Ipv4Addr, pod_sends: bool, warm: usize) -> f64 {
    let l = TcpListener::bind((gw, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let sink = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut moved = 0usize;
        let mut start = None;
        if pod_sends {
            while moved < warm + BYTES {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "the pod closed after {moved} bytes");
                moved += n;
                if moved >= warm {
                    start.get_or_insert_with(Instant::now);
                }
            }
            let secs = start.unwrap().elapsed().as_secs_f64();
            Some((moved - warm) as f64 * 8.0 / secs)
        } else {
            while moved < warm + BYTES {
                let n = (warm + BYTES - moved).min(buf.len());
                c.write_all(&buf[..n]).unwrap();
                moved += n;
            }
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let _ = c.read(&mut buf);
            None
        }
    });
    let script = if pod_sends {
        format!(
            "dd if=/dev/zero bs=1024 count={} 2>/dev/null | nc -w 30 {gw} {port}; true",
            (warm + BYTES) / 1024 + 64
        )
    } else {
        format!(
            "nc -w 30 {gw} {port} </dev/null | {{ head -c {warm} >/dev/null; \
             a=$(cut -d' ' -f1 /proc/uptime); n=$(wc -c); b=$(cut -d' ' -f1 /proc/uptime); \
             echo $n $a $b; }}"
        )
    };
    let out = s.kubectl(&["exec", "-n", NS, pod, "--", "sh", "-c", &script]);
    let timed_here = sink.join().expect("sink finished");
    if let Some(bps) = timed_here {
        return bps;
    }
    let f: Vec<f64> = out
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(f.len(), 3, "{} {}", out.stdout, out.stderr);
    // head reads ahead through stdio: up to a buffer's worth less reaches wc.
    assert!(
        f[0] as usize + 64 * 1024 >= BYTES && f[0] as usize <= BYTES,
        "{}",
        out.stdout
    );
    f[0] * 8.0 / (f[2] - f[1]).max(0.01)
}

#[test]
fn bandwidth_annotations_limit_pod_traffic() {
    if !common::agent_prerequisites(&["tc"]) {
        return;
    }
    let t = format!("cstbw{}", std::process::id() % 100_000);
    let s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &t,
            "--service-cidr",
            "10.93.0.0/16",
        ],
    );
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", NS]).ok();
    let pods = [
        ("free", None),
        ("egress", Some(("kubernetes.io/egress-bandwidth", "1M"))),
        ("ingress", Some(("kubernetes.io/ingress-bandwidth", "1M"))),
        ("bad", Some(("kubernetes.io/egress-bandwidth", "10X"))),
    ];
    for (name, ann) in pods {
        s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &pod(name, ann))
            .ok();
    }
    for name in ["free", "egress", "ingress"] {
        eventually(90, || {
            let out = s
                .kubectl(&["get", "pod", "-n", NS, name, "-o", "json"])
                .stdout;
            let p: Value = serde_json::from_str(&out).ok()?;
            (p["status"]["containerStatuses"][0]["ready"] == true).then_some(())
        });
    }
    let gw = gateway(&s);
    let warm = bucket_bytes() + 32 * 1024;

    let free_out = measure(&s, "free", gw, true, warm);
    let limited_out = measure(&s, "egress", gw, true, warm);
    let free_in = measure(&s, "free", gw, false, warm);
    let limited_in = measure(&s, "ingress", gw, false, warm);
    eprintln!(
        "egress: limited {:.2} Mbit/s, free {:.2} Mbit/s; ingress: limited {:.2} Mbit/s, free {:.2} Mbit/s",
        limited_out / 1e6,
        free_out / 1e6,
        limited_in / 1e6,
        free_in / 1e6
    );
    for (what, limited, free) in [
        ("egress", limited_out, free_out),
        ("ingress", limited_in, free_in),
    ] {
        assert!(
            limited < 2.0 * LIMIT_BPS,
            "{what}: {limited:.0} bit/s with a 1M limit"
        );
        assert!(
            limited > 0.3 * LIMIT_BPS,
            "{what}: {limited:.0} bit/s, far below the 1M limit"
        );
        assert!(
            free > 5.0 * LIMIT_BPS,
            "{what}: the unlimited pod moves {free:.0} bit/s"
        );
    }

    // A bad quantity: the sandbox is not created, and the pod's events say why.
    let msg = eventually(60, || {
        let out = s
            .kubectl(&[
                "get",
                "events",
                "-n",
                NS,
                "--field-selector",
                "involvedObject.name=bad,reason=FailedCreatePodSandBox",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .stdout;
        (!out.is_empty()).then_some(out)
    });
    assert!(
        msg.contains("annotation kubernetes.io/egress-bandwidth=\"10X\": quantities must match"),
        "event message: {msg}"
    );
    // Nothing was created for it: no sandbox left behind that could never be torn down.
    let sandboxes = std::process::Command::new("ctr")
        .arg("-a")
        .arg(s.containerd_socket())
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .output()
        .unwrap();
    let count = String::from_utf8_lossy(&sandboxes.stdout).lines().count();
    // free, egress and ingress: a sandbox and a container each.
    assert_eq!(count, 6, "{}", String::from_utf8_lossy(&sandboxes.stdout));
    let phase = s
        .kubectl(&[
            "get",
            "pod",
            "-n",
            NS,
            "bad",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .ok();
    assert_eq!(phase, "Pending");
    // And it deletes like any pod.
    s.kubectl(&["delete", "pod", "-n", NS, "bad", "--timeout=30s"])
        .ok();
}
