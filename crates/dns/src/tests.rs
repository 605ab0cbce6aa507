use super::*;
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use serde_json::{json, Value};

fn ns(name: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}})
}

fn svc(ns: &str, name: &str, spec: Value) -> Value {
    json!({"kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn slice(ns: &str, name: &str, service: &str, endpoints: Value, ports: Value) -> Value {
    json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns,
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports})
}

fn fixture() -> Index {
    let mut ix = Index::new();
    ix.serial = 42;
    for n in ["default", "kube-system", "web"] {
        ix.set_namespace(&ns(n), true);
    }
    ix.upsert_service(&svc(
        "default",
        "web",
        json!({"type": "ClusterIP",
        "clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    ));
    ix.upsert_slice(&slice(
        "default",
        "web-abc",
        "web",
        json!([{"addresses": ["10.42.0.9"], "conditions": {"ready": true}}]),
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
    ));
    ix.upsert_service(&svc(
        "default",
        "db",
        json!({"clusterIP": "None",
        "ports": [{"name": "pg", "port": 5432}]}),
    ));
    ix.upsert_slice(&slice(
        "default",
        "db-1",
        "db",
        json!([
            {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "hostname": "db-1", "conditions": {"ready": false}},
        ]),
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
    ));
    ix.upsert_slice(&slice(
        "default",
        "db-2",
        "db",
        json!([{"addresses": ["10.42.0.7"], "conditions": {}}]),
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
    ));
    ix.upsert_service(&svc(
        "default",
        "pub",
        json!({"clusterIP": "None",
        "publishNotReadyAddresses": true}),
    ));
    ix.upsert_slice(&slice(
        "default",
        "pub-1",
        "pub",
        json!([{"addresses": ["10.42.1.1"], "conditions": {"ready": false}}]),
        json!(null),
    ));
    ix.upsert_service(&svc("default", "empty", json!({"clusterIP": "None"})));
    ix.upsert_service(&svc(
        "default",
        "ext",
        json!({"type": "ExternalName",
        "externalName": "Example.COM."}),
    ));
    ix.upsert_service(&svc(
        "default",
        "alias",
        json!({"type": "ExternalName",
        "externalName": "web.default.svc.cluster.local"}),
    ));
    ix.upsert_service(&svc(
        "web",
        "v6",
        json!({"clusterIPs": ["fd00::10"],
        "ports": [{"port": 443}]}),
    ));
    ix.upsert_pod(
        &json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "web"},
        "status": {"phase": "Running", "podIP": "10.42.3.4", "podIPs": [{"ip": "10.42.3.4"}]}}),
    );
    ix
}

fn cfg() -> Config {
    Config::new("cluster.local", DEFAULT_TTL, PodMode::Insecure).unwrap()
}

fn show(r: &Record) -> String {
    format!("{} {} {}", r.name(), r.record_type(), r.data())
}

#[derive(Debug)]
enum Want {
    Answer(&'static [&'static str]),
    NoData,
    NxDomain,
    Forward,
}

fn run(ix: &Index, cfg: &Config, name: &str, ty: RecordType) -> Resolution {
    resolve(&Name::from_ascii(name).unwrap(), ty, DNSClass::IN, ix, cfg)
}

fn check(ix: &Index, cfg: &Config, cases: &[(&str, RecordType, Want)]) {
    for (name, ty, want) in cases {
        let got = run(ix, cfg, name, *ty);
        let ctx = format!("{name} {ty}: want {want:?}, got {got:?}");
        match (want, got) {
            (Want::Forward, Resolution::Forward) => {}
            (Want::Answer(recs), Resolution::Local(a)) => {
                assert_eq!(a.rcode, ResponseCode::NoError, "{ctx}");
                let shown: Vec<String> = a.answers.iter().map(show).collect();
                assert_eq!(shown, *recs, "{name} {ty}");
                assert!(a.answers.iter().all(|r| r.ttl() == cfg.ttl), "{ctx}");
            }
            (Want::NoData | Want::NxDomain, Resolution::Local(a)) => {
                let rcode = match want {
                    Want::NxDomain => ResponseCode::NXDomain,
                    _ => ResponseCode::NoError,
                };
                assert_eq!(a.rcode, rcode, "{ctx}");
                assert!(a.answers.is_empty(), "{ctx}");
                let soa: Vec<String> = a.authority.iter().map(show).collect();
                assert_eq!(
                    soa,
                    ["cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"],
                    "{ctx}"
                );
            }
            _ => panic!("{ctx}"),
        }
    }
}

use RecordType::{A, AAAA, CNAME, MX, PTR, SOA, SRV, TXT};

#[test]
fn service_records() {
    let w = "web.default.svc.cluster.local.";
    check(&fixture(), &cfg(), &[
        (w, A, Want::Answer(&["web.default.svc.cluster.local. A 10.43.0.20"])),
        // Case-insensitive, and the owner keeps the question's spelling.
        ("WEB.Default.SVC.cluster.LOCAL.", A,
            Want::Answer(&["WEB.Default.SVC.cluster.LOCAL. A 10.43.0.20"])),
        (w, AAAA, Want::NoData),
        (w, MX, Want::NoData),
        (w, TXT, Want::NoData),
        (w, CNAME, Want::NoData),
        ("v6.web.svc.cluster.local.", AAAA, Want::Answer(&["v6.web.svc.cluster.local. AAAA fd00::10"])),
        ("v6.web.svc.cluster.local.", A, Want::NoData),
        // Wrong namespace, unknown service, unknown namespace.
        ("web.web.svc.cluster.local.", A, Want::NxDomain),
        ("nope.default.svc.cluster.local.", A, Want::NxDomain),
        ("web.nope.svc.cluster.local.", A, Want::NxDomain),
        // The namespace and zone levels exist (NODATA), other names do not.
        ("default.svc.cluster.local.", A, Want::NoData),
        ("nope.svc.cluster.local.", A, Want::NxDomain),
        ("svc.cluster.local.", A, Want::NoData),
        ("cluster.local.", A, Want::NoData),
        ("web.default.cluster.local.", A, Want::NxDomain),
        ("a.b.c.web.default.svc.cluster.local.", A, Want::NxDomain),
        ("cluster.local.", SOA, Want::Answer(&[
            "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"])),
        ("dns-version.cluster.local.", TXT, Want::Answer(&["dns-version.cluster.local. TXT 1.1.0"])),
        // An endpoint of a ClusterIP service by its dashed IP.
        ("10-42-0-9.web.default.svc.cluster.local.", A,
            Want::Answer(&["10-42-0-9.web.default.svc.cluster.local. A 10.42.0.9"])),
    ]);
}

#[test]
fn headless_endpoints_and_hostnames() {
    check(
        &fixture(),
        &cfg(),
        &[
            // Ready endpoints only (ready unset counts as ready), slices in name order.
            (
                "db.default.svc.cluster.local.",
                A,
                Want::Answer(&[
                    "db.default.svc.cluster.local. A 10.42.0.5",
                    "db.default.svc.cluster.local. A 10.42.0.7",
                ]),
            ),
            (
                "db-0.db.default.svc.cluster.local.",
                A,
                Want::Answer(&["db-0.db.default.svc.cluster.local. A 10.42.0.5"]),
            ),
            ("db-1.db.default.svc.cluster.local.", A, Want::NxDomain),
            (
                "10-42-0-7.db.default.svc.cluster.local.",
                A,
                Want::Answer(&["10-42-0-7.db.default.svc.cluster.local. A 10.42.0.7"]),
            ),
            // publishNotReadyAddresses: not-ready endpoints too, even without ports.
            (
                "pub.default.svc.cluster.local.",
                A,
                Want::Answer(&["pub.default.svc.cluster.local. A 10.42.1.1"]),
            ),
            // A headless service without endpoints: NXDOMAIN, as CoreDNS.
            ("empty.default.svc.cluster.local.", A, Want::NxDomain),
        ],
    );
}

#[test]
fn srv_records() {
    let ix = fixture();
    check(&ix, &cfg(), &[
        ("_http._tcp.web.default.svc.cluster.local.", SRV,
            Want::Answer(&["_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."])),
        ("_dns._udp.web.default.svc.cluster.local.", SRV,
            Want::Answer(&["_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local."])),
        ("_dns._tcp.web.default.svc.cluster.local.", SRV, Want::NxDomain),
        ("_nope._tcp.web.default.svc.cluster.local.", SRV, Want::NxDomain),
        // Without port and protocol: every port.
        ("web.default.svc.cluster.local.", SRV, Want::Answer(&[
            "web.default.svc.cluster.local. SRV 0 50 80 web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. SRV 0 50 53 web.default.svc.cluster.local."])),
        // Headless: one per endpoint, targeting its hostname or dashed IP, endpoint ports.
        ("_pg._tcp.db.default.svc.cluster.local.", SRV, Want::Answer(&[
            "_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
            "_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 10-42-0-7.db.default.svc.cluster.local."])),
    ]);
    let Resolution::Local(a) = run(&ix, &cfg(), "_pg._tcp.db.default.svc.cluster.local.", SRV)
    else {
        panic!()
    };
    let extra: Vec<String> = a.additional.iter().map(show).collect();
    assert_eq!(
        extra,
        [
            "db-0.db.default.svc.cluster.local. A 10.42.0.5",
            "10-42-0-7.db.default.svc.cluster.local. A 10.42.0.7",
        ]
    );
}

#[test]
fn external_name_cname() {
    let ix = fixture();
    let Resolution::Local(a) = run(&ix, &cfg(), "ext.default.svc.cluster.local.", A) else {
        panic!()
    };
    assert_eq!(
        a.answers.iter().map(show).collect::<Vec<_>>(),
        ["ext.default.svc.cluster.local. CNAME example.com."]
    );
    assert_eq!(a.chase, Some(Name::from_ascii("example.com.").unwrap()));
    check(
        &ix,
        &cfg(),
        &[
            (
                "ext.default.svc.cluster.local.",
                CNAME,
                Want::Answer(&["ext.default.svc.cluster.local. CNAME example.com."]),
            ),
            ("x.ext.default.svc.cluster.local.", A, Want::NxDomain),
            // A target inside the zone is followed here.
            (
                "alias.default.svc.cluster.local.",
                A,
                Want::Answer(&[
                    "alias.default.svc.cluster.local. CNAME web.default.svc.cluster.local.",
                    "web.default.svc.cluster.local. A 10.43.0.20",
                ]),
            ),
        ],
    );
}

#[test]
fn pod_records_by_mode() {
    let ix = fixture();
    let insecure = cfg();
    check(
        &ix,
        &insecure,
        &[
            (
                "10-42-9-9.default.pod.cluster.local.",
                A,
                Want::Answer(&["10-42-9-9.default.pod.cluster.local. A 10.42.9.9"]),
            ),
            (
                "fd00--1.default.pod.cluster.local.",
                AAAA,
                Want::Answer(&["fd00--1.default.pod.cluster.local. AAAA fd00::1"]),
            ),
            ("10-42-9-9.nope.pod.cluster.local.", A, Want::NxDomain),
            ("not-an-ip.default.pod.cluster.local.", A, Want::NxDomain),
            ("default.pod.cluster.local.", A, Want::NoData),
        ],
    );
    let verified = Config::new("cluster.local.", 5, PodMode::Verified).unwrap();
    check(
        &ix,
        &verified,
        &[
            (
                "10-42-3-4.web.pod.cluster.local.",
                A,
                Want::Answer(&["10-42-3-4.web.pod.cluster.local. A 10.42.3.4"]),
            ),
            ("10-42-3-4.default.pod.cluster.local.", A, Want::NxDomain),
            ("10-42-9-9.web.pod.cluster.local.", A, Want::NxDomain),
        ],
    );
    let disabled = Config::new("cluster.local", 5, PodMode::Disabled).unwrap();
    check(
        &ix,
        &disabled,
        &[("10-42-3-4.web.pod.cluster.local.", A, Want::NxDomain)],
    );
}

#[test]
fn reverse_and_forward_decisions() {
    check(
        &fixture(),
        &cfg(),
        &[
            (
                "20.0.43.10.in-addr.arpa.",
                PTR,
                Want::Answer(&["20.0.43.10.in-addr.arpa. PTR web.default.svc.cluster.local."]),
            ),
            (
                "5.0.42.10.in-addr.arpa.",
                PTR,
                Want::Answer(&["5.0.42.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local."]),
            ),
            // Not-ready endpoints are not published; unknown IPs and other types fall through.
            ("6.0.42.10.in-addr.arpa.", PTR, Want::Forward),
            ("1.1.168.192.in-addr.arpa.", PTR, Want::Forward),
            ("20.0.43.10.in-addr.arpa.", A, Want::Forward),
            ("example.com.", A, Want::Forward),
            ("cluster.local.example.com.", A, Want::Forward),
            ("local.", A, Want::Forward),
        ],
    );
    // Another cluster domain.
    let other = Config::new("Corp.Internal", 5, PodMode::Insecure).unwrap();
    check(
        &fixture(),
        &other,
        &[
            (
                "web.default.svc.corp.internal.",
                A,
                Want::Answer(&["web.default.svc.corp.internal. A 10.43.0.20"]),
            ),
            ("web.default.svc.cluster.local.", A, Want::Forward),
        ],
    );
}

#[test]
fn updates_and_removals() {
    let mut ix = fixture();
    let c = cfg();
    // The slice drops db-0, the service is deleted, the namespace goes.
    ix.upsert_slice(&slice("default", "db-1", "db", json!([]), json!([])));
    check(
        &ix,
        &c,
        &[
            (
                "db.default.svc.cluster.local.",
                A,
                Want::Answer(&["db.default.svc.cluster.local. A 10.42.0.7"]),
            ),
            ("5.0.42.10.in-addr.arpa.", PTR, Want::Forward),
        ],
    );
    ix.remove_slice(&slice("default", "db-2", "db", json!([]), json!([])));
    check(
        &ix,
        &c,
        &[("db.default.svc.cluster.local.", A, Want::NxDomain)],
    );
    ix.remove_service(&svc("default", "web", json!({})));
    check(
        &ix,
        &c,
        &[
            ("web.default.svc.cluster.local.", A, Want::NxDomain),
            ("20.0.43.10.in-addr.arpa.", PTR, Want::Forward),
        ],
    );
    ix.set_namespace(&ns("web"), false);
    check(
        &ix,
        &c,
        &[("v6.web.svc.cluster.local.", AAAA, Want::NxDomain)],
    );
    // FQDN slices and slices without the service label publish nothing.
    let mut fq = slice(
        "default",
        "e-1",
        "empty",
        json!([{"addresses": ["10.42.5.5"]}]),
        json!([]),
    );
    fq["addressType"] = json!("FQDN");
    ix.upsert_slice(&fq);
    check(
        &ix,
        &c,
        &[("empty.default.svc.cluster.local.", A, Want::NxDomain)],
    );
}

fn query(name: &str, ty: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new();
    m.set_id(0xbeef)
        .set_recursion_desired(true)
        .set_checking_disabled(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn reply(p: Plan) -> Message {
    match p {
        Plan::Reply(b) => Message::from_vec(&b).unwrap(),
        other => panic!("want a reply, got {other:?}"),
    }
}

#[test]
fn messages_echo_id_flags_and_question() {
    let ix = fixture();
    let q = query("Web.default.svc.cluster.local.", A, None);
    let r = reply(plan(&q.to_vec().unwrap(), Transport::Udp, &ix, &cfg()));
    assert_eq!(r.id(), 0xbeef);
    assert_eq!(r.message_type(), MessageType::Response);
    assert!(r.authoritative() && r.recursion_desired() && r.checking_disabled());
    assert_eq!(r.queries(), q.queries());
    assert_eq!(r.answers().len(), 1);
    assert!(r.extensions().is_none());
    // EDNS in, EDNS out.
    let q = query("nope.default.svc.cluster.local.", A, Some(4096));
    let r = reply(plan(&q.to_vec().unwrap(), Transport::Udp, &ix, &cfg()));
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert_eq!(r.name_servers().len(), 1);
    assert_eq!(r.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
    // Outside the zone: forwarded; garbage with an ID: FORMERR; responses: dropped.
    let q = query("example.com.", A, None);
    assert_eq!(
        plan(&q.to_vec().unwrap(), Transport::Udp, &ix, &cfg()),
        Plan::Forward
    );
    let r = reply(plan(
        &[0x12, 0x34, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 7],
        Transport::Udp,
        &ix,
        &cfg(),
    ));
    assert_eq!((r.id(), r.response_code()), (0x1234, ResponseCode::FormErr));
    let mut resp = q.clone();
    resp.set_message_type(MessageType::Response);
    assert_eq!(
        plan(&resp.to_vec().unwrap(), Transport::Udp, &ix, &cfg()),
        Plan::Drop
    );
    assert_eq!(plan(&[1, 2, 3], Transport::Udp, &ix, &cfg()), Plan::Drop);
    // An external CNAME is chased.
    let q = query("ext.default.svc.cluster.local.", A, None);
    match plan(&q.to_vec().unwrap(), Transport::Udp, &ix, &cfg()) {
        Plan::Chase { query, .. } => assert_eq!(query.name().to_ascii(), "example.com."),
        other => panic!("{other:?}"),
    }
}

#[test]
fn large_answers_truncate_over_udp_without_edns() {
    let mut ix = fixture();
    let eps: Vec<Value> = (0..60)
        .map(|i| json!({"addresses": [format!("10.42.7.{i}")], "hostname": format!("member-{i}")}))
        .collect();
    ix.upsert_service(&svc("default", "big", json!({"clusterIP": "None"})));
    ix.upsert_slice(&slice(
        "default",
        "big-1",
        "big",
        json!(eps),
        json!([{"name": "p", "port": 1, "protocol": "TCP"}]),
    ));
    let bytes = query("big.default.svc.cluster.local.", A, None)
        .to_vec()
        .unwrap();
    let udp = reply(plan(&bytes, Transport::Udp, &ix, &cfg()));
    assert!(udp.truncated() && udp.answers().is_empty());
    assert_eq!(udp.queries().len(), 1);
    let tcp = reply(plan(&bytes, Transport::Tcp, &ix, &cfg()));
    assert!(!tcp.truncated());
    assert_eq!(tcp.answers().len(), 60);
    // With EDNS the client's size (up to 1232) decides.
    let bytes = query("big.default.svc.cluster.local.", A, Some(4096))
        .to_vec()
        .unwrap();
    let udp = reply(plan(&bytes, Transport::Udp, &ix, &cfg()));
    assert!(!udp.truncated());
    assert_eq!(udp.answers().len(), 60);
    // SRV over UDP: the additional section goes first, without TC.
    let bytes = query("_p._tcp.big.default.svc.cluster.local.", SRV, Some(1232))
        .to_vec()
        .unwrap();
    let udp = reply(plan(&bytes, Transport::Udp, &ix, &cfg()));
    let tcp = reply(plan(&bytes, Transport::Tcp, &ix, &cfg()));
    assert_eq!(tcp.additionals().len(), 60);
    assert!(udp.truncated() || udp.additionals().len() < 60);
}

#[test]
fn config_rejects_bad_domains() {
    assert!(Config::new("", 5, PodMode::Insecure).is_err());
    assert!(Config::new("a..b", 5, PodMode::Insecure).is_err());
    assert!("bogus".parse::<PodMode>().is_err());
    assert_eq!("verified".parse::<PodMode>(), Ok(PodMode::Verified));
}
