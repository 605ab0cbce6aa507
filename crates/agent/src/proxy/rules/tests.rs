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

fn ep(ip: &str, ready: Option<bool>, node: &str) -> Value {
    let mut e = json!({"addresses": [ip], "nodeName": node});
    if let Some(r) = ready {
        e["conditions"] = json!({"ready": r});
    } else {
        e["conditions"] = json!({});
    }
    e
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

fn rs(services: &[Value], slices: &[Value]) -> String {
    ruleset("capstan", "n1", &["192.0.2.2".into()], services, slices)
}

/// The chains and maps every table has, after `service-ips` … (for exact comparisons).
const FIXED: &str = "\tchain filter-input {
\t\ttype filter hook input priority -110; policy accept;
\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t\tct state new ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
\t}
\tchain filter-forward {
\t\ttype filter hook forward priority -110; policy accept;
\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t}
\tchain filter-output {
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t\tct state new ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
\tchain nat-postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 meta mark set meta mark ^ 0x00004000 masquerade fully-random
\t\tct status dnat ip saddr . ip daddr @hairpin masquerade fully-random
\t}
\tchain mark-for-masquerade {
\t\tmeta mark set meta mark | 0x00004000
\t}
\tchain reject-chain {
\t\tmeta l4proto tcp reject with tcp reset
\t\treject
\t}
\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
\t}
";

#[test]
fn cluster_ip_balances_over_ready_endpoints_exactly() {
    let slices = [web_slice(json!([
        ep("10.42.0.6", None, "n1"),
        ep("10.42.0.7", Some(false), "n1"),
        ep("10.42.0.5", Some(true), "n2"),
    ]))];
    let want = format!(
        "table ip capstan {{}}
delete table ip capstan
table ip capstan {{
\tcomment \"capstan service proxy of node n1\"
\tset nodeport-ips {{
\t\ttype ipv4_addr
\t\telements = {{ 192.0.2.2 }}
\t}}
\tset hairpin {{
\t\ttype ipv4_addr . ipv4_addr
\t\telements = {{ 10.42.0.5 . 10.42.0.5, 10.42.0.6 . 10.42.0.6 }}
\t}}
\tmap service-ips {{
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = {{ 10.43.0.10 . tcp . 80 : goto svc-default/web/tcp/http }}
\t}}
\tmap service-nodeports {{
\t\ttype inet_proto . inet_service : verdict
\t}}
\tmap no-endpoint-services {{
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t}}
\tmap no-endpoint-nodeports {{
\t\ttype inet_proto . inet_service : verdict
\t}}
{FIXED}\tchain svc-default/web/tcp/http {{
\t\tmeta l4proto tcp dnat ip to numgen random mod 2 map {{ 0 : 10.42.0.5 . 8080, 1 : 10.42.0.6 . 8080 }}
\t}}
}}
"
    );
    assert_eq!(rs(&[web()], &slices), want);
}

#[test]
fn no_ready_endpoint_rejects_instead_of_black_holing() {
    let mut s = web();
    s["spec"]["type"] = json!("NodePort");
    s["spec"]["ports"][0]["nodePort"] = json!(30080);
    let slices = [web_slice(json!([ep("10.42.0.7", Some(false), "n1")]))];
    let out = rs(&[s.clone()], &slices);
    let want = "\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t}
\tmap service-nodeports {
\t\ttype inet_proto . inet_service : verdict
\t}
\tmap no-endpoint-services {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 10.43.0.10 . tcp . 80 : goto reject-chain }
\t}
\tmap no-endpoint-nodeports {
\t\ttype inet_proto . inet_service : verdict
\t\telements = { tcp . 30080 : goto reject-chain }
\t}
";
    assert!(out.contains(want), "{out}");
    assert!(!out.contains("chain svc-"), "{out}");
    assert!(!out.contains("dnat to"), "{out}");
    assert!(!out.contains("dnat ip to"), "{out}");
    // No slice at all: the same.
    assert_eq!(rs(&[s], &[]), out);
}

#[test]
fn node_port_external_ips_and_load_balancer_ingress_masquerade() {
    let mut s = web();
    s["spec"]["type"] = json!("LoadBalancer");
    s["spec"]["ports"][0]["nodePort"] = json!(30080);
    s["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    s["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.29.0.1", "ipMode": "VIP"}]}});
    let out = rs(&[s], &[web_slice(json!([ep("10.42.0.5", None, "n1")]))]);
    assert!(
        out.contains(
            "\t\telements = { 10.43.0.10 . tcp . 80 : goto svc-default/web/tcp/http,
\t\t\t172.29.0.1 . tcp . 80 : goto ext-default/web/tcp/http,
\t\t\t198.51.100.7 . tcp . 80 : goto ext-default/web/tcp/http }\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\t\telements = { tcp . 30080 : goto ext-default/web/tcp/http }\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "\tchain ext-default/web/tcp/http {
\t\tjump mark-for-masquerade
\t\tgoto svc-default/web/tcp/http
\t}\n"
        ),
        "{out}"
    );
}

#[test]
fn node_port_of_a_cluster_ip_service_is_ignored() {
    let mut s = web();
    s["spec"]["ports"][0]["nodePort"] = json!(30080);
    let out = rs(&[s], &[web_slice(json!([ep("10.42.0.5", None, "n1")]))]);
    assert!(!out.contains("30080"), "{out}");
    assert!(!out.contains("chain ext-"), "{out}");
}

#[test]
fn client_ip_affinity_sets_per_endpoint() {
    let mut s = web();
    s["spec"]["sessionAffinity"] = json!("ClientIP");
    s["spec"]["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 60}});
    let out = rs(
        &[s],
        &[web_slice(json!([
            ep("10.42.0.5", None, "n1"),
            ep("10.42.0.6", None, "n1")
        ]))],
    );
    assert!(
        out.contains(
            "\tset aff-default/web/tcp/http/10.42.0.5/8080 {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 60s
\t}\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\tchain svc-default/web/tcp/http {
\t\tip saddr @aff-default/web/tcp/http/10.42.0.5/8080 goto ep-default/web/tcp/http/10.42.0.5/8080
\t\tip saddr @aff-default/web/tcp/http/10.42.0.6/8080 goto ep-default/web/tcp/http/10.42.0.6/8080
\t\tnumgen random mod 2 vmap"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\t\tupdate @aff-default/web/tcp/http/10.42.0.6/8080 { ip saddr }
\t\tmeta l4proto tcp dnat to 10.42.0.6:8080\n"
        ),
        "{out}"
    );
    // Without timeoutSeconds: kube's default of 3 hours.
    let mut s = web();
    s["spec"]["sessionAffinity"] = json!("ClientIP");
    let out = rs(&[s], &[web_slice(json!([ep("10.42.0.5", None, "n1")]))]);
    assert!(out.contains("timeout 10800s"), "{out}");
}

#[test]
fn external_traffic_policy_local_uses_this_nodes_endpoints() {
    let mut s = web();
    s["spec"]["type"] = json!("NodePort");
    s["spec"]["ports"][0]["nodePort"] = json!(30080);
    s["spec"]["externalTrafficPolicy"] = json!("Local");
    let slices = [web_slice(json!([
        ep("10.42.0.5", None, "n2"),
        ep("10.42.0.6", None, "n1")
    ]))];
    let out = rs(&[s.clone()], &slices);
    assert!(
        out.contains(
            "\tchain ext-default/web/tcp/http {
\t\tmeta l4proto tcp dnat to 10.42.0.6:8080
\t}\n"
        ),
        "{out}"
    );
    let out = ruleset("capstan", "n3", &[], &[s], &slices);
    assert!(
        out.contains("\tchain ext-default/web/tcp/http {\n\t\tdrop\n\t}\n"),
        "{out}"
    );
    // The cluster IP still reaches both.
    assert!(out.contains("numgen random mod 2"), "{out}");
}

#[test]
fn target_port_comes_from_the_slice_port_of_the_same_name_and_protocol() {
    let s = svc(
        "multi",
        json!({"clusterIP": "10.43.0.20", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "metrics", "port": 9100}]}),
    );
    let sl = slice(
        "multi",
        json!([{"name": "dns", "port": 5353, "protocol": "UDP"},
               {"name": "http", "port": 8080},
               {"name": "metrics", "port": 9100, "protocol": "UDP"}]),
        json!([ep("10.42.0.5", None, "n1")]),
    );
    let out = rs(&[s], &[sl]);
    assert!(
        out.contains("meta l4proto tcp dnat to 10.42.0.5:8080"),
        "{out}"
    );
    assert!(
        out.contains("meta l4proto udp dnat to 10.42.0.5:5353"),
        "{out}"
    );
    // metrics is TCP in the service but UDP in the slice: no endpoint.
    assert!(
        out.contains("10.43.0.20 . tcp . 9100 : goto reject-chain"),
        "{out}"
    );
}

#[test]
fn unnamed_ports_slices_of_other_services_and_duplicates() {
    let s = svc(
        "plain",
        json!({"clusterIP": "10.43.0.30", "ports": [{"port": 80}]}),
    );
    let mut other_ns = slice(
        "plain",
        json!([{"port": 8081}]),
        json!([ep("10.42.0.9", None, "n1")]),
    );
    other_ns["metadata"]["namespace"] = json!("other");
    let a = slice(
        "plain",
        json!([{"port": 8080}]),
        json!([ep("10.42.0.5", None, "n1")]),
    );
    let b = slice(
        "plain",
        json!([{"port": 8080}]),
        json!([ep("10.42.0.5", None, "n1"), ep("10.42.0.6", None, "n1")]),
    );
    let out = rs(&[s], &[other_ns, a, b]);
    assert!(out.contains("goto svc-default/plain/tcp/80"), "{out}");
    assert!(
        out.contains(
            "dnat ip to numgen random mod 2 map { 0 : 10.42.0.5 . 8080, 1 : 10.42.0.6 . 8080 }"
        ),
        "{out}"
    );
    assert!(!out.contains("10.42.0.9"), "{out}");
}

#[test]
fn skipped_services_and_addresses() {
    let services = [
        svc(
            "headless",
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
        ),
        svc(
            "ext",
            json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}),
        ),
        svc(
            "v6",
            json!({"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"], "ports": [{"port": 80}]}),
        ),
        svc(
            "Bad;name",
            json!({"clusterIP": "10.43.0.40", "ports": [{"port": 80}]}),
        ),
        svc(
            "injected",
            json!({"clusterIP": "10.43.0.41 } ; flush ruleset", "ports": [{"port": 80}]}),
        ),
    ];
    let out = rs(&services, &[]);
    assert_eq!(out, rs(&[], &[]));
    assert!(!out.contains("10.43.0."), "{out}");
    // Endpoint addresses that are not IPv4 are skipped too.
    let out = rs(
        &[web()],
        &[web_slice(json!([
            ep("fd00::5", None, "n1"),
            ep("x; flush ruleset", None, "n1")
        ]))],
    );
    assert!(out.contains("goto reject-chain"), "{out}");
}

#[test]
fn output_is_deterministic() {
    let a = web();
    let b = svc(
        "api",
        json!({"clusterIP": "10.43.0.2", "ports": [{"name": "http", "port": 80}]}),
    );
    let sa = web_slice(json!([
        ep("10.42.0.6", None, "n1"),
        ep("10.42.0.5", None, "n1")
    ]));
    let sb = slice(
        "api",
        json!([{"name": "http", "port": 8080}]),
        json!([ep("10.42.0.8", None, "n1")]),
    );
    let one = ruleset(
        "capstan",
        "n1",
        &["192.0.2.2".into(), "10.0.0.1".into()],
        &[a.clone(), b.clone()],
        &[sa.clone(), sb.clone()],
    );
    let two = ruleset(
        "capstan",
        "n1",
        &["10.0.0.1".into(), "192.0.2.2".into()],
        &[b, a],
        &[sb, sa],
    );
    assert_eq!(one, two);
    assert!(one.contains("elements = { 10.0.0.1, 192.0.2.2 }"), "{one}");
    assert!(one.find("svc-default/api").unwrap() < one.find("chain svc-default/web").unwrap());
}

#[test]
fn a_key_claimed_twice_goes_to_the_first_service() {
    let mut a = web();
    a["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    let mut b = svc(
        "api",
        json!({"clusterIP": "10.43.0.2", "ports": [{"name": "http", "port": 80}]}),
    );
    b["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    let out = rs(&[a, b], &[]);
    assert_eq!(out.matches("198.51.100.7 . tcp . 80").count(), 1, "{out}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `nft -c -f -` (check mode: parsed and validated by the kernel, nothing committed).
fn nft_check(script: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
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
    lb["spec"]["type"] = json!("LoadBalancer");
    lb["spec"]["ports"][0]["nodePort"] = json!(30080);
    lb["spec"]["externalIPs"] = json!(["198.51.100.7"]);
    lb["spec"]["sessionAffinity"] = json!("ClientIP");
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.29.0.1"}]}});
    let mut local = svc(
        "local",
        json!({"type": "NodePort", "clusterIP": "10.43.0.50", "externalTrafficPolicy": "Local",
               "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
                         {"name": "s", "port": 9, "protocol": "SCTP", "nodePort": 30009}]}),
    );
    local["metadata"]["namespace"] = json!("default");
    let none = svc(
        "empty",
        json!({"type": "NodePort", "clusterIP": "10.43.0.60",
               "ports": [{"port": 80, "nodePort": 30060}, {"port": 53, "protocol": "UDP"}]}),
    );
    let slices = [
        web_slice(json!([
            ep("10.42.0.5", None, "n1"),
            ep("10.42.0.6", Some(true), "n2")
        ])),
        slice(
            "local",
            json!([{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "s", "port": 9, "protocol": "SCTP"}]),
            json!([ep("10.42.0.7", None, "n2")]),
        ),
    ];
    let cases = [
        rs(&[], &[]),
        ruleset("capstan-check", "n1", &[], &[web()], &[]),
        rs(&[lb, local, none], &slices),
    ];
    for script in cases {
        let script = script.replace("ip capstan", "ip capstan-check");
        if let Err(e) = nft_check(&script) {
            panic!("nft -c rejected the script: {e}\n{script}");
        }
    }
}
