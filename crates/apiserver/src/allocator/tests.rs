use super::*;
use serde_json::json;

fn alloc() -> Allocator {
    Allocator::new(Cidr::parse("10.43.0.0/16").unwrap(), (30000, 32767))
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn err(r: ApiResult<Ticket>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.message,
    }
}

#[test]
fn cluster_ips_explicit_dynamic_and_refused() {
    let a = alloc();
    let mut s1 = svc(
        "a",
        json!({"type": "ClusterIP", "clusterIP": "10.43.0.5", "ports": [{"port": 80}]}),
    );
    a.allocate(&mut s1).unwrap().commit();
    assert_eq!(s1["spec"]["clusterIPs"], json!(["10.43.0.5"]));
    assert_eq!(s1["spec"]["ipFamilies"], json!(["IPv4"]));
    let cases = [
        ("10.43.0.5", "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.5\"}: failed to allocate IP 10.43.0.5: provided IP is already allocated"),
        ("10.44.0.5", "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.44.0.5\"}: failed to allocate IP 10.44.0.5: the provided IP (10.44.0.5) is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
        ("10.43.0.0", "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.0\"}: failed to allocate IP 10.43.0.0: the provided IP (10.43.0.0) is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
    ];
    for (ip, want) in cases {
        let mut s = svc("b", json!({"type": "ClusterIP", "clusterIP": ip}));
        assert_eq!(err(a.allocate(&mut s)), want);
    }
    // Dynamic IPs stay above kube's static band (the first 256), so .1 and .10 stay free.
    for i in 0..200 {
        let mut s = svc(&format!("d{i}"), json!({"type": "ClusterIP"}));
        a.allocate(&mut s).unwrap().commit();
        let ip: Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(a.service_cidr.offset(ip).unwrap() > 256, "{ip}");
    }
    // Headless and ExternalName take nothing.
    let before = a.table.lock().unwrap().used.len();
    let mut h = svc("h", json!({"type": "ClusterIP", "clusterIP": "None"}));
    a.allocate(&mut h).unwrap().commit();
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    let mut e = svc(
        "e",
        json!({"type": "ExternalName", "externalName": "x.example.com"}),
    );
    a.allocate(&mut e).unwrap().commit();
    assert!(e["spec"].get("clusterIP").is_none());
    assert_eq!(a.table.lock().unwrap().used.len(), before);
}

#[test]
fn a_dropped_ticket_releases_and_a_committed_one_keeps() {
    let a = alloc();
    let mut s = svc(
        "a",
        json!({"type": "NodePort", "clusterIP": "10.43.0.9", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    drop(a.allocate(&mut s).unwrap());
    assert!(!a.is_used(Item::Ip("10.43.0.9".parse().unwrap())));
    assert!(!a.is_used(Item::Port(30080)));
    let t = a.allocate(&mut s).unwrap();
    // Held while in flight.
    let mut s2 = svc(
        "b",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(
        err(a.allocate(&mut s2)),
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    t.commit();
    assert!(a.is_used(Item::Port(30080)));
    a.release(&s);
    assert!(!a.is_used(Item::Port(30080)));
    assert!(!a.is_used(Item::Ip("10.43.0.9".parse().unwrap())));
}

#[test]
fn node_ports_and_health_check() {
    let a = alloc();
    let mut s = svc(
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
        "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30001}]}),
    );
    a.allocate(&mut s).unwrap().commit();
    let np0 = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let hc = s["spec"]["healthCheckNodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&np0) && np0 != 30001);
    assert!((30000..=32767).contains(&hc) && hc != np0 && hc != 30001);
    let cases = [
        (json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
         "Service \"x\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        (json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30500}, {"name": "b", "port": 81, "nodePort": 30001}]}),
         "Service \"x\" is invalid: spec.ports[1].nodePort: Invalid value: 30001: provided port is already allocated"),
        (json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": hc, "ports": [{"port": 80}]}),
         &*format!("Service \"x\" is invalid: spec.healthCheckNodePort: Invalid value: {hc}: failed to allocate requested HealthCheck NodePort {hc}: provided port is already allocated")),
    ];
    for (spec, want) in cases {
        assert_eq!(err(a.allocate(&mut svc("x", spec))), want);
    }
    // allocateLoadBalancerNodePorts false: none allocated.
    let mut n = svc(
        "n",
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    );
    a.allocate(&mut n).unwrap().commit();
    assert!(n["spec"]["ports"][0].get("nodePort").is_none());
}

#[test]
fn type_changes_release_and_allocate() {
    let a = alloc();
    let mut old = svc(
        "s",
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}),
    );
    a.allocate(&mut old).unwrap().commit();
    let ip: Ipv4Addr = old["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    let np = old["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
    // A replace without the allocated values keeps them.
    let mut same = svc(
        "s",
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 8080}]}),
    );
    patch_allocated_values(&old, &mut same);
    a.update(&old, &mut same).unwrap().commit();
    assert_eq!(same["spec"]["clusterIP"], old["spec"]["clusterIP"]);
    assert_eq!(same["spec"]["ports"][0]["nodePort"], json!(np));
    // NodePort → ClusterIP releases the node port.
    let mut cip = old.clone();
    cip["spec"]["type"] = json!("ClusterIP");
    patch_allocated_values(&old, &mut cip);
    assert!(cip["spec"]["ports"][0].get("nodePort").is_none());
    let t = a.update(&old, &mut cip).unwrap();
    assert!(a.is_used(Item::Port(np)), "held until the write is stored");
    t.commit();
    assert!(!a.is_used(Item::Port(np)));
    // ClusterIP → ExternalName releases the IP.
    let mut en = cip.clone();
    en["spec"]["type"] = json!("ExternalName");
    en["spec"]["externalName"] = json!("example.com");
    patch_allocated_values(&cip, &mut en);
    assert!(en["spec"].get("clusterIP").is_none());
    a.update(&cip, &mut en).unwrap().commit();
    assert!(!a.is_used(Item::Ip(ip)));
    // ExternalName → ClusterIP allocates a new one.
    let mut back = svc("s", json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
    patch_allocated_values(&en, &mut back);
    a.update(&en, &mut back).unwrap().commit();
    let ip2: Ipv4Addr = back["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert!(a.is_used(Item::Ip(ip2)));
    // Changing the IP is refused.
    let mut moved = back.clone();
    moved["spec"]["clusterIP"] = json!("10.43.7.7");
    moved["spec"]["clusterIPs"] = json!(["10.43.7.7"]);
    assert!(err(a.update(&back, &mut moved)).contains("may not change once set"));
}

#[test]
fn items_of_a_service() {
    let s = svc(
        "s",
        json!({"clusterIPs": ["10.43.0.3"], "ports": [{"nodePort": 30003}, {"port": 1}], "healthCheckNodePort": 30004}),
    );
    assert_eq!(
        items_of(&s),
        vec![
            Item::Ip("10.43.0.3".parse().unwrap()),
            Item::Port(30003),
            Item::Port(30004)
        ]
    );
}
