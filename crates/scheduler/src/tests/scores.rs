//! The scores: exact values for a plain pod, and each plugin steering the choice.

use super::*;

const ZONE: &str = "topology.kubernetes.io/zone";

fn scores(s: &Snapshot, p: &P, profile: &Profile) -> Vec<i64> {
    let names: Vec<String> = s.nodes().iter().map(|n| n.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    score_nodes(&p.info(), s, profile, &names)
}

#[test]
fn plain_pod_values() {
    let s = snap(
        &[N::new("n1"), N::new("n2")],
        &[("n2", &P::new("x").cpu("2").req("memory", "2Gi"))],
    );
    let p = P::new("p").cpu("1").req("memory", "2Gi");
    // n1: TaintToleration 100×3, LeastAllocated (75+75)/2, Balanced (1 - |.25-.25|/2)×100.
    // n2: cpu 3/4, memory 4/8: least (25+50)/2 = 37, balanced (1 - .25/2)×100 = 87.
    assert_eq!(
        scores(&s, &p, &Profile::default()),
        [300 + 75 + 100, 300 + 37 + 87]
    );
    // Without requests: 100m / 200MB count for LeastAllocated, nothing for Balanced.
    let s = snap(&[N::new("n1")], &[]);
    let least =
        (((4000 - 100) * 100 / 4000) + (((8i64 << 30) - (200 << 20)) * 100 / (8 << 30))) / 2;
    assert_eq!(
        scores(&s, &P::new("p"), &Profile::default()),
        [300 + least + 100]
    );
}

#[test]
fn least_allocated_and_most_allocated() {
    let busy = P::new("busy").cpu("3");
    let s = snap(&[N::new("a"), N::new("b")], &[("a", &busy)]);
    let p = P::new("p").cpu("100m");
    assert_eq!(pick(&s, &p), Ok("b".into()));
    let mut profile = Profile::default();
    profile.scoring_strategy.kind = StrategyType::MostAllocated;
    assert_eq!(schedule(&p.info(), &s, &profile, 0).unwrap().node, "a");
}

#[test]
fn each_plugin_steers() {
    let prefer = |terms: Value| {
        P::new("p").spec(
            "affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution",
            terms,
        )
    };
    let web = P::new("web").labels(json!({"app": "web"}));
    let zoned = |n: &str, z: &str| N::new(n).label(ZONE, z);
    let cases: Vec<(&str, Vec<N>, Vec<(&str, P)>, P, &str)> = vec![
        (
            "preferred node affinity picks the labelled node",
            vec![N::new("n1"), N::new("n2").label("disk", "ssd")],
            vec![],
            prefer(json!([{"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}])),
            "n2",
        ),
        (
            "heavier preferred term wins",
            vec![N::new("n1").label("a", "1"), N::new("n2").label("b", "1")],
            vec![],
            prefer(json!([
                {"weight": 10, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
                {"weight": 90, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}
            ])),
            "n2",
        ),
        (
            "PreferNoSchedule avoided",
            vec![N::new("n1").taint("spot", "true", "PreferNoSchedule"), N::new("n2")],
            vec![],
            P::new("p"),
            "n2",
        ),
        (
            "PreferNoSchedule tolerated",
            vec![N::new("n1").taint("spot", "true", "PreferNoSchedule"), N::new("n2").taint("x", "", "PreferNoSchedule")],
            vec![],
            P::new("p").spec("tolerations", json!([{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}])),
            "n1",
        ),
        (
            "image locality prefers the node with the big image",
            vec![N::new("n1"), N::new("n2").image(&["docker.io/library/busybox:latest", "busybox@sha256:1"], 500 << 20)],
            vec![],
            P::new("p"),
            "n2",
        ),
        (
            "preferred anti-affinity spreads",
            vec![N::new("n1"), N::new("n2")],
            vec![("n1", web.clone())],
            web.clone().meta("uid", json!("new")).spec(
                "affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
                json!([{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]),
            ),
            "n2",
        ),
        (
            "preferred affinity joins the zone",
            vec![zoned("n1", "a"), zoned("n2", "b"), zoned("n3", "b")],
            vec![("n3", web.clone())],
            P::new("p").spec(
                "affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution",
                json!([{"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": ZONE}}]),
            ),
            "n2",
        ),
        (
            "an existing pod's preferred affinity draws the pod",
            vec![N::new("n1"), N::new("n2")],
            vec![(
                "n2",
                P::new("friend").spec(
                    "affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution",
                    json!([{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]),
                ),
            )],
            web.clone().meta("uid", json!("new")),
            "n2",
        ),
        (
            "an existing pod's hard affinity draws the pod (hardPodAffinityWeight)",
            vec![N::new("n1"), N::new("n2")],
            vec![(
                "n2",
                P::new("friend").spec(
                    "affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution",
                    json!([{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]),
                ),
            )],
            web.clone().meta("uid", json!("new")),
            "n2",
        ),
        (
            "an existing pod's preferred anti-affinity repels the pod",
            vec![N::new("n1"), N::new("n2")],
            vec![(
                "n1",
                P::new("foe").spec(
                    "affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
                    json!([{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]),
                ),
            )],
            web.clone().meta("uid", json!("new")),
            "n2",
        ),
        (
            "ScheduleAnyway spreads to the emptier zone",
            vec![zoned("n1", "a"), zoned("n2", "a"), zoned("n3", "b")],
            vec![("n1", web.clone())],
            web.clone().meta("uid", json!("new")).spec(
                "topologySpreadConstraints",
                json!([{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]),
            ),
            "n3",
        ),
    ];
    for (name, nodes, pods, p, want) in cases {
        let bound: Vec<(&str, &P)> = pods.iter().map(|(n, p)| (*n, p)).collect();
        let s = snap(&nodes, &bound);
        assert_eq!(pick(&s, &p), Ok(want.to_string()), "{name}");
    }
}

#[test]
fn plugin_values() {
    let profile_only = |name: &str| {
        let mut p = Profile::default();
        p.score_weights = [(name.to_string(), 1)].into();
        p
    };
    // ImageLocality: 500MB on one of two nodes → 250MB scaled: 100×(250-23)/(1000-23) = 23.
    let s = snap(
        &[
            N::new("n1"),
            N::new("n2").image(&["busybox:latest"], 500 << 20),
        ],
        &[],
    );
    assert_eq!(
        scores(&s, &P::new("p"), &profile_only("ImageLocality")),
        [0, 23]
    );
    // NodeAffinity: weights summed, normalized to the best node.
    let s = snap(
        &[
            N::new("n1").label("a", "1"),
            N::new("n2").label("a", "1").label("b", "1"),
            N::new("n3"),
        ],
        &[],
    );
    let p = P::new("p").spec(
        "affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        json!([
            {"weight": 20, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
            {"weight": 60, "preference": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}
        ]),
    );
    assert_eq!(scores(&s, &p, &profile_only("NodeAffinity")), [25, 100, 0]);
    // TaintToleration: untolerated PreferNoSchedule taints, reversed.
    let s = snap(
        &[
            N::new("n1")
                .taint("a", "", "PreferNoSchedule")
                .taint("b", "", "PreferNoSchedule"),
            N::new("n2").taint("a", "", "PreferNoSchedule"),
            N::new("n3"),
        ],
        &[],
    );
    assert_eq!(
        scores(&s, &P::new("p"), &profile_only("TaintToleration")),
        [0, 50, 100]
    );
    // InterPodAffinity: min-max normalized, anti-affinity subtracting.
    let web = P::new("web").labels(json!({"app": "web"}));
    let s = snap(
        &[N::new("n1"), N::new("n2"), N::new("n3")],
        &[
            ("n1", &web),
            ("n2", &web.clone().meta("uid", json!("w2"))),
            ("n2", &web.clone().meta("uid", json!("w3"))),
        ],
    );
    let p = P::new("p").spec(
        "affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        json!([{"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]),
    );
    assert_eq!(
        scores(&s, &p, &profile_only("InterPodAffinity")),
        [50, 0, 100]
    );
    // PodTopologySpread ScheduleAnyway, hostname: counts 1, 2, 0 over 3 nodes (weight ln 5).
    let p = P::new("p").labels(json!({"app": "web"})).spec(
        "topologySpreadConstraints",
        json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]),
    );
    let w = 5f64.ln();
    let raw = [w.round() as i64, (2.0 * w).round() as i64, 0];
    let want: Vec<i64> = raw
        .iter()
        // min is 0 (n3)
        .map(|s| 100 * (raw[1] - s) / raw[1])
        .collect();
    assert_eq!(scores(&s, &p, &profile_only("PodTopologySpread")), want);
}

#[test]
fn balanced_allocation_formula() {
    // cpu 2/4 = .5, memory 2/8 = .25 → (1 - .125) × 100 = 87.
    let s = snap(&[N::new("n1")], &[]);
    let mut profile = Profile::default();
    profile.score_weights = [("NodeResourcesBalancedAllocation".to_string(), 1)].into();
    let p = P::new("p").cpu("2").req("memory", "2Gi");
    assert_eq!(scores(&s, &p, &profile), [87]);
    // Three resources: the standard deviation of (.5, .25, 1).
    profile.balanced_resources.push("example.com/gpu".into());
    let s = snap(&[N::new("n1").alloc("example.com/gpu", "2")], &[]);
    let p = p.req("example.com/gpu", "2");
    let f = [0.5f64, 0.25, 1.0];
    let mean = f.iter().sum::<f64>() / 3.0;
    let std = (f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0).sqrt();
    assert_eq!(scores(&s, &p, &profile), [((1.0 - std) * 100.0) as i64]);
}
