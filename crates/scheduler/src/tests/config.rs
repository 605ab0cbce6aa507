//! parse_config: a good file with two profiles, weights and plugin args; bad ones with their
//! messages.

use super::*;

const GOOD: &str = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
leaderElection:
  leaderElect: false
profiles:
  - schedulerName: default-scheduler
    plugins:
      score:
        enabled:
          - name: ImageLocality
            weight: 5
        disabled:
          - name: NodeResourcesBalancedAllocation
    pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources:
              - name: cpu
                weight: 3
              - name: memory
      - name: InterPodAffinity
        args:
          hardPodAffinityWeight: 10
  - schedulerName: batch
    percentageOfNodesToScore: 100
    plugins:
      multiPoint:
        enabled:
          - name: TaintToleration
            weight: 7
        disabled:
          - name: ImageLocality
      filter:
        disabled:
          - name: NodePorts
      postFilter:
        disabled:
          - name: "*"
"#;

#[test]
fn good_file() {
    let profiles = parse_config(GOOD).unwrap();
    assert_eq!(profiles.len(), 2);
    let (a, b) = (&profiles[0], &profiles[1]);
    assert_eq!(a.scheduler_name, "default-scheduler");
    assert_eq!(a.percentage_of_nodes_to_score, Some(30));
    assert_eq!(a.score_weight("ImageLocality"), 5);
    assert_eq!(a.score_weight("TaintToleration"), 3);
    assert_eq!(a.score_weight("NodeResourcesBalancedAllocation"), 0);
    assert!(!a.disable_preemption);
    assert!(a.disabled_filters.is_empty());
    assert_eq!(a.scoring_strategy.kind, StrategyType::MostAllocated);
    assert_eq!(
        a.scoring_strategy.resources,
        [("cpu".to_string(), 3), ("memory".to_string(), 1)]
    );
    assert_eq!(a.hard_pod_affinity_weight, 10);
    assert_eq!(b.scheduler_name, "batch");
    assert_eq!(b.percentage_of_nodes_to_score, Some(100));
    assert_eq!(b.score_weight("TaintToleration"), 7);
    assert_eq!(b.score_weight("ImageLocality"), 0);
    assert_eq!(b.score_weight("NodeResourcesBalancedAllocation"), 1);
    assert!(b.disable_preemption);
    assert_eq!(b.disabled_filters, ["NodePorts".to_string()].into());
    assert!(!b.filter_enabled("NodePorts"));
    assert_eq!(b.scoring_strategy, ScoringStrategy::default());
}

#[test]
fn defaults() {
    let profiles = parse_config(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n",
    )
    .unwrap();
    assert_eq!(profiles, [Profile::default()]);
    let json = r#"{"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration", "profiles": [{"schedulerName": "x", "plugins": {"filter": {"disabled": [{"name": "*"}]}, "score": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeAffinity"}]}}}]}"#;
    let p = &parse_config(json).unwrap()[0];
    assert_eq!(p.scheduler_name, "x");
    assert_eq!(p.disabled_filters.len(), FILTER_PLUGINS.len());
    assert_eq!(p.score_weights, [("NodeAffinity".to_string(), 1)].into());
    // Disabling a default in multiPoint, then enabling it for scoring only.
    let y = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n    multiPoint:\n      disabled: [{name: InterPodAffinity}]\n    score:\n      enabled: [{name: InterPodAffinity, weight: 4}]\n";
    let p = &parse_config(y).unwrap()[0];
    assert!(!p.filter_enabled("InterPodAffinity"));
    assert_eq!(p.score_weight("InterPodAffinity"), 4);
    // DefaultPreemption args; RequestedToCapacityRatio's shape.
    let y = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: DefaultPreemption
    args: {minCandidateNodesPercentage: 20, minCandidateNodesAbsolute: 5}
  - name: NodeResourcesFit
    args:
      ignoredResourceGroups: [example.com]
      scoringStrategy:
        type: RequestedToCapacityRatio
        requestedToCapacityRatio:
          shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]
"#;
    let p = &parse_config(y).unwrap()[0];
    assert_eq!(
        (
            p.min_candidate_nodes_percentage,
            p.min_candidate_nodes_absolute
        ),
        (20, 5)
    );
    assert_eq!(
        p.scoring_strategy.kind,
        StrategyType::RequestedToCapacityRatio
    );
    assert_eq!(p.scoring_strategy.shape, [(0, 0), (100, 10)]);
    assert!(p.ignored_resource_groups.contains("example.com"));
}

#[test]
fn bad_files() {
    let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "apiVersion",
            "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n".into(),
            "apiVersion: Unsupported value: \"kubescheduler.config.k8s.io/v1beta3\": supported values: \"kubescheduler.config.k8s.io/v1\"",
        ),
        ("no apiVersion", "kind: KubeSchedulerConfiguration\n".into(), "apiVersion: Required value"),
        (
            "kind",
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: Scheduler\n".into(),
            "kind: Unsupported value: \"Scheduler\": supported values: \"KubeSchedulerConfiguration\"",
        ),
        ("unknown top-level field", format!("{head}profile: []\n"), "unknown field \"profile\""),
        (
            "unknown profile field",
            format!("{head}profiles:\n- schedulerName: a\n  plugin: {{}}\n"),
            "unknown field \"profiles[0].plugin\"",
        ),
        (
            "unknown plugin",
            format!("{head}profiles:\n- plugins:\n    score:\n      enabled: [{{name: Foo}}]\n"),
            "profiles[0].plugins.score.enabled[0].name: Invalid value: \"Foo\": unknown plugin",
        ),
        (
            "plugin at a point it does not extend",
            format!("{head}profiles:\n- plugins:\n    score:\n      enabled: [{{name: NodePorts}}]\n"),
            "profiles[0].plugins.score.enabled[0].name: Invalid value: \"NodePorts\": plugin does not extend score",
        ),
        (
            "unknown disabled plugin",
            format!("{head}profiles:\n- plugins:\n    filter:\n      disabled: [{{name: Bar}}]\n"),
            "profiles[0].plugins.filter.disabled[0].name: Invalid value: \"Bar\": unknown plugin",
        ),
        (
            "unknown extension point",
            format!("{head}profiles:\n- plugins:\n    scoring: {{}}\n"),
            "unknown field \"profiles[0].plugins.scoring\"",
        ),
        (
            "weight out of range",
            format!("{head}profiles:\n- plugins:\n    score:\n      enabled: [{{name: ImageLocality, weight: -1}}]\n"),
            "profiles[0].plugins.score.enabled[0].weight: Invalid value: -1: not in valid range [0-100]",
        ),
        (
            "percentage out of range",
            format!("{head}percentageOfNodesToScore: 120\n"),
            "percentageOfNodesToScore: Invalid value: 120: not in valid range [0-100]",
        ),
        (
            "two profiles, one without a name",
            format!("{head}profiles:\n- schedulerName: a\n- {{}}\n"),
            "profiles[1].schedulerName: Required value",
        ),
        (
            "duplicate profile names",
            format!("{head}profiles:\n- schedulerName: a\n- schedulerName: a\n"),
            "profiles[1].schedulerName: Duplicate value: \"a\"",
        ),
        (
            "unknown pluginConfig",
            format!("{head}profiles:\n- pluginConfig:\n  - name: Nope\n    args: {{}}\n"),
            "profiles[0].pluginConfig[0].name: Invalid value: \"Nope\": unknown plugin",
        ),
        (
            "bad scoring strategy",
            format!("{head}profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {{scoringStrategy: {{type: Balanced}}}}\n"),
            "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: \"Balanced\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\"",
        ),
        (
            "unknown arg",
            format!("{head}profiles:\n- pluginConfig:\n  - name: InterPodAffinity\n    args: {{hardPodAffinityWeigth: 2}}\n"),
            "unknown field \"profiles[0].pluginConfig[0].args.hardPodAffinityWeigth\"",
        ),
        (
            "hardPodAffinityWeight out of range",
            format!("{head}profiles:\n- pluginConfig:\n  - name: InterPodAffinity\n    args: {{hardPodAffinityWeight: 101}}\n"),
            "profiles[0].pluginConfig[0].args.hardPodAffinityWeight: Invalid value: 101: not in valid range [0-100]",
        ),
        (
            "extenders",
            format!("{head}extenders: [{{urlPrefix: 'http://x'}}]\n"),
            "extenders: Forbidden: scheduler extenders are not supported",
        ),
        ("not YAML", "{".into(), "invalid KubeSchedulerConfiguration: "),
    ];
    for (name, text, want) in cases {
        let got = parse_config(&text).unwrap_err();
        assert!(got.starts_with(want), "{name}: {got}");
        if !want.ends_with(": ") {
            assert_eq!(got, want, "{name}");
        }
    }
}
