//! Cluster DNS from real pods (its own test process: agent servers of one test process share
//! its pod CIDR and bridge): a busybox pod's resolv.conf names the kube-dns Service IP, the
//! nftables proxy carries its queries to the DNS server in `capstan server`, names resolve
//! directly and through the search path, unknown names are NXDOMAIN.

mod common;

use common::{eventually, Server};
use std::process::Command;
use std::time::Instant;

const CLIENT: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
"#;

/// An nft table of this test process's own.
fn table() -> String {
    format!("cstdns{}", std::process::id())
}

/// Cluster DNS from a pod: with `--cluster-dns` the pod's resolv.conf names the kube-dns
/// Service IP, the proxy carries port 53 to the DNS server in `capstan server` (listening on
/// the advertised address, port 10053: the kube-dns EndpointSlice), and names resolve through
/// the search path.
#[test]
fn pods_resolve_cluster_names_through_the_kube_dns_service() {
    if !common::agent_prerequisites(&["nft"]) {
        return;
    }
    let t = table();
    // A service CIDR of its own: another server's proxy table must not answer these VIPs.
    let s = Server::start_with_agent_args(
        "capstan-proxy-dns",
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &t,
            "--service-cidr",
            "10.97.0.0/16",
            "--cluster-dns",
            "10.97.0.10",
        ],
    );
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", "dns-e2e"]).ok();
    s.kubectl_stdin(&["apply", "-n", "dns-e2e", "-f", "-"], CLIENT)
        .ok();
    s.kubectl_stdin(
        &["apply", "-n", "dns-e2e", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.97.0.80\n  ports:\n  - {name: http, port: 80}\n",
    )
    .ok();
    eventually(90, || {
        let out = s
            .kubectl(&[
                "get",
                "pod",
                "-n",
                "dns-e2e",
                "client",
                "-o",
                "jsonpath={.status.phase}",
            ])
            .stdout;
        (out == "Running").then_some(())
    });
    let conf = s
        .kubectl(&[
            "exec",
            "-n",
            "dns-e2e",
            "client",
            "--",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(conf.contains("nameserver 10.97.0.10"), "{conf}");
    assert!(
        conf.contains("search dns-e2e.svc.cluster.local svc.cluster.local cluster.local"),
        "{conf}"
    );
    let lookup = |name: &str| {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let o = s.kubectl(&["exec", "-n", "dns-e2e", "client", "--", "nslookup", name]);
            if o.stdout.contains("Address") {
                return o.stdout;
            }
            if Instant::now() > deadline {
                let nft = Command::new("nft")
                    .args(["list", "table", "ip", &t])
                    .output()
                    .unwrap();
                panic!(
                    "nslookup {name}: {} {}\nslices:\n{}\ntable:\n{}\nlog:\n{}",
                    o.stdout,
                    o.stderr,
                    s.kubectl(&["get", "endpointslices", "-A", "-o", "wide"])
                        .stdout,
                    String::from_utf8_lossy(&nft.stdout),
                    s.log()
                        .lines()
                        .filter(|l| l.contains("dns") || l.contains("DNS") || l.contains("proxy"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let k = lookup("kubernetes.default.svc.cluster.local");
    assert!(k.contains("10.97.0.1"), "{k}");
    // Through the search path, as the seeds' `dig frontend.test +search` lookups.
    let w = lookup("web");
    assert!(w.contains("10.97.0.80"), "{w}");
    let missing = s.kubectl(&[
        "exec",
        "-n",
        "dns-e2e",
        "client",
        "--",
        "nslookup",
        "nope.dns-e2e.svc.cluster.local",
    ]);
    let out = format!("{}{}", missing.stdout, missing.stderr);
    assert!(
        out.contains("NXDOMAIN"),
        "an unknown name is NXDOMAIN: {out}"
    );
    drop(s);
    let left = Command::new("nft")
        .args(["list", "table", "ip", &t])
        .output()
        .unwrap();
    assert!(
        !left.status.success(),
        "the proxy's table is removed when the server stops"
    );
}
