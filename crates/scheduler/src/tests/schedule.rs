//! `schedule`: numFeasibleNodesToFind and the evaluated counts, round-robin start, kube's
//! messages, nominated pods, the nominated node first, NodeAffinity's node names, snapshot
//! upkeep.

use super::*;

fn many(n: usize) -> Snapshot {
    let nodes: Vec<N> = (0..n).map(|i| N::new(&format!("n{i:04}"))).collect();
    snap(&nodes, &[])
}

#[test]
fn num_feasible_nodes() {
    let cases = [
        (None, 50, 50),
        (None, 99, 99),
        (None, 100, 100),
        (None, 1000, 420),
        (None, 5000, 500),
        (None, 6000, 300),
        (None, 10000, 500),
        (Some(0), 5000, 500),
        (Some(30), 1000, 300),
        (Some(5), 1000, 100),
        (Some(100), 5000, 5000),
        (Some(50), 80, 80),
    ];
    for (pct, n, want) in cases {
        assert_eq!(num_feasible_nodes_to_find(pct, n), want, "{pct:?} of {n}");
    }
}

#[test]
fn evaluated_counts_and_round_robin() {
    let s = many(1000);
    let p = P::new("p").cpu("100m").info();
    let d = schedule(&p, &s, &Profile::default(), 0).unwrap();
    assert_eq!((d.evaluated, d.feasible), (420, 420));
    // All equal: the first evaluated wins, so the start rotates the choice.
    assert_eq!(d.node, "n0000");
    let d = schedule(&p, &s, &Profile::default(), 420).unwrap();
    assert_eq!(d.node, "n0420");
    let d = schedule(&p, &s, &Profile::default(), 999 + 1000).unwrap();
    assert_eq!((d.node.as_str(), d.evaluated), ("n0999", 420));
    let mut profile = Profile::default();
    profile.percentage_of_nodes_to_score = Some(100);
    assert_eq!(schedule(&p, &s, &profile, 0).unwrap().evaluated, 1000);
    // Nodes that fail are evaluated too.
    let mut nodes: Vec<N> = (0..200)
        .map(|i| N::new(&format!("n{i:03}")).unschedulable())
        .collect();
    nodes.extend((200..400).map(|i| N::new(&format!("n{i:03}"))));
    let s = snap(&nodes, &[]);
    let d = schedule(&p, &s, &Profile::default(), 0).unwrap();
    assert_eq!(
        (d.evaluated, d.feasible, d.node.as_str()),
        (388, 188, "n200")
    );
}

#[test]
fn messages() {
    let cpu = |c: &str| P::new("p").cpu(c);
    let cases: Vec<(&str, Vec<N>, P, &str)> = vec![
        (
            "resources and selector",
            vec![N::new("a").alloc("cpu", "1"), N::new("b"), N::new("c")],
            cpu("2").spec("nodeSelector", json!({"kubernetes.io/hostname": "a"})),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.",
        ),
        (
            "several reasons on one node",
            vec![N::new("a").alloc("cpu", "1").alloc("memory", "1Gi")],
            cpu("2").req("memory", "2Gi"),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
        ),
        (
            "sorted with the counts, as Go's sort.Strings",
            (0..12)
                .map(|i| if i < 10 { N::new(&format!("t{i}")).taint("k", "v", "NoSchedule") } else { N::new(&format!("u{i}")).unschedulable() })
                .collect(),
            P::new("p"),
            "0/12 nodes are available: 10 node(s) had untolerated taint {k: v}, 2 node(s) were unschedulable.",
        ),
        ("no nodes", vec![], P::new("p"), "no nodes available to schedule pods"),
        (
            "metadata.name terms: the other nodes did not satisfy NodeAffinity",
            vec![N::new("a").alloc("cpu", "1"), N::new("b"), N::new("c")],
            cpu("2").spec(
                "affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
                json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]),
            ),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity].",
        ),
        (
            "conflicting metadata.name terms",
            vec![N::new("a"), N::new("b")],
            P::new("p").spec(
                "affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
                json!([{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["a"]},
                    {"key": "metadata.name", "operator": "In", "values": ["b"]}
                ]}]),
            ),
            "0/2 nodes are available: pod affinity terms conflict.",
        ),
    ];
    for (name, nodes, p, want) in cases {
        let s = snap(&nodes, &[]);
        let e = schedule(&p.info(), &s, &Profile::default(), 0).unwrap_err();
        assert_eq!(e.message(), want, "{name}");
        assert_eq!(e.to_string(), want, "{name}");
    }
    // With preemption's part.
    let s = snap(&[N::new("a").alloc("cpu", "1")], &[]);
    let e = schedule(&cpu("2").info(), &s, &Profile::default(), 0).unwrap_err();
    assert_eq!(
        e.message_with_preemption("0/1 nodes are available: 1 No preemption victims found for incoming pod."),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
    );
    assert_eq!(
        e.message_with_preemption(""),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn node_name_affinity_looks_only_at_the_named_nodes() {
    let s = many(5000);
    let p = P::new("ds").spec(
        "affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n4321"]}]}]),
    );
    let d = schedule(&p.info(), &s, &Profile::default(), 17).unwrap();
    assert_eq!((d.node.as_str(), d.evaluated, d.feasible), ("n4321", 1, 1));
}

#[test]
fn nominated_pods_hold_their_room() {
    let s0 = snap(&[N::new("a").alloc("cpu", "1")], &[]);
    let p = P::new("p").cpu("600m").priority(5);
    // A nominated pod of higher (or equal) priority takes the room …
    let mut s = s0.clone();
    s.nominate(P::new("big").cpu("600m").priority(10).info(), "a");
    assert_eq!(
        pick(&s, &p),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
    s.nominate(P::new("big").cpu("600m").priority(5).info(), "a");
    assert!(pick(&s, &p).is_err());
    // … one of lower priority does not, nor does the pod's own nomination.
    s.nominate(P::new("big").cpu("600m").priority(4).info(), "a");
    assert_eq!(pick(&s, &p), Ok("a".into()));
    let mut s = s0.clone();
    s.nominate(p.info(), "a");
    assert_eq!(pick(&s, &p), Ok("a".into()));
    // Host ports too.
    let port = |n: &str| {
        P::new(n).spec(
            "containers/0/ports",
            json!([{"containerPort": 80, "hostPort": 80}]),
        )
    };
    let mut s = s0.clone();
    s.nominate(port("nom").info(), "a");
    assert_eq!(
        pick(&s, &port("p")),
        Err("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.".into())
    );
    // Binding the nominated pod ends its nomination.
    s.add_pod("a", port("nom").info());
    assert!(s.nominated_pods("a").is_empty());
    s.unnominate("nobody");
}

#[test]
fn the_nominated_node_first() {
    let s = snap(
        &[N::new("a"), N::new("b"), N::new("c")],
        &[("c", &P::new("x").cpu("3"))],
    );
    let p = P::new("p")
        .cpu("100m")
        .status("nominatedNodeName", json!("c"));
    let d = schedule(&p.info(), &s, &Profile::default(), 0).unwrap();
    assert_eq!((d.node.as_str(), d.evaluated), ("c", 1));
    let p = P::new("p").cpu("2").status("nominatedNodeName", json!("c"));
    assert_eq!(
        schedule(&p.info(), &s, &Profile::default(), 0)
            .unwrap()
            .node,
        "a"
    );
}

#[test]
fn snapshot_upkeep() {
    let mut s = Snapshot::new();
    // A pod of a node not known yet waits for it.
    s.add_pod("a", P::new("x").cpu("3").info());
    assert_eq!(s.len(), 0);
    s.upsert_node(&N::new("a").build());
    assert_eq!(s.node("a").unwrap().requested["cpu"], 3000);
    assert_eq!(s.node("a").unwrap().pods.len(), 1);
    // Updating the node keeps its pods.
    s.upsert_node(&N::new("a").label("zone", "z").build());
    assert_eq!(s.node("a").unwrap().pods.len(), 1);
    assert_eq!(s.node("a").unwrap().labels["zone"], "z");
    // A new version of a pod replaces the old, wherever it was.
    s.upsert_node(&N::new("b").build());
    s.add_pod("b", P::new("x").cpu("1").info());
    assert!(s.node("a").unwrap().pods.is_empty());
    assert!(!s.node("a").unwrap().requested.contains_key("cpu"));
    assert_eq!(s.node("b").unwrap().requested["cpu"], 1000);
    s.remove_pod("x");
    assert!(s.node("b").unwrap().pods.is_empty());
    // Removing a pending pod ends its nomination.
    s.nominate(P::new("n").info(), "b");
    s.remove_pod("n");
    assert!(s.nominated_pods("b").is_empty());
    s.remove_node("a");
    assert_eq!(s.len(), 1);
    assert_eq!(s.nodes()[0].name, "b");
    assert!(s.node("a").is_none());
    // Images: counted per node, names normalized.
    s.upsert_node(&N::new("c").image(&["nginx"], 10).build());
    assert_eq!(s.image_nodes("docker.io/library/nginx:latest"), 1);
    s.upsert_node(&N::new("c").build());
    assert_eq!(s.image_nodes("docker.io/library/nginx:latest"), 0);
}

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Snapshot>();
    send_sync::<PodInfo>();
    send_sync::<Profile>();
    send_sync::<FitError>();
    send_sync::<Preemption>();
}

#[test]
fn normalize_images() {
    for (r, want) in [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        (
            "index.docker.io/library/busybox:1",
            "docker.io/library/busybox:1",
        ),
        ("foo/bar:2", "docker.io/foo/bar:2"),
        ("quay.io/x/y", "quay.io/x/y:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("localhost/x:1", "localhost/x:1"),
        ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
        ("nginx:1@sha256:abc", "docker.io/library/nginx:1@sha256:abc"),
    ] {
        assert_eq!(normalize_image(r), want, "{r}");
    }
}

#[test]
fn disabled_filters_and_scores() {
    let s = snap(&[N::new("a").unschedulable()], &[]);
    let mut profile = Profile::default();
    assert!(schedule(&P::new("p").info(), &s, &profile, 0).is_err());
    profile.disabled_filters.insert("NodeUnschedulable".into());
    assert_eq!(
        schedule(&P::new("p").info(), &s, &profile, 0).unwrap().node,
        "a"
    );
    let s = snap(&[N::new("a"), N::new("b")], &[]);
    profile.disabled_scores = SCORE_PLUGINS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        score_nodes(&P::new("p").info(), &s, &profile, &["a", "b"]),
        [0, 0]
    );
}
