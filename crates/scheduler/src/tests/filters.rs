//! The per-node filters: node affinity operators, nodeSelector, taints and tolerations,
//! cordon and readiness, node name, host ports, resources.

use super::*;

fn affinity(exprs: Value) -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": exprs}}})
}

const NO_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";

#[test]
fn node_affinity_operators() {
    let n = N::new("n1")
        .label("zone", "a")
        .label("cores", "8")
        .label("ssd", "");
    let e = |key: &str, op: &str, values: Value| json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]);
    let cases: Vec<(&str, Value, bool)> = vec![
        ("In match", e("zone", "In", json!(["a", "b"])), true),
        ("In miss", e("zone", "In", json!(["b"])), false),
        ("In absent label", e("rack", "In", json!(["a"])), false),
        ("NotIn match", e("zone", "NotIn", json!(["b"])), true),
        ("NotIn miss", e("zone", "NotIn", json!(["a"])), false),
        ("NotIn absent label", e("rack", "NotIn", json!(["a"])), true),
        ("Exists", e("ssd", "Exists", json!(null)), true),
        ("Exists absent", e("rack", "Exists", json!(null)), false),
        ("DoesNotExist", e("rack", "DoesNotExist", json!(null)), true),
        (
            "DoesNotExist present",
            e("zone", "DoesNotExist", json!(null)),
            false,
        ),
        ("Gt", e("cores", "Gt", json!(["4"])), true),
        ("Gt equal", e("cores", "Gt", json!(["8"])), false),
        ("Lt", e("cores", "Lt", json!(["16"])), true),
        ("Lt miss", e("cores", "Lt", json!(["8"])), false),
        ("Gt not a number", e("zone", "Gt", json!(["1"])), false),
        ("Gt bad bound", e("cores", "Gt", json!(["x"])), false),
        (
            "In without values is invalid",
            e("zone", "In", json!([])),
            false,
        ),
        (
            "expressions ANDed",
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "cores", "operator": "Gt", "values": ["9"]}]}]),
            false,
        ),
        (
            "terms ORed",
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}, {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]),
            true,
        ),
        ("empty term selects nothing", json!([{}]), false),
        ("no terms", json!([]), false),
        (
            "matchFields metadata.name In",
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]),
            true,
        ),
        (
            "matchFields metadata.name NotIn",
            json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]),
            false,
        ),
        (
            "matchFields with two values is invalid",
            json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["x", "y"]}]}]),
            false,
        ),
    ];
    for (name, terms, ok) in cases {
        let p = P::new("p").spec("affinity", affinity(terms));
        let want = if ok {
            Ok(())
        } else {
            Err(NO_AFFINITY.to_string())
        };
        assert_eq!(filter_one(&n, &p), want, "{name}");
    }
}

#[test]
fn node_selector_and_affinity_both_required() {
    let n = N::new("n1").label("zone", "a").label("disk", "ssd");
    let aff = |zone: &str| {
        affinity(
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": [zone]}]}]),
        )
    };
    let cases = [
        ("both match", json!({"disk": "ssd"}), aff("a"), true),
        ("selector misses", json!({"disk": "hdd"}), aff("a"), false),
        ("affinity misses", json!({"disk": "ssd"}), aff("b"), false),
        (
            "selector label absent",
            json!({"gpu": "yes"}),
            aff("a"),
            false,
        ),
        ("empty selector", json!({}), aff("a"), true),
    ];
    for (name, sel, aff, ok) in cases {
        let p = P::new("p").spec("nodeSelector", sel).spec("affinity", aff);
        let want = if ok {
            Ok(())
        } else {
            Err(NO_AFFINITY.to_string())
        };
        assert_eq!(filter_one(&n, &p), want, "{name}");
    }
}

#[test]
fn taints_and_tolerations() {
    let untolerated = |k: &str, v: &str| Err(format!("node(s) had untolerated taint {{{k}: {v}}}"));
    let tol = |t: Value| P::new("p").spec("tolerations", t);
    let gpu = N::new("n").taint("gpu", "yes", "NoSchedule");
    let exec = N::new("n").taint("dedicated", "db", "NoExecute");
    let soft = N::new("n").taint("spot", "true", "PreferNoSchedule");
    let cordoned = N::new("n").unschedulable();
    let not_ready = N::new("n").ready("False");
    let unreachable = N::new("n").ready("Unknown");
    let plain = N::new("n");
    let cases: Vec<(&str, &N, P, Result<(), String>)> = vec![
        ("NoSchedule", &gpu, P::new("p"), untolerated("gpu", "yes")),
        (
            "NoExecute",
            &exec,
            P::new("p"),
            untolerated("dedicated", "db"),
        ),
        ("PreferNoSchedule only scores", &soft, P::new("p"), Ok(())),
        (
            "Equal",
            &gpu,
            tol(
                json!([{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]),
            ),
            Ok(()),
        ),
        (
            "operator defaults to Equal",
            &gpu,
            tol(json!([{"key": "gpu", "value": "yes"}])),
            Ok(()),
        ),
        (
            "Equal wrong value",
            &gpu,
            tol(json!([{"key": "gpu", "operator": "Equal", "value": "no"}])),
            untolerated("gpu", "yes"),
        ),
        (
            "Exists on the key",
            &gpu,
            tol(json!([{"key": "gpu", "operator": "Exists"}])),
            Ok(()),
        ),
        (
            "Exists other key",
            &gpu,
            tol(json!([{"key": "cpu", "operator": "Exists"}])),
            untolerated("gpu", "yes"),
        ),
        (
            "empty key with Exists tolerates all",
            &gpu,
            tol(json!([{"operator": "Exists"}])),
            Ok(()),
        ),
        (
            "empty effect matches every effect",
            &exec,
            tol(json!([{"key": "dedicated", "operator": "Exists"}])),
            Ok(()),
        ),
        (
            "other effect",
            &exec,
            tol(json!([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}])),
            untolerated("dedicated", "db"),
        ),
        (
            "unknown operator",
            &gpu,
            tol(json!([{"key": "gpu", "operator": "Like", "value": "yes"}])),
            untolerated("gpu", "yes"),
        ),
        (
            "cordoned",
            &cordoned,
            P::new("p"),
            Err("node(s) were unschedulable".into()),
        ),
        (
            "cordon tolerated",
            &cordoned,
            tol(
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
            ),
            Ok(()),
        ),
        (
            "not ready",
            &not_ready,
            P::new("p"),
            untolerated("node.kubernetes.io/not-ready", ""),
        ),
        (
            "unreachable",
            &unreachable,
            P::new("p"),
            untolerated("node.kubernetes.io/unreachable", ""),
        ),
        (
            "not ready tolerated",
            &not_ready,
            tol(json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])),
            Ok(()),
        ),
        (
            "NoExecute toleration does not tolerate not-ready NoSchedule",
            &not_ready,
            tol(
                json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
            ),
            untolerated("node.kubernetes.io/not-ready", ""),
        ),
        (
            "node name",
            &plain,
            P::new("p").spec("nodeName", json!("x")),
            Err("node(s) didn't match the requested node name".into()),
        ),
        (
            "node name matches",
            &plain,
            P::new("p").spec("nodeName", json!("n")),
            Ok(()),
        ),
    ];
    for (name, n, p, want) in cases {
        assert_eq!(filter_one(n, &p), want, "{name}");
    }
}

#[test]
fn host_ports() {
    const BUSY: &str = "node(s) didn't have free ports for the requested pod ports";
    let port = |port: i32, proto: Option<&str>, ip: Option<&str>| {
        let mut p = json!({"containerPort": 80, "hostPort": port});
        if let Some(proto) = proto {
            p["protocol"] = json!(proto);
        }
        if let Some(ip) = ip {
            p["hostIP"] = json!(ip);
        }
        P::new("p").spec("containers/0/ports", json!([p]))
    };
    let cases = [
        (
            "same port, no IPs",
            (8080, None, None),
            (8080, None, None),
            false,
        ),
        ("other port", (8080, None, None), (8081, None, None), true),
        (
            "UDP vs TCP",
            (8080, Some("UDP"), None),
            (8080, Some("TCP"), None),
            true,
        ),
        (
            "TCP default equals TCP",
            (8080, Some("TCP"), None),
            (8080, None, None),
            false,
        ),
        (
            "different specific IPs",
            (8080, None, Some("10.0.0.1")),
            (8080, None, Some("10.0.0.2")),
            true,
        ),
        (
            "same specific IP",
            (8080, None, Some("10.0.0.1")),
            (8080, None, Some("10.0.0.1")),
            false,
        ),
        (
            "0.0.0.0 taken, specific wanted",
            (8080, None, Some("0.0.0.0")),
            (8080, None, Some("10.0.0.1")),
            false,
        ),
        (
            "specific taken, 0.0.0.0 wanted",
            (8080, None, Some("10.0.0.1")),
            (8080, None, None),
            false,
        ),
        (
            "SCTP",
            (8080, Some("SCTP"), None),
            (8080, Some("SCTP"), None),
            false,
        ),
    ];
    for (name, used, want, ok) in cases {
        let s = snap(
            &[N::new("n")],
            &[("n", &port(used.0, used.1, used.2).meta("uid", json!("old")))],
        );
        let p = port(want.0, want.1, want.2);
        let expect = if ok { Ok(()) } else { Err(BUSY.to_string()) };
        assert_eq!(filter_on(&s, &p, "n"), expect, "{name}");
    }
    // A sidecar's port counts; a port of a removed pod is free again.
    let sidecar = P::new("s").spec(
        "initContainers",
        json!([{"name": "s", "restartPolicy": "Always", "ports": [{"containerPort": 1, "hostPort": 9000}]}]),
    );
    let mut s = snap(&[N::new("n")], &[("n", &sidecar)]);
    let want = P::new("p").spec(
        "containers/0/ports",
        json!([{"containerPort": 1, "hostPort": 9000}]),
    );
    assert_eq!(filter_on(&s, &want, "n"), Err(BUSY.to_string()));
    s.remove_pod("s");
    assert_eq!(filter_on(&s, &want, "n"), Ok(()));
}

#[test]
fn requests_count_init_sidecars_and_overhead() {
    let p = P::new("p")
        .spec(
            "initContainers",
            json!([
                {"name": "i", "resources": {"requests": {"cpu": "2"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}}
            ]),
        )
        .spec(
            "containers",
            json!([{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}, {"name": "b", "resources": {"requests": {"cpu": "250m"}}}]),
        )
        .spec("overhead", json!({"cpu": "10m"}));
    let r = pod_requests(&p.pod());
    // max(2000 (init, before the sidecar), 500+250+100) + 10 overhead
    assert_eq!(r["cpu"], 2010);
    assert_eq!(r["memory"], (64 << 20) + (1 << 20));
    assert_eq!(r["pods"], 1);
    // An init container after a sidecar runs next to it.
    let p = P::new("p").spec(
        "initContainers",
        json!([
            {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
            {"name": "i", "resources": {"requests": {"cpu": "2"}}}
        ]),
    );
    assert_eq!(pod_requests(&p.pod())["cpu"], 3000);
}

#[test]
fn resources() {
    let n = N::new("n")
        .alloc("cpu", "1")
        .alloc("memory", "1Gi")
        .alloc("pods", "2")
        .alloc("example.com/dongle", "1")
        .alloc("ephemeral-storage", "10Gi");
    let used = P::new("used").cpu("600m").req("memory", "512Mi");
    let s = snap(std::slice::from_ref(&n), &[("n", &used)]);
    let init = |cpu: &str| {
        P::new("p").spec(
            "initContainers",
            json!([{"name": "i", "resources": {"requests": {"cpu": cpu}}}]),
        )
    };
    let cases: Vec<(&str, P, Result<(), &str>)> = vec![
        ("fits", P::new("p").cpu("400m"), Ok(())),
        ("cpu", P::new("p").cpu("401m"), Err("Insufficient cpu")),
        ("memory", P::new("p").req("memory", "513Mi"), Err("Insufficient memory")),
        ("both, each a reason", P::new("p").cpu("1").req("memory", "1Gi"), Err("Insufficient cpu, Insufficient memory")),
        ("init container", init("500m"), Err("Insufficient cpu")),
        ("init container fits", init("400m"), Ok(())),
        (
            "sidecar adds to the containers",
            P::new("p").cpu("300m").spec("initContainers", json!([{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}}])),
            Err("Insufficient cpu"),
        ),
        ("overhead", P::new("p").cpu("350m").spec("overhead", json!({"cpu": "100m"})), Err("Insufficient cpu")),
        ("extended", P::new("p").req("example.com/dongle", "1"), Ok(())),
        ("extended too many", P::new("p").req("example.com/dongle", "2"), Err("Insufficient example.com/dongle")),
        ("extended absent", P::new("p").req("example.com/other", "1"), Err("Insufficient example.com/other")),
        ("hugepages", P::new("p").req("hugepages-2Mi", "2Mi"), Err("Insufficient hugepages-2Mi")),
        ("ephemeral-storage", P::new("p").req("ephemeral-storage", "11Gi"), Err("Insufficient ephemeral-storage")),
        ("no requests", P::new("p"), Ok(())),
    ];
    for (name, p, want) in cases {
        assert_eq!(filter_on(&s, &p, "n"), want.map_err(String::from), "{name}");
    }
    // Too many pods (2 allowed, 2 there), listed first, with the others.
    let full = snap(&[n], &[("n", &used), ("n", &P::new("other"))]);
    assert_eq!(
        filter_on(&full, &P::new("p"), "n"),
        Err("Too many pods".into())
    );
    assert_eq!(
        filter_on(&full, &P::new("p").cpu("1"), "n"),
        Err("Too many pods, Insufficient cpu".into())
    );
}

#[test]
fn ignored_extended_resources() {
    let s = snap(&[N::new("n")], &[]);
    let p = P::new("p").req("example.com/dongle", "1").info();
    let mut profile = Profile::default();
    assert!(schedule(&p, &s, &profile, 0).is_err());
    profile.ignored_resource_groups.insert("example.com".into());
    assert_eq!(schedule(&p, &s, &profile, 0).unwrap().node, "n");
}

#[test]
fn filter_order_is_kubes() {
    // Cordoned and tainted and mismatched: the first failing filter (NodeUnschedulable) wins.
    let n = N::new("n").unschedulable().taint("a", "b", "NoSchedule");
    let p = P::new("p")
        .spec("nodeSelector", json!({"x": "y"}))
        .spec("nodeName", json!("m"));
    assert_eq!(filter_one(&n, &p), Err("node(s) were unschedulable".into()));
    let n = N::new("n").taint("a", "b", "NoSchedule");
    assert_eq!(
        filter_one(&n, &p),
        Err("node(s) didn't match the requested node name".into())
    );
}
