//! Service allocation and the service-lb controller end to end, on the real binary with the
//! real kubectl: 50 concurrent creates get distinct cluster IPs and node ports; explicit
//! values are honoured or refused with kube's messages; deletes and type changes release;
//! after kill -9 the allocations are rebuilt from the store (no doubles, taken values still
//! refused). LoadBalancer services get ingress IPs from `--ingress-ip-cidr` (shown in
//! `kubectl get svc`), wait `<pending>` with a SyncLoadBalancerFailed event when the pool is
//! exhausted, get the address released by a delete or a type change, and keep theirs across
//! a restart. `--external-ip-cidrs` admits or refuses spec.externalIPs.

mod common;

use common::{Backend, Server};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn services(s: &Server) -> Vec<Value> {
    let out = s.kubectl(&["get", "svc", "-A", "-o", "json"]).ok();
    json(&out)["items"].as_array().cloned().unwrap_or_default()
}

/// No cluster IP or node port held twice; returns (ips, ports).
fn assert_unique(s: &Server) -> (HashSet<String>, HashSet<u64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for svc in services(s) {
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().filter(|i| *i != "None") {
            assert!(ips.insert(ip.to_string()), "{ip} twice (at {name})");
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_u64() {
                assert!(ports.insert(n), "node port {n} twice (at {name})");
            }
        }
    }
    (ips, ports)
}

fn post_service(s: &Server, body: &str) -> (u16, String) {
    s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        body,
        &format!("{}/api/v1/namespaces/default/services", s.url()),
    ])
}

#[test]
fn cluster_ips_and_node_ports_under_concurrency_and_restart() {
    let mut s = Server::start_backend(Backend::Embedded, &[]);
    let bodies: Vec<String> = (0..50)
        .map(|i| {
            let ty = if i % 2 == 0 { "NodePort" } else { "LoadBalancer" };
            format!(
                r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"c{i}"}},"spec":{{"type":"{ty}","ports":[{{"port":80}}]}}}}"#
            )
        })
        .collect();
    std::thread::scope(|sc| {
        let hs: Vec<_> = bodies
            .iter()
            .map(|b| sc.spawn(|| post_service(&s, b)))
            .collect();
        for h in hs {
            let (code, body) = h.join().unwrap();
            assert_eq!(code, 201, "{body}");
        }
    });
    let (ips, ports) = assert_unique(&s);
    assert_eq!(ips.len(), 51, "50 + kubernetes");
    assert_eq!(ports.len(), 50, "{ports:?}");
    assert!(
        !ips.contains("10.43.0.10"),
        "the DNS service's IP stays free"
    );

    // Explicit values: honoured when free, refused with kube's messages when not.
    s.kubectl(&[
        "create",
        "service",
        "clusterip",
        "fixed",
        "--tcp=80:80",
        "--clusterip=10.43.0.5",
    ])
    .ok();
    let err = s
        .kubectl(&[
            "create",
            "service",
            "clusterip",
            "again",
            "--tcp=80:80",
            "--clusterip=10.43.0.5",
        ])
        .err();
    assert!(err.contains(r#"spec.clusterIPs: Invalid value: []string{"10.43.0.5"}: failed to allocate IP 10.43.0.5: provided IP is already allocated"#), "{err}");
    let err = s
        .kubectl(&[
            "create",
            "service",
            "clusterip",
            "far",
            "--tcp=80:80",
            "--clusterip=10.99.0.5",
        ])
        .err();
    assert!(err.contains("the provided IP (10.99.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16"), "{err}");
    s.kubectl(&[
        "create",
        "service",
        "nodeport",
        "np",
        "--tcp=80:80",
        "--node-port=30080",
    ])
    .ok();
    let err = s
        .kubectl(&[
            "create",
            "service",
            "nodeport",
            "np2",
            "--tcp=80:80",
            "--node-port=30080",
        ])
        .err();
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{err}"
    );

    // Delete releases; NodePort → ClusterIP releases the node port.
    s.kubectl(&["delete", "svc", "fixed"]).ok();
    s.kubectl(&[
        "create",
        "service",
        "clusterip",
        "fixed2",
        "--tcp=80:80",
        "--clusterip=10.43.0.5",
    ])
    .ok();
    s.kubectl(&[
        "patch",
        "svc",
        "np",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ])
    .ok();
    let np = json(&s.kubectl(&["get", "svc", "np", "-o", "json"]).ok());
    assert!(np["spec"]["ports"][0].get("nodePort").is_none(), "{np}");
    s.kubectl(&[
        "create",
        "service",
        "nodeport",
        "np3",
        "--tcp=80:80",
        "--node-port=30080",
    ])
    .ok();
    // ClusterIP → ExternalName releases the IP.
    s.kubectl(&[
        "create",
        "service",
        "clusterip",
        "ename",
        "--tcp=80:80",
        "--clusterip=10.43.0.6",
    ])
    .ok();
    s.kubectl(&[
        "patch",
        "svc",
        "ename",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"example.com"}}"#,
    ])
    .ok();
    s.kubectl(&[
        "create",
        "service",
        "clusterip",
        "takes6",
        "--tcp=80:80",
        "--clusterip=10.43.0.6",
    ])
    .ok();

    // kill -9: the allocations are rebuilt from the store.
    s.kill9_and_restart();
    let err = s
        .kubectl(&[
            "create",
            "service",
            "clusterip",
            "after",
            "--tcp=80:80",
            "--clusterip=10.43.0.5",
        ])
        .err();
    assert!(err.contains("provided IP is already allocated"), "{err}");
    let err = s
        .kubectl(&[
            "create",
            "service",
            "nodeport",
            "after2",
            "--tcp=80:80",
            "--node-port=30080",
        ])
        .err();
    assert!(err.contains("provided port is already allocated"), "{err}");
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..20)
            .map(|i| {
                let b = format!(
                    r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"r{i}"}},"spec":{{"type":"NodePort","ports":[{{"port":80}}]}}}}"#
                );
                let s = &s;
                sc.spawn(move || post_service(s, &b))
            })
            .collect();
        for h in hs {
            let (code, body) = h.join().unwrap();
            assert_eq!(code, 201, "{body}");
        }
    });
    let (ips, _) = assert_unique(&s);
    assert_eq!(ips.len(), 51 + 4 + 20, "{ips:?}");
}

fn until(s: &Server, secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} not within {secs}s\n{}\n{}",
            s.kubectl(&["get", "svc", "-o", "wide"]).stdout,
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn external_ip(s: &Server, name: &str) -> String {
    let out = s.kubectl(&["get", "svc", name, "--no-headers"]).stdout;
    out.split_whitespace().nth(3).unwrap_or("").to_string()
}

#[test]
fn load_balancer_ingress_ips_and_external_ips() {
    let mut s = Server::start_backend(
        Backend::Embedded,
        &[
            "--ingress-ip-cidr",
            "172.29.0.0/30",
            "--external-ip-cidrs",
            "192.168.50.0/24",
        ],
    );
    for n in ["lb1", "lb2", "lb3"] {
        s.kubectl(&["create", "service", "loadbalancer", n, "--tcp=80:8080"])
            .ok();
        std::thread::sleep(Duration::from_millis(300));
    }
    until(&s, 20, "two ingress IPs", || {
        let mut got = vec![external_ip(&s, "lb1"), external_ip(&s, "lb2")];
        got.sort();
        got == ["172.29.0.1", "172.29.0.2"]
    });
    let lb1 = json(&s.kubectl(&["get", "svc", "lb1", "-o", "json"]).ok());
    assert_eq!(
        lb1["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP",
        "{lb1}"
    );
    assert_eq!(external_ip(&s, "lb3"), "<pending>");
    until(&s, 20, "SyncLoadBalancerFailed", || {
        let ev = s
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=lb3",
            ])
            .stdout;
        ev.contains("Warning")
            && ev.contains("SyncLoadBalancerFailed")
            && ev.contains("no address left in the ingress IP pool 172.29.0.0/30")
    });
    // A delete frees an address for the waiting service.
    let freed = external_ip(&s, "lb1");
    s.kubectl(&["delete", "svc", "lb1"]).ok();
    until(&s, 20, "lb3 assigned", || external_ip(&s, "lb3") == freed);

    // kill -9: assignments are kept (rebuilt from status), no address handed out twice.
    let before = (external_ip(&s, "lb2"), external_ip(&s, "lb3"));
    s.kill9_and_restart();
    s.kubectl(&["create", "service", "loadbalancer", "lb4", "--tcp=80:8080"])
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!((external_ip(&s, "lb2"), external_ip(&s, "lb3")), before);
    assert_eq!(external_ip(&s, "lb4"), "<pending>");
    // A type change gives the address back.
    s.kubectl(&[
        "patch",
        "svc",
        "lb3",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ])
    .ok();
    until(&s, 20, "lb4 assigned", || {
        external_ip(&s, "lb4") == before.1
    });
    until(&s, 20, "lb3 status cleared", || {
        let v = json(&s.kubectl(&["get", "svc", "lb3", "-o", "json"]).ok());
        v["status"]["loadBalancer"].get("ingress").is_none()
            && v["spec"]["ports"][0].get("nodePort").is_none()
    });

    // externalIPs: inside --external-ip-cidrs admitted, outside (or in the pool) refused.
    let svc = |name: &str, ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n  externalIPs: [\"{ip}\"]\n"
        )
    };
    s.kubectl_stdin(&["apply", "-f", "-"], &svc("ext-ok", "192.168.50.5"))
        .ok();
    let wide = s.kubectl(&["get", "svc", "ext-ok", "--no-headers"]).stdout;
    assert!(wide.contains("192.168.50.5"), "{wide}");
    for ip in ["10.9.9.9", "172.29.0.3"] {
        let err = s
            .kubectl_stdin(&["apply", "-f", "-"], &svc("ext-bad", ip))
            .err();
        assert!(
            err.contains(r#"The Service "ext-bad" is invalid: spec.externalIPs[0]: Forbidden: externalIP is not allowed"#),
            "{err}"
        );
    }
    // Without --external-ip-cidrs externalIPs are disabled (OpenShift's default).
    s.restart_with(&[]);
    let err = s
        .kubectl_stdin(&["apply", "-f", "-"], &svc("ext-off", "192.168.50.6"))
        .err();
    assert!(
        err.contains("spec.externalIPs: Forbidden: externalIPs have been disabled"),
        "{err}"
    );
}
