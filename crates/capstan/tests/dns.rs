//! Cluster DNS end to end: `capstan server --cluster-dns-listen 127.0.0.1:PORT` answers a
//! DNS client (hickory-proto over std UDP and TCP sockets) from services and hand-made
//! EndpointSlices created with the real kubectl; names outside the cluster go to a fake
//! upstream resolver on another loopback port (`--dns-upstream`), so nothing leaves the
//! machine.

mod common;

use common::{free_port, Backend, Server};
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fake upstream: every A question is answered with 192.0.2.7 (UDP only); it counts
/// the queries it got.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let count = queries.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut r = Message::new();
                r.set_id(q.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_desired(q.recursion_desired())
                    .set_recursion_available(true);
                r.add_queries(q.queries().iter().cloned());
                if let Some(question) = q.queries().first() {
                    if question.query_type() == RecordType::A {
                        let a = RData::A(A("192.0.2.7".parse().unwrap()));
                        r.add_answer(Record::from_rdata(question.name().clone(), 60, a));
                    } else {
                        r.set_response_code(ResponseCode::NXDomain);
                    }
                }
                let _ = sock.send_to(&r.to_vec().unwrap(), peer);
            }
        });
        Upstream { addr, queries }
    }
}

fn query(name: &str, ty: RecordType, edns: bool) -> Message {
    let mut m = Message::new();
    m.set_id(rand_id()).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    (Instant::now().elapsed().as_nanos() as u16) ^ (std::process::id() as u16) ^ 0x5a5a
}

fn udp(dns: SocketAddr, q: &Message) -> Option<Message> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(&q.to_vec().unwrap(), dns).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    assert!(n <= 1232, "UDP reply of {n} bytes");
    Message::from_vec(&buf[..n]).ok()
}

fn tcp(dns: SocketAddr, q: &Message) -> Message {
    let mut s = TcpStream::connect(dns).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let b = q.to_vec().unwrap();
    s.write_all(&(b.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&b).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// The answer section as "name TYPE data" lines.
fn shown(m: &Message) -> Vec<String> {
    m.answers()
        .iter()
        .map(|r| format!("{} {} {}", r.name(), r.record_type(), r.data()))
        .collect()
}

fn ask(dns: SocketAddr, name: &str, ty: RecordType) -> Message {
    let q = query(name, ty, false);
    let r = udp(dns, &q).unwrap_or_else(|| panic!("no reply to {name} {ty}"));
    assert_eq!(r.id(), q.id(), "the reply echoes the ID");
    assert_eq!(r.queries(), q.queries(), "the reply echoes the question");
    assert!(r.recursion_desired());
    r
}

fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} not within {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: dns-e2e}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dns-e2e}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: dns-e2e}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: dns-e2e}
spec:
  clusterIP: None
  ports: [{name: x, port: 1}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: dns-e2e}
spec: {type: ExternalName, externalName: example.test}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-a
  namespace: dns-e2e
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: pg, port: 5432, protocol: TCP}]
endpoints:
- addresses: ["10.42.0.5"]
  hostname: db-0
  conditions: {ready: true}
- addresses: ["10.42.0.6"]
  hostname: db-1
  conditions: {ready: false}
"#;

#[test]
fn cluster_dns_answers_from_services_and_endpointslices() {
    let up = Upstream::start();
    let port = free_port();
    let dns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listen = dns.to_string();
    let upstream = up.addr.to_string();
    let s = Server::start_backend(
        Backend::Embedded,
        &["--cluster-dns-listen", &listen, "--dns-upstream", &upstream],
    );
    let zone = "svc.cluster.local.";

    // The kubernetes Service, and the kube-dns Service created at start.
    until(30, "kubernetes.default resolves", || {
        udp(
            dns,
            &query(
                "kubernetes.default.svc.cluster.local.",
                RecordType::A,
                false,
            ),
        )
        .is_some_and(|r| shown(&r) == ["kubernetes.default.svc.cluster.local. A 10.43.0.1"])
    });
    until(10, "the kube-dns Service exists", || {
        s.kubectl(&["get", "svc", "-n", "kube-system", "kube-dns"])
            .code
            == 0
    });
    let kd = s.kubectl(&[
        "get",
        "svc",
        "-n",
        "kube-system",
        "kube-dns",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[*].name} {.metadata.labels.k8s-app}",
    ]);
    assert_eq!(kd.ok().trim(), "10.43.0.10 dns dns-tcp metrics kube-dns");
    let r = ask(
        dns,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(
        shown(&r),
        ["kube-dns.kube-system.svc.cluster.local. A 10.43.0.10"]
    );

    s.kubectl_stdin(&["apply", "-f", "-"], OBJECTS).ok();
    let ip = s
        .kubectl(&[
            "get",
            "svc",
            "-n",
            "dns-e2e",
            "web",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .ok();
    let web = format!("web.dns-e2e.{zone}");
    until(10, "web resolves", || {
        shown(&ask(dns, &web, RecordType::A)) == [format!("{web} A {ip}")]
    });

    // Case-insensitive; the owner keeps the question's case.
    let r = ask(dns, "WEB.dns-e2e.SVC.cluster.local.", RecordType::A);
    assert_eq!(
        shown(&r),
        [format!("WEB.dns-e2e.SVC.cluster.local. A {ip}")]
    );
    assert!(r.authoritative());
    // IPv4-only: AAAA is NODATA with the SOA.
    let r = ask(dns, &web, RecordType::AAAA);
    assert_eq!(
        (r.response_code(), r.answers().len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(r.name_servers()[0].record_type(), RecordType::SOA);
    // Unknown names and the wrong namespace: NXDOMAIN with the SOA.
    for name in [
        format!("nope.dns-e2e.{zone}"),
        format!("web.default.{zone}"),
        format!("web.nope.{zone}"),
    ] {
        let r = ask(dns, &name, RecordType::A);
        assert_eq!(r.response_code(), ResponseCode::NXDomain, "{name}");
        assert_eq!(r.name_servers()[0].record_type(), RecordType::SOA, "{name}");
    }
    // SRV of the named port, targeting the service.
    let r = ask(
        dns,
        &format!("_http._tcp.web.dns-e2e.{zone}"),
        RecordType::SRV,
    );
    assert_eq!(
        shown(&r),
        [format!(
            "_http._tcp.web.dns-e2e.{zone} SRV 0 100 80 web.dns-e2e.{zone}"
        )]
    );
    // PTR of the cluster IP.
    let octets: Vec<&str> = ip.split('.').rev().collect();
    let r = ask(
        dns,
        &format!("{}.in-addr.arpa.", octets.join(".")),
        RecordType::PTR,
    );
    assert_eq!(r.answers()[0].data().to_string(), web);

    // Headless: the ready endpoint of the hand-made slice, by service and by hostname.
    let db = format!("db.dns-e2e.{zone}");
    until(10, "db has its ready endpoint", || {
        shown(&ask(dns, &db, RecordType::A)) == [format!("{db} A 10.42.0.5")]
    });
    let r = ask(dns, &format!("db-0.{db}"), RecordType::A);
    assert_eq!(shown(&r), [format!("db-0.{db} A 10.42.0.5")]);
    let r = ask(dns, &format!("db-1.{db}"), RecordType::A);
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    let r = ask(dns, &format!("_pg._tcp.{db}"), RecordType::SRV);
    assert_eq!(
        shown(&r),
        [format!("_pg._tcp.{db} SRV 0 100 5432 db-0.{db}")]
    );
    let extra: Vec<String> = r.additionals().iter().map(|r| r.to_string()).collect();
    assert!(extra.iter().any(|x| x.contains("10.42.0.5")), "{extra:?}");
    // No EndpointSlice at all: nothing to answer.
    let r = ask(dns, &format!("lonely.dns-e2e.{zone}"), RecordType::A);
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    // db-1 becomes ready: both, from the watch.
    s.kubectl(&[
        "patch",
        "endpointslice",
        "-n",
        "dns-e2e",
        "db-a",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/endpoints/1/conditions/ready","value":true}]"#,
    ])
    .ok();
    until(10, "db-1 published", || {
        ask(dns, &db, RecordType::A).answers().len() == 2
    });

    // ExternalName: a CNAME, its target chased upstream.
    let r = ask(dns, &format!("ext.dns-e2e.{zone}"), RecordType::A);
    assert_eq!(
        shown(&r),
        [
            format!("ext.dns-e2e.{zone} CNAME example.test."),
            "example.test. A 192.0.2.7".to_string()
        ]
    );
    // Outside the cluster domain: the upstream's answer, relayed with our ID.
    let before = up.queries.load(Ordering::SeqCst);
    let r = ask(dns, "www.example.test.", RecordType::A);
    assert_eq!(shown(&r), ["www.example.test. A 192.0.2.7"]);
    assert!(up.queries.load(Ordering::SeqCst) > before);
    let r = ask(dns, "www.example.test.", RecordType::MX);
    assert_eq!(r.response_code(), ResponseCode::NXDomain);

    // TCP, and a large answer: truncated over UDP without EDNS, whole over TCP and EDNS.
    let r = tcp(dns, &query(&web, RecordType::A, false));
    assert_eq!(shown(&r), [format!("{web} A {ip}")]);
    let eps: String = (0..60)
        .map(|i| format!("- addresses: [\"10.42.9.{i}\"]\n  hostname: member-{i}\n"))
        .collect();
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: big, namespace: dns-e2e}}\n\
             spec: {{clusterIP: None, ports: [{{name: p, port: 1}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: big-a\n  \
             namespace: dns-e2e\n  labels: {{kubernetes.io/service-name: big}}\n\
             addressType: IPv4\nports: [{{name: p, port: 1, protocol: TCP}}]\nendpoints:\n{eps}"
        ),
    )
    .ok();
    let big = format!("big.dns-e2e.{zone}");
    until(10, "big has 60 endpoints", || {
        tcp(dns, &query(&big, RecordType::A, false)).answers().len() == 60
    });
    let r = udp(dns, &query(&big, RecordType::A, false)).unwrap();
    assert!(r.truncated() && r.answers().is_empty());
    let r = udp(dns, &query(&big, RecordType::A, true)).unwrap();
    assert!(!r.truncated());
    assert_eq!(r.answers().len(), 60);

    // Answers come from memory: sequential UDP queries, a loose bound for a debug build.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = query(&web, RecordType::A, false).to_vec().unwrap();
    let mut lat = Vec::new();
    let mut buf = [0u8; 1500];
    for _ in 0..500 {
        let t = Instant::now();
        sock.send_to(&bytes, dns).unwrap();
        sock.recv_from(&mut buf).unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    eprintln!(
        "cluster DNS latency over UDP: p50 {:?} p99 {:?}",
        lat[250], lat[495]
    );
    assert!(lat[250] < Duration::from_millis(5), "p50 {:?}", lat[250]);

    // Deleting the service removes its name.
    s.kubectl(&["delete", "svc", "-n", "dns-e2e", "web"]).ok();
    until(10, "web is gone", || {
        ask(dns, &web, RecordType::A).response_code() == ResponseCode::NXDomain
    });
}
