//! PodTopologySpread's filter: maxSkew across zones, minDomains, missing labels,
//! nodeAffinityPolicy / nodeTaintsPolicy, matchLabelKeys, what is counted.

use super::*;

const SKEW: &str = "node(s) didn't match pod topology spread constraints";
const LABEL: &str = "node(s) didn't match pod topology spread constraints (missing required label)";
const ZONE: &str = "topology.kubernetes.io/zone";

/// n1, n2 in zone a; n3, n4 in b; n5, n6 in c (tainted when `taint_c`); n7 without a zone.
fn nodes(taint_c: bool) -> Vec<N> {
    let z = |n: &str, z: &str| {
        let node = N::new(n).label(ZONE, z);
        if taint_c && z == "c" {
            node.taint("spot", "", "NoSchedule")
        } else {
            node
        }
    };
    vec![
        z("n1", "a"),
        z("n2", "a"),
        z("n3", "b"),
        z("n4", "b"),
        z("n5", "c"),
        z("n6", "c"),
        N::new("n7"),
    ]
}

fn web(name: &str) -> P {
    P::new(name).labels(json!({"app": "web"}))
}

fn constraint(extra: Value) -> P {
    let mut c = json!({"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    web("new").spec("topologySpreadConstraints", json!([c]))
}

/// Verdicts on n1..n7 (only the spread reasons; "" = fits or failed another filter).
fn verdicts(s: &Snapshot, p: &P) -> Vec<&'static str> {
    (1..=7)
        .map(|i| match filter_on(s, p, &format!("n{i}")) {
            Err(e) if e == SKEW => "skew",
            Err(e) if e == LABEL => "label",
            Err(_) => "other",
            Ok(()) => "",
        })
        .collect()
}

#[test]
fn do_not_schedule() {
    let on = |spec: &[(&str, &str)]| -> Vec<(String, P)> {
        spec.iter()
            .enumerate()
            .map(|(i, (node, name))| (node.to_string(), web(&format!("{name}{i}"))))
            .collect()
    };
    let a2b1c1 = on(&[("n1", "w"), ("n2", "w"), ("n3", "w"), ("n5", "w")]);
    let a1b1 = on(&[("n1", "w"), ("n3", "w")]);
    let affinity_ab = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["a", "b"]}]}]}}});
    let cases: Vec<(&str, bool, &Vec<(String, P)>, P, [&str; 7])> = vec![
        (
            "maxSkew 1: a has 2, b and c 1",
            false,
            &a2b1c1,
            constraint(json!({})),
            ["skew", "skew", "", "", "", "", "label"],
        ),
        (
            "maxSkew 1: c is empty",
            false,
            &a1b1,
            constraint(json!({})),
            ["skew", "skew", "skew", "skew", "", "", "label"],
        ),
        (
            "maxSkew 2",
            false,
            &a1b1,
            constraint(json!({"maxSkew": 2})),
            ["", "", "", "", "", "", "label"],
        ),
        (
            "the pod does not match its selector",
            false,
            &a2b1c1,
            constraint(json!({})).labels(json!({"app": "other"})),
            ["", "", "", "", "", "", "label"],
        ),
        (
            "minDomains above the domains: the minimum is 0",
            false,
            &a2b1c1,
            constraint(json!({"minDomains": 4})),
            ["skew", "skew", "skew", "skew", "skew", "skew", "label"],
        ),
        (
            "minDomains met",
            false,
            &a2b1c1,
            constraint(json!({"minDomains": 3})),
            ["skew", "skew", "", "", "", "", "label"],
        ),
        (
            "nodeAffinityPolicy Honor (default): zone c is not a domain",
            false,
            &a1b1,
            constraint(json!({})).spec("affinity", affinity_ab.clone()),
            ["", "", "", "", "other", "other", "other"],
        ),
        (
            "nodeAffinityPolicy Ignore: zone c counts",
            false,
            &a1b1,
            constraint(json!({"nodeAffinityPolicy": "Ignore"}))
                .spec("affinity", affinity_ab.clone()),
            ["skew", "skew", "skew", "skew", "other", "other", "other"],
        ),
        (
            "nodeTaintsPolicy Ignore (default): tainted zone c counts",
            true,
            &a1b1,
            constraint(json!({})),
            ["skew", "skew", "skew", "skew", "other", "other", "label"],
        ),
        (
            "nodeTaintsPolicy Honor: tainted zone c is not a domain",
            true,
            &a1b1,
            constraint(json!({"nodeTaintsPolicy": "Honor"})),
            ["", "", "", "", "other", "other", "label"],
        ),
        (
            "matchLabelKeys: only pods of the same version count",
            false,
            &a2b1c1,
            constraint(json!({"matchLabelKeys": ["version"]}))
                .labels(json!({"app": "web", "version": "v2"})),
            ["", "", "", "", "", "", "label"],
        ),
        (
            "hostname topology",
            false,
            &a1b1,
            constraint(json!({"topologyKey": "kubernetes.io/hostname"})),
            ["skew", "", "skew", "", "", "", ""],
        ),
    ];
    for (name, taint_c, pods, p, want) in cases {
        let bound: Vec<(&str, &P)> = pods.iter().map(|(n, p)| (n.as_str(), p)).collect();
        let s = snap(&nodes(taint_c), &bound);
        assert_eq!(verdicts(&s, &p), want, "{name}");
    }
}

#[test]
fn what_is_counted() {
    let p = constraint(json!({}));
    // Terminating pods and pods of other namespaces do not count: c stays as good as a, b.
    let gone = web("gone").meta("deletionTimestamp", json!("2024-01-01T00:00:00Z"));
    let other = web("other").ns("other");
    let s = snap(
        &nodes(false),
        &[
            ("n1", &web("w1")),
            ("n3", &web("w2")),
            ("n5", &gone),
            ("n6", &other),
        ],
    );
    assert_eq!(
        verdicts(&s, &p),
        ["skew", "skew", "skew", "skew", "", "", "label"]
    );
    // A pod nominated to n5 (at the pod's priority) counts there, when filtering n5 only.
    let mut s = snap(
        &nodes(false),
        &[("n1", &web("w1")), ("n3", &web("w2")), ("n6", &web("w3"))],
    );
    assert_eq!(verdicts(&s, &p), ["", "", "", "", "", "", "label"]);
    s.nominate(web("nom").info(), "n5");
    assert_eq!(verdicts(&s, &p), ["", "", "", "", "skew", "", "label"]);
    s.unnominate("nom");
    s.nominate(web("nom").priority(-5).info(), "n5");
    assert_eq!(verdicts(&s, &p), ["", "", "", "", "", "", "label"]);
    // An empty labelSelector counts no pod (kube's countPodsMatchSelector).
    let empty = web("new").spec(
        "topologySpreadConstraints",
        json!([{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}]),
    );
    let s = snap(&nodes(false), &[("n1", &web("w1")), ("n2", &web("w2"))]);
    assert_eq!(verdicts(&s, &empty), ["", "", "", "", "", "", "label"]);
}
