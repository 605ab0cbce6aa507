//! DefaultPreemption: which node, which victims, PDBs, what is never a victim, eligibility,
//! kube's messages.

use super::*;

/// Nodes of 1 cpu.
fn node(name: &str) -> N {
    N::new(name).alloc("cpu", "1")
}

fn victim(name: &str, priority: i32, cpu: &str) -> P {
    P::new(name)
        .cpu(cpu)
        .priority(priority)
        .labels(json!({"app": name}))
}

/// Schedules `p` (which must fail) and preempts.
fn run(s: &Snapshot, p: &P) -> Result<Preemption, String> {
    let info = p.info();
    let profile = Profile::default();
    let err = schedule(&info, s, &profile, 0).expect_err("does not fit");
    preempt(&info, s, &profile, &err)
}

fn names(p: &Preemption) -> Vec<String> {
    p.victims.iter().map(|v| v.name.clone()).collect()
}

fn pdb(app: &str, allowed: i32) -> Pdb {
    Pdb {
        namespace: "default".into(),
        name: format!("pdb-{app}"),
        selector: Some(serde_json::from_value(json!({"matchLabels": {"app": app}})).unwrap()),
        disruptions_allowed: allowed,
    }
}

#[test]
fn picks_the_node() {
    let preemptor = P::new("p").cpu("1").priority(10);
    let at = |t: &str| json!(t);
    let cases: Vec<(&str, Vec<(&str, P)>, Vec<Pdb>, &str, Vec<&str>)> = vec![
        (
            "fewest PDB violations",
            vec![("n1", victim("a", 1, "1")), ("n2", victim("b", 5, "1"))],
            vec![pdb("a", 0)],
            "n2",
            vec!["b"],
        ),
        (
            "lowest highest-victim priority",
            vec![("n1", victim("a", 5, "1")), ("n2", victim("b", 3, "1"))],
            vec![],
            "n2",
            vec!["b"],
        ),
        (
            "smallest sum of priorities",
            vec![
                ("n1", victim("a1", 3, "500m")),
                ("n1", victim("a2", 2, "500m")),
                ("n2", victim("b1", 3, "500m")),
                ("n2", victim("b2", 1, "500m")),
            ],
            vec![],
            "n2",
            vec!["b1", "b2"],
        ),
        (
            "fewest victims",
            vec![
                ("n1", victim("a1", 1, "500m")),
                ("n1", victim("a2", 1, "500m")),
                ("n2", victim("b", 1, "1")),
            ],
            vec![],
            "n2",
            vec!["b"],
        ),
        (
            "latest start of the highest-priority victims",
            vec![
                (
                    "n1",
                    victim("a", 1, "1").status("startTime", at("2024-06-01T00:00:00Z")),
                ),
                (
                    "n2",
                    victim("b", 1, "1").status("startTime", at("2024-01-01T00:00:00Z")),
                ),
            ],
            vec![],
            "n1",
            vec!["a"],
        ),
        (
            "equal: the first",
            vec![("n1", victim("a", 1, "1")), ("n2", victim("b", 1, "1"))],
            vec![],
            "n1",
            vec!["a"],
        ),
        (
            "never equal or higher priority",
            vec![
                ("n1", victim("a", 10, "1")),
                ("n2", victim("b", 11, "1")),
                ("n3", victim("c", 9, "1")),
            ],
            vec![],
            "n3",
            vec!["c"],
        ),
        (
            "a PDB-protected node when no other",
            vec![("n1", victim("a", 1, "1"))],
            vec![pdb("a", 0)],
            "n1",
            vec!["a"],
        ),
    ];
    for (name, pods, pdbs, want_node, want_victims) in cases {
        let nodes: Vec<N> = ["n1", "n2", "n3"]
            .iter()
            .filter(|n| pods.iter().any(|(m, _)| m == *n))
            .map(|n| node(n))
            .collect();
        let bound: Vec<(&str, &P)> = pods.iter().map(|(n, p)| (*n, p)).collect();
        let mut s = snap(&nodes, &bound);
        s.set_pdbs(pdbs);
        let got = run(&s, &preemptor).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.node, want_node, "{name}");
        assert_eq!(names(&got), want_victims, "{name}");
    }
}

#[test]
fn pdb_violations_counted() {
    let mut s = snap(
        &[node("n1")],
        &[
            ("n1", &victim("a", 1, "500m").meta("uid", json!("a1"))),
            (
                "n1",
                &victim("a", 2, "500m")
                    .meta("uid", json!("a2"))
                    .meta("name", json!("a2")),
            ),
        ],
    );
    s.set_pdbs(vec![pdb("a", 1)]);
    let got = run(&s, &P::new("p").cpu("1").priority(10)).unwrap();
    // Both go; the budget allows one.
    assert_eq!((got.victims.len(), got.pdb_violations), (2, 1));
    assert_eq!(names(&got), ["a2", "a"]);
    // A PDB without a selector protects nothing.
    s.set_pdbs(vec![Pdb {
        selector: None,
        ..pdb("a", 0)
    }]);
    assert_eq!(
        run(&s, &P::new("p").cpu("1").priority(10))
            .unwrap()
            .pdb_violations,
        0
    );
}

#[test]
fn reprieve_keeps_unneeded_pods() {
    let pods: Vec<P> = (1..=4)
        .map(|i| victim(&format!("v{i}"), i, "250m"))
        .collect();
    let bound: Vec<(&str, &P)> = pods.iter().map(|p| ("n1", p)).collect();
    let s = snap(&[node("n1")], &bound);
    let got = run(&s, &P::new("p").cpu("500m").priority(10)).unwrap();
    assert_eq!(names(&got), ["v2", "v1"]);
}

#[test]
fn critical_pods_are_not_victims_of_lower_priorities() {
    let critical = victim("dns", 2_000_000_000, "1");
    let s = snap(&[node("n1")], &[("n1", &critical)]);
    assert_eq!(
        run(&s, &P::new("p").cpu("1").priority(1_000_000))
            .err()
            .as_deref(),
        Some("0/1 nodes are available: 1 No preemption victims found for incoming pod.")
    );
    // A node-critical pod may preempt a cluster-critical one.
    let got = run(&s, &P::new("p").cpu("1").priority(2_000_001_000)).unwrap();
    assert_eq!(names(&got), ["dns"]);
}

#[test]
fn messages_and_eligibility() {
    let s = snap(
        &[node("n1").label("x", "y"), node("n2"), node("n3")],
        &[
            ("n2", &victim("high", 100, "1")),
            ("n3", &victim("low", 1, "1")),
        ],
    );
    // n1 is left out by the selector (unresolvable), n2 has only higher pods, n3 is too small.
    let p = P::new("p")
        .cpu("2")
        .priority(10)
        .spec("nodeSelector", json!({"kubernetes.io/hostname": "n2"}));
    assert_eq!(run(&s, &p).err().as_deref(), Some("0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."));
    // Too big even with every victim gone: the filter's reason.
    let p = P::new("p")
        .cpu("2")
        .priority(10)
        .spec("nodeSelector", json!({"kubernetes.io/hostname": "n3"}));
    assert_eq!(run(&s, &p).err().as_deref(), Some("0/3 nodes are available: 1 Insufficient cpu, 2 Preemption is not helpful for scheduling."));
    let never = P::new("p")
        .cpu("2")
        .priority(10)
        .spec("preemptionPolicy", json!("Never"));
    assert_eq!(
        run(&s, &never).err().as_deref(),
        Some("not eligible due to preemptionPolicy=Never.")
    );
    // Preemption off: nothing to say.
    let mut profile = Profile::default();
    profile.disable_preemption = true;
    let info = P::new("p").cpu("2").priority(10).info();
    let err = schedule(&info, &s, &profile, 0).unwrap_err();
    assert_eq!(preempt(&info, &s, &profile, &err).unwrap_err(), "");
    // Nothing resolvable anywhere.
    let p = P::new("p")
        .priority(10)
        .spec("nodeSelector", json!({"nowhere": "x"}));
    assert_eq!(
        run(&s, &p).err().as_deref(),
        Some("0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    );
}

#[test]
fn no_second_preemption_while_victims_terminate() {
    let gone = victim("low", 1, "1")
        .meta("deletionTimestamp", json!("2024-01-01T00:00:00Z"))
        .status("conditions", json!([{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]));
    let s = snap(
        &[node("n1"), node("n2")],
        &[("n1", &gone), ("n2", &victim("other", 1, "1"))],
    );
    let p = P::new("p")
        .cpu("1")
        .priority(10)
        .status("nominatedNodeName", json!("n1"));
    assert_eq!(
        run(&s, &p).err().as_deref(),
        Some("not eligible due to a terminating pod on the nominated node.")
    );
    // Without a nomination it preempts (the terminating pod is a victim like any other).
    assert!(run(&s, &P::new("p").cpu("1").priority(10)).is_ok());
}

#[test]
fn nominated_pods_and_preemption() {
    let mut s = snap(
        &[node("n1"), node("n2")],
        &[("n1", &victim("a", 1, "1")), ("n2", &victim("b", 2, "1"))],
    );
    // n1's room is promised to a pod of higher priority: preempting there would not help.
    s.nominate(P::new("nom").cpu("1").priority(20).info(), "n1");
    let got = run(&s, &P::new("p").cpu("1").priority(10)).unwrap();
    assert_eq!(
        (got.node.as_str(), names(&got)),
        ("n2", vec!["b".to_string()])
    );
    // A lower-priority pod nominated to the chosen node loses its nomination.
    s.unnominate("nom");
    s.nominate(P::new("nom").cpu("1").priority(5).info(), "n1");
    let got = run(&s, &P::new("p").cpu("1").priority(10)).unwrap();
    assert_eq!(got.node, "n1");
    assert_eq!(
        got.lower_nominated
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["nom"]
    );
}

#[test]
fn anti_affinity_victims() {
    let host = "kubernetes.io/hostname";
    let db = victim("db", 1, "100m").labels(json!({"app": "db"}));
    let s = snap(&[node("n1")], &[("n1", &db)]);
    let p = P::new("p").priority(10).spec(
        "affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!([{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": host}]),
    );
    assert_eq!(names(&run(&s, &p).unwrap()), ["db"]);
    // Symmetric: an existing pod's anti-affinity against the preemptor.
    let guard = victim("guard", 1, "100m").spec(
        "affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!([{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": host}]),
    );
    let s = snap(
        &[node("n1")],
        &[("n1", &guard), ("n1", &victim("bystander", 1, "100m"))],
    );
    let web = P::new("web").priority(10).labels(json!({"app": "web"}));
    assert_eq!(names(&run(&s, &web).unwrap()), ["guard"]);
}
