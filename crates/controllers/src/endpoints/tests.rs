use super::*;
use serde_json::json;

fn svc(ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "d", "uid": "s-1", "labels": {"team": "a"},
            "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.10", "ipFamilies": ["IPv4"],
            "ports": ports}})
}

fn http() -> Value {
    json!([{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
}

/// A running pod `n` with IP `ip`, Ready as given, container port http=8080.
fn pod(n: &str, ip: &str, ready: bool) -> Value {
    json!({"metadata": {"name": n, "namespace": "d", "uid": format!("u-{n}"),
            "labels": {"app": "web"}, "resourceVersion": "1"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": "2025-01-01T00:01:00Z"}]}})
}

fn ips(subset: &Value, field: &str) -> Vec<String> {
    subset[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["ip"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn ports(subset: &Value) -> Vec<(String, i64)> {
    subset["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["port"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// (ready ips, not-ready ips, ports) per subset.
type Shape = Vec<(Vec<String>, Vec<String>, Vec<(String, i64)>)>;

fn shape(subsets: &[Value]) -> Shape {
    subsets
        .iter()
        .map(|s| (ips(s, "addresses"), ips(s, "notReadyAddresses"), ports(s)))
        .collect()
}

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn subsets_table() {
    let mut terminating = pod("t", "10.0.0.4", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:05:00Z");
    let mut done = pod("s", "10.0.0.5", false);
    done["status"]["phase"] = json!("Succeeded");
    let mut no_ip = pod("x", "", false);
    no_ip["status"]["podIPs"] = json!([]);
    let mut no_named = pod("b", "10.0.0.6", true);
    no_named["spec"]["containers"][0]["ports"] = json!([]);
    let mut udp_named = pod("c", "10.0.0.7", true);
    udp_named["spec"]["containers"][0]["ports"][0]["protocol"] = json!("UDP");
    let mut sidecar = pod("e", "10.0.0.8", true);
    sidecar["spec"]["containers"][0]["ports"] = json!([]);
    sidecar["spec"]["initContainers"] = json!([{"name": "s", "restartPolicy": "Always",
        "ports": [{"name": "http", "containerPort": 9090}]}]);
    let named = json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]);
    let two = json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}]);
    let mut publish = svc(http());
    publish["spec"]["publishNotReadyAddresses"] = json!(true);
    let mut headless = svc(json!([]));
    headless["spec"]["clusterIP"] = json!("None");
    struct Case {
        what: &'static str,
        svc: Value,
        pods: Vec<Value>,
        want: Shape,
    }
    let cases = vec![
        Case {
            what: "ready and not ready split, one subset",
            svc: svc(http()),
            pods: vec![
                pod("a", "10.0.0.2", true),
                pod("b", "10.0.0.1", true),
                pod("c", "10.0.0.3", false),
            ],
            want: vec![(
                v(&["10.0.0.1", "10.0.0.2"]),
                v(&["10.0.0.3"]),
                vec![("http".into(), 8080)],
            )],
        },
        Case {
            what: "terminal, IP-less and terminating pods are left out",
            svc: svc(http()),
            pods: vec![
                pod("a", "10.0.0.2", true),
                terminating.clone(),
                done.clone(),
                no_ip.clone(),
            ],
            want: vec![(v(&["10.0.0.2"]), v(&[]), vec![("http".into(), 8080)])],
        },
        Case {
            what: "publishNotReadyAddresses: every pod ready, terminating kept",
            svc: publish,
            pods: vec![
                pod("a", "10.0.0.2", true),
                pod("c", "10.0.0.3", false),
                terminating,
                done,
            ],
            want: vec![(
                v(&["10.0.0.2", "10.0.0.3", "10.0.0.4"]),
                v(&[]),
                vec![("http".into(), 8080)],
            )],
        },
        Case {
            what: "named targetPort: resolved per pod, pods without it (or of another protocol) left out, sidecars count",
            svc: svc(named.clone()),
            pods: vec![
                pod("a", "10.0.0.2", true),
                no_named.clone(),
                udp_named,
                sidecar,
            ],
            want: vec![
                (v(&["10.0.0.2"]), v(&[]), vec![("http".into(), 8080)]),
                (v(&["10.0.0.8"]), v(&[]), vec![("http".into(), 9090)]),
            ],
        },
        Case {
            what: "two ports: a pod serving only one gets a subset of its own",
            svc: svc(two),
            pods: vec![pod("a", "10.0.0.2", true), no_named],
            want: vec![
                (v(&["10.0.0.2"]), v(&[]), vec![("http".into(), 8080)]),
                (v(&["10.0.0.2", "10.0.0.6"]), v(&[]), vec![("metrics".into(), 9100)]),
            ],
        },
        Case {
            what: "headless without ports: addresses without ports",
            svc: headless,
            pods: vec![pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", false)],
            want: vec![(v(&["10.0.0.2"]), v(&["10.0.0.3"]), vec![])],
        },
        Case {
            what: "no pods: no subsets",
            svc: svc(http()),
            pods: vec![],
            want: vec![],
        },
    ];
    for c in cases {
        let pods: Vec<&Value> = c.pods.iter().collect();
        let mut got = shape(&subsets(&c.svc, &pods));
        let mut want = c.want;
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", c.what);
    }
}

#[test]
fn address_fields_and_hostname() {
    let mut p = pod("web-0", "10.0.0.2", true);
    p["spec"]["hostname"] = json!("web-0");
    p["spec"]["subdomain"] = json!("web");
    let mut other = pod("x-0", "10.0.0.3", true);
    other["spec"]["hostname"] = json!("x-0");
    other["spec"]["subdomain"] = json!("other");
    let s =
        svc(json!([{"port": 80, "targetPort": 8080, "protocol": "TCP", "appProtocol": "http"}]));
    let got = subsets(&s, &[&p, &other]);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["addresses"][0],
        json!({"ip": "10.0.0.2", "nodeName": "n1", "hostname": "web-0",
            "targetRef": {"kind": "Pod", "namespace": "d", "name": "web-0", "uid": "u-web-0"}})
    );
    assert!(
        got[0]["addresses"][1].get("hostname").is_none(),
        "subdomain of another service"
    );
    assert_eq!(
        got[0]["ports"],
        json!([{"port": 8080, "protocol": "TCP", "appProtocol": "http"}]),
        "an unnamed port has no name"
    );
}

#[test]
fn not_ready_trumps_ready_when_repacking() {
    // The same address ready for one port and not for another is not ready for that one.
    let entries = vec![
        (json!({"ip": "10.0.0.1"}), true, Some(json!({"port": 1}))),
        (json!({"ip": "10.0.0.1"}), false, Some(json!({"port": 1}))),
        (json!({"ip": "10.0.0.1"}), true, Some(json!({"port": 2}))),
    ];
    let got = shape(&repack(entries));
    let mut want: Shape = vec![
        (v(&[]), v(&["10.0.0.1"]), vec![(String::new(), 1)]),
        (v(&["10.0.0.1"]), v(&[]), vec![(String::new(), 2)]),
    ];
    let mut got = got;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn reconcile_creates_updates_and_skips() {
    let s = svc(http());
    let (a, c) = (pod("a", "10.0.0.2", true), pod("c", "10.0.0.3", false));
    let t = time_at(&json!({"t": "2025-01-01T00:01:00Z"}), "/t");
    let ep = reconcile(&s, &[&a, &c], None, t).expect("created");
    assert_eq!(ep["metadata"]["name"], "web");
    assert_eq!(ep["metadata"]["namespace"], "d");
    assert_eq!(ep["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(
        ep["metadata"]["annotations"][TRIGGER_TIME],
        "2025-01-01T00:01:00Z"
    );
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.0.2");
    assert_eq!(ep["subsets"][0]["notReadyAddresses"][0]["ip"], "10.0.0.3");
    // Up to date: nothing to write, whatever the trigger.
    assert_eq!(reconcile(&s, &[&a, &c], Some(&ep), None), None);
    // A label change on the service is written.
    let mut s2 = s.clone();
    s2["metadata"]["labels"] = json!({"team": "b"});
    let up = reconcile(&s2, &[&a, &c], Some(&ep), None).expect("labels");
    assert_eq!(up["metadata"]["labels"], json!({"team": "b"}));
    assert!(
        up["metadata"].get("annotations").is_none(),
        "no trigger: annotation cleared"
    );
    // A pod leaving is written; no pods at all leaves no subsets.
    let up = reconcile(&s, &[&a], Some(&ep), None).expect("pod gone");
    assert_eq!(up["subsets"].as_array().unwrap().len(), 1);
    let up = reconcile(&s, &[], Some(&ep), None).expect("all gone");
    assert!(up.get("subsets").is_none(), "{up}");
    // Headless: the label is added, and is no difference on its own.
    let mut h = s.clone();
    h["spec"]["clusterIP"] = json!("None");
    let ep = reconcile(&h, &[&a], None, None).unwrap();
    assert_eq!(ep["metadata"]["labels"][HEADLESS], "");
    assert_eq!(reconcile(&h, &[&a], Some(&ep), None), None);
}

#[test]
fn over_capacity_truncates() {
    let s = svc(http());
    let pods: Vec<Value> = (0..1100)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.1.{}.{}", i / 250, i % 250),
                i % 2 == 0,
            )
        })
        .collect();
    let refs: Vec<&Value> = pods.iter().collect();
    let ep = reconcile(&s, &refs, None, None).unwrap();
    let subs = ep["subsets"].as_array().unwrap();
    assert_eq!(count(subs, "addresses"), 550);
    assert_eq!(
        count(subs, "notReadyAddresses"),
        450,
        "not-ready ones dropped first"
    );
    assert_eq!(ep["metadata"]["annotations"][OVER_CAPACITY], "truncated");
    // Still over capacity: never considered up to date.
    assert!(reconcile(&s, &refs, Some(&ep), None).is_some());
}

#[test]
fn pod_changes_pick_services() {
    let web = svc(http());
    let mut api = svc(http());
    api["metadata"]["name"] = json!("api");
    api["spec"]["selector"] = json!({"tier": "api"});
    let mut bare = svc(http());
    bare["metadata"]["name"] = json!("bare");
    bare["spec"].as_object_mut().unwrap().remove("selector");
    let services = vec![web, api, bare];
    let base = pod("a", "10.0.0.2", true);
    let bump = |p: &Value| {
        let mut p = p.clone();
        p["metadata"]["resourceVersion"] = json!("2");
        p
    };
    let mut not_ready = bump(&base);
    not_ready["status"]["conditions"][0]["status"] = json!("False");
    let mut annotated = bump(&base);
    annotated["metadata"]["annotations"] = json!({"x": "y"});
    let mut moved = bump(&base);
    moved["metadata"]["labels"] = json!({"tier": "api"});
    let mut both = bump(&base);
    both["metadata"]["labels"] = json!({"app": "web", "tier": "api"});
    let mut new_ip = bump(&base);
    new_ip["status"]["podIPs"] = json!([{"ip": "10.0.0.9"}]);
    let mut hostname = bump(&base);
    hostname["spec"]["hostname"] = json!("a");
    let mut deleted = bump(&base);
    deleted["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:05:00Z");
    struct Case {
        what: &'static str,
        old: Option<Value>,
        new: Option<Value>,
        want: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            what: "add",
            old: None,
            new: Some(base.clone()),
            want: vec!["d/web"],
        },
        Case {
            what: "delete",
            old: Some(base.clone()),
            new: None,
            want: vec!["d/web"],
        },
        Case {
            what: "resync (same resourceVersion)",
            old: Some(base.clone()),
            new: Some(base.clone()),
            want: vec![],
        },
        Case {
            what: "readiness",
            old: Some(base.clone()),
            new: Some(not_ready),
            want: vec!["d/web"],
        },
        Case {
            what: "an annotation concerns no endpoint",
            old: Some(base.clone()),
            new: Some(annotated),
            want: vec![],
        },
        Case {
            what: "labels moved it to another service: both",
            old: Some(base.clone()),
            new: Some(moved),
            want: vec!["d/api", "d/web"],
        },
        Case {
            what: "joined a second service: only that one",
            old: Some(base.clone()),
            new: Some(both),
            want: vec!["d/api"],
        },
        Case {
            what: "IP",
            old: Some(base.clone()),
            new: Some(new_ip),
            want: vec!["d/web"],
        },
        Case {
            what: "hostname counts as membership",
            old: Some(base.clone()),
            new: Some(hostname),
            want: vec![],
        },
        Case {
            what: "deletion",
            old: Some(base.clone()),
            new: Some(deleted),
            want: vec!["d/web"],
        },
    ];
    for c in cases {
        let mut got = services_for_pod_change(&services, c.old.as_ref(), c.new.as_ref());
        got.sort();
        assert_eq!(got, c.want, "{}", c.what);
    }
}

#[test]
fn trigger_times() {
    let s = svc(http());
    let a = pod("a", "10.0.0.2", true);
    let mut b = pod("b", "10.0.0.3", true);
    b["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T00:02:00Z");
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // First sync: the service's creation.
    let (first, st) = trigger_time(None, &s, &[&a]);
    assert_eq!(first, Some(t("2025-01-01T00:00:00Z")));
    // Nothing changed: none.
    let (none, st) = trigger_time(Some(&st), &s, &[&a]);
    assert_eq!(none, None);
    // A new pod: its Ready transition.
    let (added, st) = trigger_time(Some(&st), &s, &[&a, &b]);
    assert_eq!(added, Some(t("2025-01-01T00:02:00Z")));
    // Two changed: the earliest.
    let mut a2 = a.clone();
    a2["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T00:03:00Z");
    let mut b2 = b.clone();
    b2["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T00:04:00Z");
    let (both, _) = trigger_time(Some(&st), &s, &[&a2, &b2]);
    assert_eq!(both, Some(t("2025-01-01T00:03:00Z")));
    assert_eq!(
        format_time(t("2025-01-01T00:03:00.5Z")),
        "2025-01-01T00:03:00.5Z"
    );
}

#[test]
fn managed_and_selection() {
    let s = svc(http());
    assert!(managed(&s));
    let mut none = s.clone();
    none["spec"]["selector"] = json!({});
    assert!(!managed(&none), "empty selector is none");
    let mut ext = s.clone();
    ext["spec"]["type"] = json!("ExternalName");
    assert!(!managed(&ext));
    let mut elsewhere = pod("a", "10.0.0.2", true);
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(selects(&s, &pod("a", "10.0.0.2", true)));
    assert!(!selects(&s, &elsewhere));
}
