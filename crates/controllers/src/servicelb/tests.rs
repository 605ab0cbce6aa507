use super::*;
use serde_json::json;

fn svc(name: &str, ty: &str, created: &str, status_ip: Option<&str>) -> Value {
    let mut s = json!({"metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
        "spec": {"type": ty, "ports": [{"port": 80}]}, "status": {"loadBalancer": {}}});
    if let Some(ip) = status_ip {
        s["status"] = ingress_status(ip.parse().unwrap());
    }
    s
}

fn pool(c: &str) -> Pool {
    Pool::new(Cidr::parse(c).unwrap())
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn assigns_lowest_free_never_twice_and_reports_exhaustion() {
    // A /30 has two usable addresses.
    let mut p = pool("172.29.0.0/30");
    let t = "2024-01-01T00:00:00Z";
    let a = svc("a", "LoadBalancer", t, None);
    let b = svc("b", "LoadBalancer", t, None);
    let c = svc("c", "LoadBalancer", t, None);
    assert_eq!(
        p.sync("d/a", Some(&a)),
        Action::Set {
            ip: ip("172.29.0.1"),
            new: true
        }
    );
    assert_eq!(
        p.sync("d/b", Some(&b)),
        Action::Set {
            ip: ip("172.29.0.2"),
            new: true
        }
    );
    assert_eq!(
        p.sync("d/c", Some(&c)),
        Action::Failed("Error syncing load balancer: failed to ensure load balancer: no address left in the ingress IP pool 172.29.0.0/30 (2 in use)".into())
    );
    // Written status: nothing more to do; a status someone changed is written again.
    let a_done = svc("a", "LoadBalancer", t, Some("172.29.0.1"));
    assert_eq!(p.sync("d/a", Some(&a_done)), Action::Nothing);
    assert_eq!(
        p.sync("d/a", Some(&a)),
        Action::Set {
            ip: ip("172.29.0.1"),
            new: false
        }
    );
    // Deleting a frees its address for c.
    assert_eq!(p.sync("d/a", None), Action::Nothing);
    assert_eq!(
        p.sync("d/c", Some(&c)),
        Action::Set {
            ip: ip("172.29.0.1"),
            new: true
        }
    );
}

#[test]
fn type_change_clears_and_releases() {
    let mut p = pool("172.29.0.0/16");
    let t = "2024-01-01T00:00:00Z";
    let lb = svc("a", "LoadBalancer", t, None);
    assert!(matches!(p.sync("d/a", Some(&lb)), Action::Set { .. }));
    let mut cip = svc("a", "ClusterIP", t, Some("172.29.0.1"));
    assert_eq!(p.sync("d/a", Some(&cip)), Action::Clear);
    assert_eq!(p.held("d/a"), None);
    cip["status"] = json!({"loadBalancer": {}});
    assert_eq!(p.sync("d/a", Some(&cip)), Action::Nothing);
    // Another class's LoadBalancer is left alone, status included.
    let mut other = svc("o", "LoadBalancer", t, Some("172.29.0.9"));
    other["spec"]["loadBalancerClass"] = json!("example.com/lb");
    assert_eq!(p.sync("d/o", Some(&other)), Action::Nothing);
    // Being deleted: released.
    let mut gone = svc("g", "LoadBalancer", t, None);
    assert!(matches!(p.sync("d/g", Some(&gone)), Action::Set { .. }));
    gone["metadata"]["deletionTimestamp"] = json!(t);
    p.sync("d/g", Some(&gone));
    assert_eq!(p.held("d/g"), None);
}

#[test]
fn rebuild_keeps_assignments_and_settles_doubles_by_age() {
    let mut p = pool("172.29.0.0/16");
    let services = vec![
        svc(
            "young",
            "LoadBalancer",
            "2024-02-01T00:00:00Z",
            Some("172.29.0.5"),
        ),
        svc(
            "old",
            "LoadBalancer",
            "2024-01-01T00:00:00Z",
            Some("172.29.0.5"),
        ),
        svc(
            "other",
            "LoadBalancer",
            "2024-01-01T00:00:00Z",
            Some("172.29.0.6"),
        ),
        svc(
            "outside",
            "LoadBalancer",
            "2024-01-01T00:00:00Z",
            Some("10.0.0.1"),
        ),
        svc(
            "cip",
            "ClusterIP",
            "2024-01-01T00:00:00Z",
            Some("172.29.0.7"),
        ),
    ];
    p.rebuild(&services);
    assert_eq!(p.held("d/old"), Some(ip("172.29.0.5")));
    assert_eq!(p.held("d/other"), Some(ip("172.29.0.6")));
    assert_eq!(p.held("d/young"), None);
    assert_eq!(p.in_use(), 2);
    assert_eq!(p.sync("d/old", Some(&services[1])), Action::Nothing);
    // The younger double gets the lowest free address instead.
    assert_eq!(
        p.sync("d/young", Some(&services[0])),
        Action::Set {
            ip: ip("172.29.0.1"),
            new: true
        }
    );
    assert_eq!(
        p.sync("d/outside", Some(&services[3])),
        Action::Set {
            ip: ip("172.29.0.2"),
            new: true
        }
    );
}

#[test]
fn requested_load_balancer_ip() {
    let mut p = pool("172.29.0.0/16");
    let t = "2024-01-01T00:00:00Z";
    let mut a = svc("a", "LoadBalancer", t, None);
    a["spec"]["loadBalancerIP"] = json!("172.29.3.3");
    assert_eq!(
        p.sync("d/a", Some(&a)),
        Action::Set {
            ip: ip("172.29.3.3"),
            new: true
        }
    );
    let cases = [
        (
            "172.29.3.3",
            "requested loadBalancerIP 172.29.3.3 is in use by service d/a",
        ),
        (
            "10.1.1.1",
            "requested loadBalancerIP 10.1.1.1 is not in the ingress IP pool 172.29.0.0/16",
        ),
        (
            "nope",
            "requested loadBalancerIP \"nope\" is not an IPv4 address",
        ),
    ];
    for (req, why) in cases {
        let mut b = svc("b", "LoadBalancer", t, None);
        b["spec"]["loadBalancerIP"] = json!(req);
        assert_eq!(
            p.sync("d/b", Some(&b)),
            Action::Failed(format!(
                "Error syncing load balancer: failed to ensure load balancer: {why}"
            ))
        );
    }
}
