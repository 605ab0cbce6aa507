//! The userspace service proxy (`--proxy-mode userspace`) against real containers: three
//! busybox httpd pods behind a selector-less ClusterIP+NodePort Service with a hand-written
//! EndpointSlice. The cluster IP from a client pod and from the host reaches all three, the
//! NodePort answers on the node's address, cluster DNS (UDP) works through the kube-dns VIP;
//! then one backend's httpd is killed under load while its endpoint stays listed as ready —
//! every request still succeeds (the listener tries the next endpoint). ClientIP affinity
//! sticks; after kill -9 and a restart the agent rebuilds listeners and table from the API;
//! a deleted service's listener closes; the table and listeners are gone once the server stopped. Needs root,
//! containerd and nft (NOTICE and skip otherwise).

mod common;

use common::{eventually, Server};

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODE: &str = "capstan-uproxy";
const NS: &str = "uproxy-e2e";

fn table() -> String {
    format!("cstuproxy{}", std::process::id() % 100_000)
}

fn nft_table(t: &str) -> Option<String> {
    let o = Command::new("nft")
        .args(["list", "table", "ip", t])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// httpd daemonized in a shell that stays: killing httpd leaves the pod Running (and its
/// endpoint ready), with nothing listening on 8080.
fn backend(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www && echo $POD > /www/index.html && httpd -p 8080 -h /www && exec sleep 3600"]
    env:
    - name: POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
"#
    )
}

fn slice(ips: &[String]) -> String {
    common::web::manual_slice(NODE, ips)
}

/// When a request began, and its answer.
type Sample = (Instant, Result<String, String>);

/// One HTTP/1.0 GET from the host: the body's last line, or the error.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    c.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    if !out.starts_with("HTTP/1.") {
        return Err(format!("no HTTP answer: {out:?}"));
    }
    Ok(out.trim().lines().last().unwrap_or_default().to_string())
}

#[test]
fn userspace_proxy_fails_over_to_the_next_endpoint_and_cleans_up() {
    if !common::agent_prerequisites(&["nft"]) {
        return;
    }
    let t = table();
    // A service CIDR of its own: another server's proxy table must not answer these VIPs.
    let mut s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-mode",
            "userspace",
            "--proxy-nft-table",
            &t,
            "--service-cidr",
            "10.98.0.0/16",
            "--cluster-dns",
            "10.98.0.10",
        ],
    );
    let common::web::Web {
        ips,
        vip,
        node_port,
        node_ip,
    } = common::web::start(&s, NS, NODE, backend);
    let names = common::web::NAMES;

    // The table redirects the VIP to a listener of the agent on the node's address.
    let key = format!("{vip} . tcp . 80 : {node_ip} . ");
    let listener_of = || -> SocketAddr {
        let port: u16 = eventually(20, || {
            let text = nft_table(&t)?;
            let rest = &text[text.find(&key)? + key.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        });
        format!("{node_ip}:{port}").parse().unwrap()
    };
    listener_of();
    let vip_addr: SocketAddr = format!("{vip}:80").parse().unwrap();

    // 30 requests from a client pod to the cluster IP: all answered, by all three backends.
    let pod_get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {vip} 80 2>&1");
    let script = format!(
        "for i in $(seq 30); do out=$({pod_get}) && echo \"$out\" | tail -n 1 || echo FAIL; done"
    );
    let pod_loop = || {
        s.kubectl(&["exec", "-n", NS, "client", "--", "sh", "-c", &script])
            .stdout
    };
    let out = pod_loop();
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 30, "{out}");
    let seen: BTreeSet<&str> = answers.iter().copied().collect();
    assert_eq!(
        seen,
        names.iter().copied().collect::<BTreeSet<_>>(),
        "every request answered, by every backend: {out}\n{}",
        s.log()
    );

    // Hairpin: a backend reaching itself through the VIP (the agent dials it anew).
    let out = s
        .kubectl(&["exec", "-n", NS, "web-a", "--", "sh", "-c", &script])
        .stdout;
    assert_eq!(out.lines().filter(|l| *l != "FAIL").count(), 30, "{out}");

    // From the host: the cluster IP (output hook) and the NodePort on the node's address.
    let np_addr: SocketAddr = format!("{node_ip}:{node_port}").parse().unwrap();
    for (what, addr) in [("cluster IP", vip_addr), ("NodePort", np_addr)] {
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            seen.insert(get(addr).unwrap_or_else(|e| panic!("host → {what} {addr}: {e}")));
        }
        assert_eq!(seen.len(), 3, "host → {what}: {seen:?}");
    }

    // UDP: cluster DNS through the kube-dns VIP (listener → the DNS server at <node IP>:10053).
    let lookup = eventually(30, || {
        let o = s.kubectl(&[
            "exec",
            "-n",
            NS,
            "client",
            "--",
            "nslookup",
            "kubernetes.default.svc.cluster.local",
        ]);
        o.stdout.contains("10.98.0.1").then_some(o.stdout)
    });
    assert!(
        lookup.contains("10.98.0.10"),
        "answered by the VIP: {lookup}"
    );

    // Kill web-b's httpd under load: its endpoint stays listed as ready, yet no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<Sample>>> = Default::default();
    let load = {
        let (stop, results) = (stop.clone(), results.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let began = Instant::now();
                let r = get(vip_addr);
                results.lock().unwrap().push((began, r));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    s.kubectl(&[
        "exec",
        "-n",
        NS,
        "web-b",
        "--",
        "sh",
        "-c",
        "kill $(pidof httpd)",
    ])
    .ok();
    let killed = Instant::now();
    let b_addr: SocketAddr = format!("{}:8080", ips[1]).parse().unwrap();
    eventually(10, || TcpStream::connect(b_addr).is_err().then_some(()));
    let out = pod_loop();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let results = results.lock().unwrap();
    // A request web-b had already accepted when its httpd died is lost (nothing can be
    // retried once bytes went out); every request begun after the kill must be answered.
    let failed: Vec<&Sample> = results
        .iter()
        .filter(|(at, r)| r.is_err() && *at >= killed)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests begun after the kill failed: {:?}",
        failed.len(),
        results.len(),
        failed.first()
    );
    let in_flight = results.iter().filter(|(_, r)| r.is_err()).count();
    eprintln!("requests in flight on web-b when its httpd was killed and lost: {in_flight}");
    assert!(
        in_flight <= 2,
        "{in_flight} requests failed around the kill"
    );
    assert!(results.len() >= 20, "only {} requests", results.len());
    let before: BTreeSet<&str> = results
        .iter()
        .filter(|(at, _)| *at < killed)
        .filter_map(|(_, r)| r.as_deref().ok())
        .collect();
    assert!(
        before.contains("web-b"),
        "web-b answered before: {before:?}"
    );
    let after: BTreeSet<&str> = results
        .iter()
        .filter(|(at, _)| *at > killed + Duration::from_secs(1))
        .filter_map(|(_, r)| r.as_deref().ok())
        .collect();
    assert_eq!(
        after,
        BTreeSet::from(["web-a", "web-c"]),
        "only the live backends answer after the kill"
    );
    // And from the pod, after the kill: 30 of 30.
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 30, "{out}");
    assert!(
        answers.iter().all(|a| *a == "web-a" || *a == "web-c"),
        "{out}"
    );

    // ClientIP affinity: the host's requests stick to one backend.
    s.kubectl(&[
        "patch",
        "svc",
        "-n",
        NS,
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ])
    .ok();
    eventually(20, || {
        let bodies: Result<BTreeSet<String>, String> = (0..20).map(|_| get(vip_addr)).collect();
        (bodies.ok()?.len() == 1).then_some(())
    });

    // kill -9 and restart: the stale table points at listeners that died with the process;
    // the restarted agent rebuilds listeners and table from the API.
    s.kill9_and_restart();
    // (Nothing listens on the old ports once the process is gone, so answers mean new
    // listeners and a table naming them.)
    eventually(60, || {
        let live: Result<BTreeSet<String>, String> = (0..10).map(|_| get(vip_addr)).collect();
        (live.ok()?.len() == 1).then_some(())
    });

    // No endpoint answering at all: the connection is closed without an HTTP answer.
    s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &slice(&ips[1..2]))
        .ok();
    eventually(20, || get(vip_addr).is_err().then_some(()));

    // A deleted service's listener closes, and its VIP is no longer redirected.
    let listener_addr = listener_of();
    assert!(TcpStream::connect(listener_addr).is_ok(), "{listener_addr}");
    s.kubectl(&["delete", "svc", "-n", NS, "web"]).ok();
    eventually(20, || {
        let gone = !nft_table(&t)?.contains(&key);
        (gone && TcpStream::connect(listener_addr).is_err()).then_some(())
    });

    // The kube-dns listener is there until the server stops; then the table and it are gone.
    let text = nft_table(&t).expect("table while running");
    let dns_key = format!("10.98.0.10 . udp . 53 : {node_ip} . ");
    assert!(text.contains(&dns_key), "{text}");
    let tcp_dns = format!("10.98.0.10 . tcp . 53 : {node_ip} . ");
    let dns_port: u16 = {
        let rest = &text[text.find(&tcp_dns).expect("kube-dns tcp") + tcp_dns.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let dns_listener: SocketAddr = format!("{node_ip}:{dns_port}").parse().unwrap();
    assert!(TcpStream::connect(dns_listener).is_ok());
    drop(s);
    assert!(
        nft_table(&t).is_none(),
        "table ip {t} left after the server stopped"
    );
    assert!(
        TcpStream::connect(dns_listener).is_err(),
        "listener {dns_listener} left after the server stopped"
    );
}
