//! A micro-benchmark, ignored by default: µs per `schedule` at 5000 nodes. Run it in release:
//! `cargo test --release -p capstan-scheduler -- --ignored --nocapture`.

use super::*;
use std::time::Instant;

const NODES: usize = 5000;

fn cluster(pods: impl Fn(usize) -> Option<P>) -> Snapshot {
    let mut s = Snapshot::new();
    for i in 0..NODES {
        let n = N::new(&format!("node-{i:05}"))
            .alloc("cpu", "16")
            .alloc("memory", "64Gi")
            .label("topology.kubernetes.io/zone", &format!("zone-{}", i % 10))
            .image(&["docker.io/library/nginx:1.27"], 70 << 20);
        s.upsert_node(&n.build());
    }
    for j in 0..2 * NODES {
        if let Some(p) = pods(j) {
            s.add_pod(
                &format!("node-{:05}", j % NODES),
                p.meta("uid", json!(format!("u{j}"))).info(),
            );
        }
    }
    s
}

fn time(label: &str, runs: usize, mut f: impl FnMut(usize)) -> f64 {
    f(0);
    let t = Instant::now();
    for i in 0..runs {
        f(i);
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!("{label:<58} {us:>9.1} µs");
    us
}

#[test]
#[ignore]
fn bench_schedule_5000_nodes() {
    let profile = Profile::default();
    let filler = |j: usize| {
        Some(
            P::new(&format!("p{j}"))
                .cpu("500m")
                .req("memory", "1Gi")
                .labels(json!({"app": format!("svc{}", j % 50)})),
        )
    };
    let s = cluster(filler);
    println!(
        "{} nodes, {} pods",
        s.len(),
        s.nodes().iter().map(|n| n.pods.len()).sum::<usize>()
    );
    let basic = P::new("new").cpu("250m").req("memory", "512Mi").info();
    let mut start = 0;
    time("basic (requests only), 10k pods bound", 2000, |_| {
        let d = schedule(&basic, &s, &profile, start).unwrap();
        start += d.evaluated;
    });
    let aff = P::new("new")
        .cpu("250m")
        .spec(
            "affinity/nodeAffinity",
            json!({
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-1", "zone-2", "zone-3"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-2"]}]}}]
            }),
        )
        .info();
    time("node affinity (required + preferred)", 2000, |_| {
        let d = schedule(&aff, &s, &profile, start).unwrap();
        start += d.evaluated;
    });
    let spread = P::new("new").cpu("250m").labels(json!({"app": "svc1"})).spec(
        "topologySpreadConstraints",
        json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "svc1"}}}]),
    );
    let spread = spread.info();
    time(
        "topology spread (zone, DoNotSchedule), 10k pods",
        200,
        |_| {
            let d = schedule(&spread, &s, &profile, start).unwrap();
            start += d.evaluated;
        },
    );

    // 2000 existing replicas with hostname anti-affinity to each other.
    let anti = |name: &str| {
        P::new(name).cpu("250m").labels(json!({"app": "web"})).spec(
            "affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            json!([{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]),
        )
    };
    let s2 = cluster(|j| (j < 2000).then(|| anti(&format!("web{j}"))));
    let web = anti("new").info();
    time("required anti-affinity (hostname), 2000 pods", 1000, |_| {
        let d = schedule(&web, &s2, &profile, start).unwrap();
        start += d.evaluated;
    });
    time("  of which InterPodAffinity PreFilter", 1000, |_| {
        std::hint::black_box(crate::interpod::pre_filter(&web, &s2));
    });
    let s3 = cluster(|j| {
        let p = anti(&format!("web{j}"));
        Some(if j < 2000 { p } else { filler(j).unwrap() })
    });
    time("required anti-affinity, 2000 of 10k pods", 500, |_| {
        let d = schedule(&web, &s3, &profile, start).unwrap();
        start += d.evaluated;
    });

    // Every node full of low-priority pods: the filters fail everywhere, then preemption.
    let full = cluster(|j| (j < NODES).then(|| P::new(&format!("low{j}")).cpu("16").priority(1)));
    let big = P::new("big").cpu("8").priority(100).info();
    time("unschedulable: filter 5000 nodes, FitError", 100, |_| {
        assert!(schedule(&big, &full, &profile, 0).is_err());
    });
    let err = schedule(&big, &full, &profile, 0).unwrap_err();
    time("preemption (500 candidates of 5000)", 100, |_| {
        let p = preempt(&big, &full, &profile, &err).unwrap();
        assert_eq!(p.victims.len(), 1);
    });

    // Snapshot upkeep.
    let mut s = s;
    let node = N::new("node-00042")
        .alloc("cpu", "16")
        .alloc("memory", "64Gi")
        .build();
    time("Snapshot::upsert_node (status update)", 5000, |_| {
        s.upsert_node(&node)
    });
    let infos: Vec<Arc<PodInfo>> = (0..5000)
        .map(|i| P::new(&format!("x{i}")).cpu("1").info())
        .collect();
    time("Snapshot::add_pod", 5000, |i| {
        s.add_pod(&format!("node-{:05}", i % NODES), infos[i].clone())
    });
    time("Snapshot::remove_pod", 5000, |i| {
        s.remove_pod(&infos[i].uid)
    });
    let pod = P::new("new").cpu("250m").pod();
    let pod = Arc::new(pod);
    time("PodInfo::new (simple pod)", 5000, |_| {
        std::hint::black_box(PodInfo::new(pod.clone()));
    });
}
