use super::*;
use serde_json::json;

fn svc(name: &str, spec: Value) -> Value {
    json!({"metadata": {"namespace": "default", "name": name}, "spec": spec})
}

fn slice(svc: &str, ports: Value, endpoints: Value) -> Value {
    json!({
        "metadata": {"namespace": "default", "name": format!("{svc}-abc"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    })
}

fn ep(ip: &str, ready: Option<bool>) -> Value {
    match ready {
        Some(r) => json!({"addresses": [ip], "conditions": {"ready": r}}),
        None => json!({"addresses": [ip], "conditions": {}}),
    }
}

fn web() -> Value {
    svc(
        "web",
        json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}),
    )
}

fn web_slice(eps: Value) -> Value {
    slice(
        "web",
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        eps,
    )
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

#[test]
fn frontends_per_service_port() {
    let mut lb = web();
    lb["spec"]["type"] = json!("LoadBalancer");
    lb["spec"]["ports"][0]["nodePort"] = json!(30080);
    lb["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    lb["spec"]["sessionAffinity"] = json!("ClientIP");
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.29.0.1"}]}});
    let dns = svc(
        "dns",
        json!({"clusterIP": "10.43.0.53",
               "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                         {"name": "s", "port": 9, "protocol": "SCTP"}]}),
    );
    let headless = svc(
        "headless",
        json!({"clusterIP": "None", "ports": [{"port": 80}]}),
    );
    let slices = [
        web_slice(json!([
            ep("10.42.0.6", Some(true)),
            ep("10.42.0.5", None),
            ep("10.42.0.9", Some(false))
        ])),
        slice(
            "dns",
            json!([{"name": "dns", "port": 10053, "protocol": "UDP"}]),
            json!([ep("192.0.2.2", Some(true))]),
        ),
    ];
    let cases: Vec<(Vec<Value>, Vec<Frontend>)> = vec![
        (vec![], vec![]),
        (vec![headless], vec![]),
        (
            vec![web()],
            vec![Frontend {
                id: "default/web/tcp/http".into(),
                proto: Proto::Tcp,
                port: 80,
                node_port: None,
                ips: vec!["10.43.0.10".parse().unwrap()],
                affinity: None,
                endpoints: vec![sa("10.42.0.5:8080"), sa("10.42.0.6:8080")],
            }],
        ),
        (
            vec![lb, dns],
            vec![
                Frontend {
                    id: "default/dns/udp/dns".into(),
                    proto: Proto::Udp,
                    port: 53,
                    node_port: None,
                    ips: vec!["10.43.0.53".parse().unwrap()],
                    affinity: None,
                    endpoints: vec![sa("192.0.2.2:10053")],
                },
                Frontend {
                    id: "default/web/tcp/http".into(),
                    proto: Proto::Tcp,
                    port: 80,
                    node_port: Some(30080),
                    ips: vec![
                        "10.43.0.10".parse().unwrap(),
                        "172.29.0.1".parse().unwrap(),
                        "198.51.100.7".parse().unwrap(),
                    ],
                    affinity: Some(10800),
                    endpoints: vec![sa("10.42.0.5:8080"), sa("10.42.0.6:8080")],
                },
            ],
        ),
    ];
    for (services, want) in cases {
        assert_eq!(frontends(&services, &slices, "n1"), want, "{services:?}");
    }
}

const HEAD: &str = "table ip capstan {}
delete table ip capstan
table ip capstan {
\tcomment \"capstan userspace service proxy of node n1\"
\tset nodeport-ips {
\t\ttype ipv4_addr
\t\telements = { 192.0.2.2 }
\t}
";

const CHAINS: &str = "\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
\tchain services {
\t\tdnat ip to ip daddr . meta l4proto . th dport map @service-ips
\t\tip daddr @nodeport-ips dnat ip to meta l4proto . th dport map @service-nodeports
\t}
}
";

fn rs(listeners: &[(&Frontend, u16)]) -> String {
    ruleset(
        "capstan",
        "n1",
        &["192.0.2.2".into(), "bogus".into()],
        "192.0.2.2".parse().unwrap(),
        listeners,
    )
}

#[test]
fn ruleset_redirects_to_listeners() {
    let mut lb = web();
    lb["spec"]["type"] = json!("NodePort");
    lb["spec"]["ports"][0]["nodePort"] = json!(30080);
    lb["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    let dns = svc(
        "dns",
        json!({"clusterIP": "10.43.0.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    // A second service claiming web's cluster IP and port: the first (by id) keeps it.
    let dup = svc(
        "zzz",
        json!({"clusterIP": "10.43.0.10", "ports": [{"port": 80}]}),
    );
    let fs = frontends(&[lb, dns, dup], &[] as &[Value], "n1");
    assert_eq!(fs.len(), 3);
    let empty = format!(
        "{HEAD}\tmap service-ips {{
\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
\t}}
\tmap service-nodeports {{
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t}}
{CHAINS}"
    );
    let full = format!(
        "{HEAD}\tmap service-ips {{
\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
\t\telements = {{ 10.43.0.10 . tcp . 80 : 192.0.2.2 . 40002,
\t\t\t10.43.0.53 . udp . 53 : 192.0.2.2 . 40001,
\t\t\t198.51.100.7 . tcp . 80 : 192.0.2.2 . 40002 }}
\t}}
\tmap service-nodeports {{
\t\ttype inet_proto . inet_service : ipv4_addr . inet_service
\t\telements = {{ tcp . 30080 : 192.0.2.2 . 40002 }}
\t}}
{CHAINS}"
    );
    let cases: Vec<(Vec<(&Frontend, u16)>, String)> = vec![
        (vec![], empty),
        (
            vec![(&fs[0], 40001), (&fs[1], 40002), (&fs[2], 40003)],
            full,
        ),
    ];
    for (listeners, want) in cases {
        assert_eq!(rs(&listeners), want);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

#[test]
fn generated_scripts_pass_nft_check() {
    let have_nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root() || !have_nft {
        eprintln!("NOTICE: nft check needs root and nft; skipped");
        return;
    }
    let mut lb = web();
    lb["spec"]["type"] = json!("NodePort");
    lb["spec"]["ports"][0]["nodePort"] = json!(30080);
    let fs = frontends(&[lb], &[] as &[Value], "n1");
    for listeners in [vec![], vec![(&fs[0], 40001)]] {
        let script = rs(&listeners).replace("ip capstan", "ip capstan-uscheck");
        let mut child = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -c rejected: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
