use super::*;
use serde_json::json;

fn tunnel_node(name: &str, cidr: &str, ip: &str, mac: &str) -> Value {
    let mut n = node(name, Some(cidr), Some(ip));
    n["metadata"]["annotations"] = json!({VXLAN_MAC_ANNOTATION: mac});
    n
}

fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Value {
    let mut n = json!({"metadata": {"name": name}, "spec": {}, "status": {"addresses": [
        {"type": "Hostname", "address": name}
    ]}});
    if let Some(c) = cidr {
        n["spec"]["podCIDR"] = json!(c);
    }
    if let Some(ip) = ip {
        n["status"]["addresses"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "InternalIP", "address": ip}));
    }
    n
}

fn cidr(s: &str) -> Cidr {
    Cidr::parse(s).unwrap()
}

fn local() -> Local {
    Local {
        node: "a".into(),
        pod_cidr: "10.42.0.0/24".into(),
        own_ips: vec![
            "127.0.0.1".parse().unwrap(),
            "192.168.7.1".parse().unwrap(),
            "10.42.0.1".parse().unwrap(),
        ],
        connected: vec![cidr("192.168.7.0/24")],
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn plans() {
    let cluster = cidr("10.42.0.0/16");
    type Case<'a> = (
        &'a str,
        Vec<Value>,
        &'a [(&'a str, &'a str)],
        Vec<(&'a str, Skip)>,
    );
    let cases: Vec<Case> = vec![
        (
            "alone",
            vec![node("a", Some("10.42.0.0/24"), Some("192.168.7.1"))],
            &[],
            vec![],
        ),
        (
            "a connected peer",
            vec![
                node("a", Some("10.42.0.0/24"), Some("192.168.7.1")),
                node("b", Some("10.42.1.0/24"), Some("192.168.7.2")),
            ],
            &[("10.42.1.0/24", "192.168.7.2")],
            vec![],
        ),
        (
            "peers not yet ready, remote (no MAC), same host",
            vec![
                node("b", None, Some("192.168.7.2")),
                node("c", Some("10.42.2.0/24"), None),
                node("d", Some("10.42.3.0/24"), Some("172.16.0.9")),
                node("e", Some("10.42.4.0/24"), Some("192.168.7.1")),
                node("f", Some("10.42.5.0/24"), Some("192.168.7.6")),
                node("g", Some("10.42.6.0/24"), Some("127.1.0.7")),
            ],
            &[("10.42.5.0/24", "192.168.7.6")],
            vec![
                ("b", Skip::NoPodCidr),
                ("c", Skip::NoAddress),
                ("d", Skip::NotConnected(ip("172.16.0.9"))),
                ("e", Skip::SameHost),
                ("g", Skip::SameHost),
            ],
        ),
        (
            "cidrs outside the cluster, overlapping ours or each other",
            vec![
                node("b", Some("192.168.7.0/24"), Some("192.168.7.2")),
                node("c", Some("10.42.0.0/25"), Some("192.168.7.3")),
                node("d", Some("10.42.8.0/24"), Some("192.168.7.4")),
                node("e", Some("10.42.8.0/24"), Some("192.168.7.5")),
                node("f", Some("bogus"), Some("192.168.7.6")),
                node("g", Some("10.0.0.0/8"), Some("192.168.7.7")),
            ],
            &[("10.42.8.0/24", "192.168.7.4")],
            vec![
                ("b", Skip::OutsideCluster("192.168.7.0/24".into())),
                ("c", Skip::Overlaps("10.42.0.0/25".into())),
                ("e", Skip::Overlaps("10.42.8.0/24".into())),
                ("f", Skip::OutsideCluster("bogus".into())),
                ("g", Skip::OutsideCluster("10.0.0.0/8".into())),
            ],
        ),
        (
            "the canonical network of a podCIDR written with host bits",
            vec![node("b", Some("10.42.1.7/24"), Some("192.168.7.2"))],
            &[("10.42.1.0/24", "192.168.7.2")],
            vec![],
        ),
    ];
    for (what, nodes, routes, skipped) in cases {
        let got = plan(&nodes, &local(), &cluster);
        assert!(got.tunnels.is_empty(), "{what}");
        assert_eq!(got.wants_vxlan, what.contains("remote"), "{what}");
        let want: BTreeMap<String, Ipv4Addr> =
            routes.iter().map(|(d, v)| (d.to_string(), ip(v))).collect();
        assert_eq!(got.routes, want, "{what}");
        let skipped: Vec<(String, Skip)> = skipped
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect();
        assert_eq!(got.skipped, skipped, "{what}");
    }
}

#[test]
fn addresses() {
    let text =
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever
7: veth1    inet 10.250.3.1/30 scope global veth1\\       valid_lft forever
9: cst1    inet 10.42.0.1/24 scope global cst1\\       valid_lft forever
10: cst2    inet 10.42.1.1/24 scope global cst2\\       valid_lft forever
11: x    inet 10.9.9.9/32 scope global x\\       valid_lft forever
";
    let (ips, nets) = parse_addrs(text, &cidr("10.42.0.0/16"));
    let want: Vec<Ipv4Addr> = [
        "127.0.0.1",
        "192.0.2.2",
        "10.250.3.1",
        "10.42.0.1",
        "10.42.1.1",
        "10.9.9.9",
    ]
    .iter()
    .map(|s| ip(s))
    .collect();
    assert_eq!(ips, want);
    assert_eq!(nets, vec![cidr("192.0.2.0/24"), cidr("10.250.3.0/30")]);
}

#[test]
fn installed_routes() {
    let text = "10.42.1.0/24 via 10.250.3.2 dev veth1 proto 143
10.42.2.0/24 via 10.250.3.6 dev veth2 proto 143 linkdown
10.42.4.0/24 via 10.42.4.0 dev cst1-vx proto 143 onlink
10.99.0.0/24 via 10.250.3.2 dev veth1 proto 143
10.42.3.0/24 dev cst1 proto 143 scope link
garbage
";
    let got = parse_routes(text, &cidr("10.42.0.0/16"));
    let hop = |via: &str, dev: Option<&str>| Hop {
        via: ip(via),
        dev: dev.map(String::from),
    };
    let want: BTreeMap<String, Hop> = [
        ("10.42.1.0/24".to_string(), hop("10.250.3.2", None)),
        ("10.42.2.0/24".to_string(), hop("10.250.3.6", None)),
        (
            "10.42.4.0/24".to_string(),
            hop("10.42.4.0", Some("cst1-vx")),
        ),
    ]
    .into();
    assert_eq!(got, want);
}

#[test]
fn diffs() {
    let m = |v: &[(&str, &str)]| -> BTreeMap<String, Hop> {
        v.iter()
            .map(|(d, g)| {
                let (via, dev) = g.split_once('@').map_or((*g, None), |(v, d)| (v, Some(d)));
                let hop = Hop {
                    via: ip(via),
                    dev: dev.map(String::from),
                };
                (d.to_string(), hop)
            })
            .collect()
    };
    let hop = |via: &str, dev: Option<&str>| Hop {
        via: ip(via),
        dev: dev.map(String::from),
    };
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        Vec<Change>,
    );
    let cases: Vec<Case> = vec![
        (&[], &[], vec![]),
        (
            &[("10.42.1.0/24", "10.0.0.2")],
            &[("10.42.1.0/24", "10.0.0.2")],
            vec![],
        ),
        (
            &[("10.42.1.0/24", "10.0.0.2")],
            &[],
            vec![Change::Replace {
                dst: "10.42.1.0/24".into(),
                hop: hop("10.0.0.2", None),
            }],
        ),
        (
            &[("10.42.1.0/24", "10.42.1.0@vx")],
            &[("10.42.1.0/24", "10.0.0.2")],
            vec![Change::Replace {
                dst: "10.42.1.0/24".into(),
                hop: hop("10.42.1.0", Some("vx")),
            }],
        ),
        (
            &[("10.42.1.0/24", "10.0.0.3")],
            &[("10.42.1.0/24", "10.0.0.2"), ("10.42.2.0/24", "10.0.0.4")],
            vec![
                Change::Delete {
                    dst: "10.42.2.0/24".into(),
                },
                Change::Replace {
                    dst: "10.42.1.0/24".into(),
                    hop: hop("10.0.0.3", None),
                },
            ],
        ),
    ];
    for (desired, current, want) in cases {
        assert_eq!(
            diff(&m(desired), &m(current)),
            want,
            "{desired:?} {current:?}"
        );
    }
}

#[test]
fn change_arguments() {
    let r = Change::Replace {
        dst: "10.42.1.0/24".into(),
        hop: Hop {
            via: ip("10.0.0.2"),
            dev: None,
        },
    };
    assert_eq!(
        r.args().join(" "),
        "route replace 10.42.1.0/24 via 10.0.0.2 proto 143"
    );
    let t = Change::Replace {
        dst: "10.42.1.0/24".into(),
        hop: Hop {
            via: ip("10.42.1.0"),
            dev: Some("cst1-vx".into()),
        },
    };
    assert_eq!(
        t.args().join(" "),
        "route replace 10.42.1.0/24 via 10.42.1.0 dev cst1-vx onlink proto 143"
    );
    let d = Change::Delete {
        dst: "10.42.1.0/24".into(),
    };
    assert_eq!(d.args().join(" "), "route del 10.42.1.0/24 proto 143");
}

#[test]
fn masquerade() {
    let s = masquerade_script("capstan-net", &cidr("10.42.0.0/16"));
    assert_eq!(
        s,
        "table ip capstan-net {}\ndelete table ip capstan-net\ntable ip capstan-net {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.42.0.0/16 ip daddr != { 10.42.0.0/16, 224.0.0.0/4 } masquerade\n\t}\n}\n"
    );
    // nft accepts it (checked only, nothing applied) where nft runs as root.
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|st| {
        st.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if root
        && std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_ok()
    {
        use std::io::Write;
        let mut c = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn relevant_fields() {
    let a = node("b", Some("10.42.1.0/24"), Some("192.168.7.2"));
    let mut heartbeat = a.clone();
    heartbeat["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(relevant(std::slice::from_ref(&a)), relevant(&[heartbeat]));
    let moved = node("b", Some("10.42.1.0/24"), Some("192.168.7.3"));
    assert_ne!(relevant(std::slice::from_ref(&a)), relevant(&[moved]));
    let recidr = node("b", Some("10.42.2.0/24"), Some("192.168.7.2"));
    assert_ne!(relevant(std::slice::from_ref(&a)), relevant(&[recidr]));
    let tunnel = tunnel_node("b", "10.42.1.0/24", "192.168.7.2", "aa:bb:cc:00:11:22");
    assert_ne!(relevant(std::slice::from_ref(&a)), relevant(&[tunnel]));
    assert_ne!(relevant(&[a]), relevant(&[]));
}

#[test]
fn tunnels_to_peers_off_the_connected_subnets() {
    let cluster = cidr("10.42.0.0/16");
    let nodes = vec![
        tunnel_node("b", "10.42.1.0/24", "172.16.0.9", "AA:bb:cc:00:11:22"),
        tunnel_node("c", "10.42.2.0/24", "192.168.7.3", "aa:bb:cc:00:11:33"),
        tunnel_node("d", "10.42.3.0/24", "172.16.0.10", "not-a-mac"),
        tunnel_node("e", "10.42.1.0/24", "172.16.0.11", "aa:bb:cc:00:11:44"),
    ];
    let got = plan(&nodes, &local(), &cluster);
    assert!(got.wants_vxlan);
    let want: BTreeMap<String, Tunnel> = [(
        "10.42.1.0/24".to_string(),
        Tunnel {
            node_ip: ip("172.16.0.9"),
            mac: "aa:bb:cc:00:11:22".into(),
            gateway: ip("10.42.1.0"),
        },
    )]
    .into();
    assert_eq!(got.tunnels, want);
    // A connected peer keeps its host-gateway route even with a MAC published.
    assert_eq!(
        got.routes,
        [("10.42.2.0/24".to_string(), ip("192.168.7.3"))].into()
    );
    assert_eq!(
        got.skipped,
        vec![
            ("d".to_string(), Skip::NotConnected(ip("172.16.0.10"))),
            ("e".to_string(), Skip::Overlaps("10.42.1.0/24".into())),
        ]
    );
    let routes = desired(&got, "cst1-vx");
    assert_eq!(
        routes["10.42.1.0/24"],
        Hop {
            via: ip("10.42.1.0"),
            dev: Some("cst1-vx".into())
        }
    );
    assert_eq!(routes["10.42.2.0/24"].dev, None);
    let calls: Vec<String> = tunnel_calls("cst1-vx", &got.tunnels["10.42.1.0/24"])
        .iter()
        .map(|(bin, args)| format!("{bin} {}", args.join(" ")))
        .collect();
    assert_eq!(
        calls,
        [
            "ip neigh replace 10.42.1.0 lladdr aa:bb:cc:00:11:22 dev cst1-vx nud permanent",
            "bridge fdb replace aa:bb:cc:00:11:22 dev cst1-vx dst 172.16.0.9 self permanent",
        ]
    );
}

#[test]
fn vxlan_names_and_macs() {
    assert_eq!(vxlan_device("capstan0"), "capstan0-vx");
    assert_eq!(vxlan_device("cst12345b"), "cst12345b-vx");
    assert_eq!(vxlan_device("abcdefghijklmno").len(), 15);
    let link = "12: cst1-vx: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/ether 3e:5f:0a:1b:2c:3d brd ff:ff:ff:ff:ff:ff";
    assert_eq!(parse_mac(link).as_deref(), Some("3e:5f:0a:1b:2c:3d"));
    assert_eq!(parse_mac("12: x: <UP> mtu 1500"), None);
    assert_eq!(
        normal_mac("3E:5F:0A:1B:2C:3D").as_deref(),
        Some("3e:5f:0a:1b:2c:3d")
    );
    assert_eq!(normal_mac("3e:5f:0a:1b:2c"), None);
    assert_eq!(normal_mac("3e:5f:0a:1b:2c:zz"), None);
}
