//! Required inter-pod affinity and anti-affinity: zone and hostname topologies, namespaces,
//! namespaceSelector, the self-match special case, symmetry, nominated pods.

use super::*;

const AFF: &str = "node(s) didn't match pod affinity rules";
const ANTI: &str = "node(s) didn't match pod anti-affinity rules";
const EXISTING: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";

/// n1, n2 in zone a; n3, n4 in zone b; n5 without a zone.
fn nodes() -> Vec<N> {
    vec![
        N::new("n1").label(ZONE, "a"),
        N::new("n2").label(ZONE, "a"),
        N::new("n3").label(ZONE, "b"),
        N::new("n4").label(ZONE, "b"),
        N::new("n5"),
    ]
}

fn term(app: &str, key: &str, extra: Value) -> Value {
    let mut t = json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key});
    for (k, v) in extra.as_object().into_iter().flatten() {
        t[k] = v.clone();
    }
    t
}

fn with(kind: &str, t: Value) -> P {
    P::new("new").spec(
        &format!("affinity/{kind}/requiredDuringSchedulingIgnoredDuringExecution"),
        json!([t]),
    )
}

/// The verdict on n1..n5, "" for fits.
fn verdicts(s: &Snapshot, p: &P) -> Vec<String> {
    (1..=5)
        .map(|i| filter_on(s, p, &format!("n{i}")).err().unwrap_or_default())
        .collect()
}

fn db(name: &str) -> P {
    P::new(name).labels(json!({"app": "db"}))
}

#[test]
fn required_affinity_and_anti_affinity() {
    let ns_other = db("db-other").ns("other");
    let cases: Vec<(&str, Vec<(&str, P)>, P, [&str; 5])> = vec![
        (
            "affinity, zone",
            vec![("n1", db("db"))],
            with("podAffinity", term("db", ZONE, json!({}))),
            ["", "", AFF, AFF, AFF],
        ),
        (
            "affinity, hostname",
            vec![("n3", db("db"))],
            with("podAffinity", term("db", HOST, json!({}))),
            [AFF, AFF, "", AFF, AFF],
        ),
        (
            "affinity: a pod of another namespace does not count",
            vec![
                ("n1", ns_other.clone()),
                ("n3", P::new("x").labels(json!({"app": "x"}))),
            ],
            with("podAffinity", term("db", ZONE, json!({}))),
            [AFF, AFF, AFF, AFF, AFF],
        ),
        (
            "affinity: namespaces listed",
            vec![("n3", ns_other.clone())],
            with(
                "podAffinity",
                term("db", ZONE, json!({"namespaces": ["other"]})),
            ),
            [AFF, AFF, "", "", AFF],
        ),
        (
            "affinity: namespaceSelector {} is every namespace",
            vec![("n3", ns_other.clone())],
            with(
                "podAffinity",
                term("db", ZONE, json!({"namespaceSelector": {}})),
            ),
            [AFF, AFF, "", "", AFF],
        ),
        (
            "affinity: namespaceSelector by labels",
            vec![("n1", db("db-prod").ns("prod")), ("n3", ns_other.clone())],
            with(
                "podAffinity",
                term(
                    "db",
                    ZONE,
                    json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
                ),
            ),
            [AFF, AFF, "", "", AFF],
        ),
        (
            "affinity: matchExpressions",
            vec![("n1", db("db"))],
            with(
                "podAffinity",
                json!({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "cache"]}]}, "topologyKey": ZONE}),
            ),
            ["", "", AFF, AFF, AFF],
        ),
        (
            "affinity: a pod matching itself goes anywhere while none matches",
            vec![("n1", P::new("x"))],
            with("podAffinity", term("db", ZONE, json!({}))).labels(json!({"app": "db"})),
            ["", "", "", "", AFF],
        ),
        (
            "affinity: … but follows the first one",
            vec![("n3", db("db"))],
            with("podAffinity", term("db", ZONE, json!({}))).labels(json!({"app": "db"})),
            [AFF, AFF, "", "", AFF],
        ),
        (
            "affinity: no self-match, nobody matches",
            vec![],
            with("podAffinity", term("db", ZONE, json!({}))),
            [AFF, AFF, AFF, AFF, AFF],
        ),
        (
            "anti-affinity, zone (a node without the key is fine)",
            vec![("n3", db("db"))],
            with("podAntiAffinity", term("db", ZONE, json!({}))),
            ["", "", ANTI, ANTI, ""],
        ),
        (
            "anti-affinity, hostname",
            vec![("n1", db("db")), ("n4", db("db2"))],
            with("podAntiAffinity", term("db", HOST, json!({}))),
            [ANTI, "", "", ANTI, ""],
        ),
        (
            "anti-affinity: other namespace",
            vec![("n1", ns_other.clone())],
            with("podAntiAffinity", term("db", HOST, json!({}))),
            ["", "", "", "", ""],
        ),
        (
            "anti-affinity: namespaceSelector",
            vec![("n1", ns_other.clone())],
            with(
                "podAntiAffinity",
                term(
                    "db",
                    HOST,
                    json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
                ),
            ),
            [ANTI, "", "", "", ""],
        ),
        (
            "symmetry: an existing pod's anti-affinity, hostname",
            vec![(
                "n1",
                with("podAntiAffinity", term("web", HOST, json!({})))
                    .meta("name", json!("guard"))
                    .meta("uid", json!("guard")),
            )],
            P::new("web").labels(json!({"app": "web"})),
            [EXISTING, "", "", "", ""],
        ),
        (
            "symmetry: zone",
            vec![(
                "n3",
                with("podAntiAffinity", term("web", ZONE, json!({}))).meta("uid", json!("guard")),
            )],
            P::new("web").labels(json!({"app": "web"})),
            ["", "", EXISTING, EXISTING, ""],
        ),
        (
            "symmetry: the existing pod's term is for its own namespace",
            vec![(
                "n1",
                with("podAntiAffinity", term("web", HOST, json!({})))
                    .ns("other")
                    .meta("uid", json!("guard")),
            )],
            P::new("web").labels(json!({"app": "web"})),
            ["", "", "", "", ""],
        ),
        (
            "symmetry: its namespaceSelector matches the incoming pod's namespace",
            vec![(
                "n1",
                with(
                    "podAntiAffinity",
                    term(
                        "web",
                        HOST,
                        json!({"namespaceSelector": {"matchLabels": {"env": "dev"}}}),
                    ),
                )
                .ns("other")
                .meta("uid", json!("guard")),
            )],
            P::new("web").labels(json!({"app": "web"})),
            [EXISTING, "", "", "", ""],
        ),
        (
            "affinity and anti-affinity together",
            vec![
                ("n1", db("db")),
                ("n2", P::new("w").labels(json!({"app": "web"}))),
            ],
            P::new("new")
                .spec(
                    "affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution",
                    json!([term("db", ZONE, json!({}))]),
                )
                .spec(
                    "affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
                    json!([term("web", HOST, json!({}))]),
                ),
            ["", ANTI, AFF, AFF, AFF],
        ),
    ];
    for (name, pods, p, want) in cases {
        let bound: Vec<(&str, &P)> = pods.iter().map(|(n, p)| (*n, p)).collect();
        let mut s = snap(&nodes(), &bound);
        s.set_namespace("other", [("team".to_string(), "a".to_string())].into());
        s.set_namespace("default", [("env".to_string(), "dev".to_string())].into());
        assert_eq!(verdicts(&s, &p), want, "{name}");
    }
}

#[test]
fn anti_affinity_counts_nominated_pods_of_higher_priority() {
    let mut s = snap(&nodes(), &[]);
    let p = with("podAntiAffinity", term("db", HOST, json!({})));
    s.nominate(db("db").priority(10).info(), "n1");
    assert_eq!(verdicts(&s, &p)[0], ANTI);
    s.unnominate("db");
    s.nominate(db("db").priority(-1).info(), "n1");
    assert_eq!(verdicts(&s, &p)[0], "");
}

#[test]
fn removing_and_re_adding_pods_keeps_the_counts() {
    let mut s = snap(&nodes(), &[("n1", &db("db"))]);
    let p = with("podAntiAffinity", term("db", HOST, json!({})));
    assert_eq!(verdicts(&s, &p)[0], ANTI);
    s.remove_pod("db");
    assert_eq!(verdicts(&s, &p)[0], "");
    s.add_pod("n2", db("db").info());
    assert_eq!(verdicts(&s, &p)[..2], ["", ANTI]);
    // A node removed takes its pods along, and brings them back.
    let zone = with("podAntiAffinity", term("db", ZONE, json!({})));
    assert_eq!(filter_on(&s, &zone, "n1"), Err(ANTI.into()));
    s.remove_node("n2");
    assert_eq!(filter_on(&s, &zone, "n1"), Ok(()));
    s.upsert_node(&nodes()[1].build());
    assert_eq!(filter_on(&s, &zone, "n1"), Err(ANTI.into()));
    assert_eq!(s.pod_node("db"), Some("n2"));
}

#[test]
fn interned_ids_are_released_and_reused_safely() {
    let mut s = snap(&nodes(), &[]);
    let anti_a = with("podAntiAffinity", term("a", HOST, json!({})));
    let guard = |name: &str, app: &str| {
        with("podAntiAffinity", term(app, HOST, json!({})))
            .meta("name", json!(name))
            .meta("uid", json!(name))
    };
    for round in 0..3 {
        // app=a on n1 (a guard against app=web too), then gone, then app=b in its place.
        s.add_pod("n1", P::new("x").labels(json!({"app": "a"})).info());
        s.add_pod("n2", guard("g", "web").info());
        assert_eq!(verdicts(&s, &anti_a)[0], ANTI, "round {round}");
        let web = P::new("web").labels(json!({"app": "web"}));
        assert_eq!(verdicts(&s, &web)[1], EXISTING, "round {round}");
        s.remove_pod("x");
        s.remove_pod("g");
        s.add_pod("n1", P::new("y").labels(json!({"zzz": "b"})).info());
        s.add_pod("n3", guard("h", "other").info());
        assert_eq!(verdicts(&s, &anti_a), ["", "", "", "", ""], "round {round}");
        assert_eq!(verdicts(&s, &web), ["", "", "", "", ""], "round {round}");
        s.remove_pod("y");
        s.remove_pod("h");
    }
}
