//! [`parse_config`]: a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1, YAML or
//! JSON) into [`Profile`]s — plugins per extension point merged over kube's default
//! multiPoint set as kube does, pluginConfig args, percentageOfNodesToScore — rejecting, with
//! the field's path, what is wrong or what this scheduler cannot honour.

use crate::config::{Profile, StrategyType, FILTER_PLUGINS, SCORE_PLUGINS};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The in-tree plugins of kube-scheduler v1.32 and the extension points each implements.
const REGISTRY: &[(&str, &[&str])] = &[
    ("SchedulingGates", &["preEnqueue"]),
    ("PrioritySort", &["queueSort"]),
    ("NodeUnschedulable", &["filter"]),
    ("NodeName", &["filter"]),
    ("TaintToleration", &["filter", "preScore", "score"]),
    (
        "NodeAffinity",
        &["preFilter", "filter", "preScore", "score"],
    ),
    ("NodePorts", &["preFilter", "filter"]),
    (
        "NodeResourcesFit",
        &["preFilter", "filter", "preScore", "score"],
    ),
    ("VolumeRestrictions", &["preFilter", "filter"]),
    ("NodeVolumeLimits", &["preFilter", "filter"]),
    (
        "VolumeBinding",
        &[
            "preFilter",
            "filter",
            "reserve",
            "preBind",
            "preScore",
            "score",
        ],
    ),
    ("VolumeZone", &["preFilter", "filter"]),
    (
        "PodTopologySpread",
        &["preFilter", "filter", "preScore", "score"],
    ),
    (
        "InterPodAffinity",
        &["preFilter", "filter", "preScore", "score"],
    ),
    ("DefaultPreemption", &["postFilter"]),
    ("NodeResourcesBalancedAllocation", &["preScore", "score"]),
    ("ImageLocality", &["score"]),
    ("DefaultBinder", &["bind"]),
    (
        "DynamicResources",
        &[
            "preEnqueue",
            "preFilter",
            "filter",
            "postFilter",
            "reserve",
            "preBind",
        ],
    ),
];

const POINTS: [&str; 13] = [
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
    "postBind",
    "multiPoint",
];

/// kube's default multiPoint set (v1.32), with weights.
const DEFAULT_MULTI_POINT: &[(&str, Option<i64>)] = &[
    ("SchedulingGates", None),
    ("PrioritySort", None),
    ("NodeUnschedulable", None),
    ("NodeName", None),
    ("TaintToleration", Some(3)),
    ("NodeAffinity", Some(2)),
    ("NodePorts", None),
    ("NodeResourcesFit", Some(1)),
    ("VolumeRestrictions", None),
    ("NodeVolumeLimits", None),
    ("VolumeBinding", None),
    ("VolumeZone", None),
    ("PodTopologySpread", Some(2)),
    ("InterPodAffinity", Some(2)),
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", Some(1)),
    ("ImageLocality", Some(1)),
    ("DefaultBinder", None),
];

fn implements(plugin: &str, point: &str) -> bool {
    REGISTRY
        .iter()
        .any(|(n, points)| *n == plugin && points.contains(&point))
}

fn known(plugin: &str) -> bool {
    REGISTRY.iter().any(|(n, _)| *n == plugin)
}

type Obj = Map<String, Value>;

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, String> {
    v.as_object()
        .ok_or_else(|| format!("{path}: Invalid value: {v}: expected an object"))
}

fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{path}: Invalid value: {v}: expected a list"))
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{path}: Invalid value: {v}: expected a string"))
}

fn boolean(v: &Value, path: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{path}: Invalid value: {v}: expected a boolean"))
}

fn int(v: &Value, path: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = v
        .as_i64()
        .ok_or_else(|| format!("{path}: Invalid value: {v}: expected an integer"))?;
    if n < lo || n > hi {
        return Err(format!(
            "{path}: Invalid value: {n}: not in valid range [{lo}-{hi}]"
        ));
    }
    Ok(n)
}

fn fields(o: &Obj, path: &str, allowed: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if path.is_empty() => Err(format!("unknown field \"{k}\"")),
        Some(k) => Err(format!("unknown field \"{path}.{k}\"")),
        None => Ok(()),
    }
}

#[derive(Default)]
struct PluginSet {
    enabled: Vec<(String, Option<i64>)>,
    disabled: Vec<String>,
}

fn plugin_set(v: &Value, path: &str, point: &str) -> Result<PluginSet, String> {
    let o = object(v, path)?;
    fields(o, path, &["enabled", "disabled"])?;
    let mut set = PluginSet::default();
    for (i, p) in o
        .get("enabled")
        .map(|e| array(e, &format!("{path}.enabled")))
        .transpose()?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}.enabled[{i}]");
        let p = object(p, &at)?;
        fields(p, &at, &["name", "weight"])?;
        let name = string(p.get("name").unwrap_or(&Value::Null), &format!("{at}.name"))?;
        if !known(name) {
            return Err(format!(
                "{at}.name: Invalid value: \"{name}\": unknown plugin"
            ));
        }
        if point != "multiPoint" && !implements(name, point) {
            return Err(format!(
                "{at}.name: Invalid value: \"{name}\": plugin does not extend {point}"
            ));
        }
        if set.enabled.iter().any(|(n, _)| n == name) {
            return Err(format!("{at}.name: Duplicate value: \"{name}\""));
        }
        let weight = p
            .get("weight")
            .map(|w| int(w, &format!("{at}.weight"), 0, 100))
            .transpose()?;
        set.enabled.push((name.to_string(), weight));
    }
    for (i, p) in o
        .get("disabled")
        .map(|e| array(e, &format!("{path}.disabled")))
        .transpose()?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}.disabled[{i}]");
        let p = object(p, &at)?;
        fields(p, &at, &["name"])?;
        let name = string(p.get("name").unwrap_or(&Value::Null), &format!("{at}.name"))?;
        if name != "*" && !known(name) {
            return Err(format!(
                "{at}.name: Invalid value: \"{name}\": unknown plugin"
            ));
        }
        set.disabled.push(name.to_string());
    }
    Ok(set)
}

/// kube's mergePluginSet: defaults not disabled (custom ones replacing them in place), then
/// the other custom ones.
fn merge(defaults: &[(&str, Option<i64>)], custom: &PluginSet) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    let mut replaced = BTreeSet::new();
    if !custom.disabled.iter().any(|d| d == "*") {
        for (name, w) in defaults {
            if custom.disabled.iter().any(|d| d == name) {
                continue;
            }
            match custom.enabled.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    replaced.insert(i);
                    out.push(custom.enabled[i].clone());
                }
                None => out.push((name.to_string(), *w)),
            }
        }
    }
    for (i, p) in custom.enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            out.push(p.clone());
        }
    }
    out
}

/// The plugins that run at `point` (explicit ones first, then the multiPoint expansion) with
/// their weights.
fn effective(
    point: &str,
    sets: &BTreeMap<String, PluginSet>,
    multi: &[(String, Option<i64>)],
) -> Vec<(String, Option<i64>)> {
    let empty = PluginSet::default();
    let set = sets.get(point).unwrap_or(&empty);
    let mut out = set.enabled.clone();
    if !set.disabled.iter().any(|d| d == "*") {
        for (name, w) in multi {
            if implements(name, point)
                && !set.disabled.contains(name)
                && !out.iter().any(|(n, _)| n == name)
            {
                out.push((name.clone(), *w));
            }
        }
    }
    out
}

fn resource_list(v: &Value, path: &str, weights: bool) -> Result<Vec<(String, i64)>, String> {
    let mut out = Vec::new();
    for (i, r) in array(v, path)?.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let r = object(r, &at)?;
        fields(r, &at, &["name", "weight"])?;
        let name = string(r.get("name").unwrap_or(&Value::Null), &format!("{at}.name"))?;
        let weight = match r.get("weight") {
            Some(w) if weights => match int(w, &format!("{at}.weight"), 0, 100)? {
                0 => 1,
                w => w,
            },
            Some(w) => int(w, &format!("{at}.weight"), 0, i64::MAX)?,
            None => 1,
        };
        out.push((name.to_string(), weight));
    }
    Ok(out)
}

fn fit_args(a: &Obj, path: &str, p: &mut Profile) -> Result<(), String> {
    fields(
        a,
        path,
        &[
            "apiVersion",
            "kind",
            "ignoredResources",
            "ignoredResourceGroups",
            "scoringStrategy",
        ],
    )?;
    for (key, into) in [
        ("ignoredResources", &mut p.ignored_resources),
        ("ignoredResourceGroups", &mut p.ignored_resource_groups),
    ] {
        if let Some(v) = a.get(key) {
            let at = format!("{path}.{key}");
            for (i, r) in array(v, &at)?.iter().enumerate() {
                into.insert(string(r, &format!("{at}[{i}]"))?.to_string());
            }
        }
    }
    let Some(s) = a.get("scoringStrategy") else {
        return Ok(());
    };
    let path = format!("{path}.scoringStrategy");
    let s = object(s, &path)?;
    fields(s, &path, &["type", "resources", "requestedToCapacityRatio"])?;
    let st = &mut p.scoring_strategy;
    if let Some(t) = s.get("type") {
        st.kind = match string(t, &format!("{path}.type"))? {
            "LeastAllocated" => StrategyType::LeastAllocated,
            "MostAllocated" => StrategyType::MostAllocated,
            "RequestedToCapacityRatio" => StrategyType::RequestedToCapacityRatio,
            other => {
                return Err(format!("{path}.type: Unsupported value: \"{other}\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""))
            }
        };
    }
    if let Some(r) = s.get("resources") {
        st.resources = resource_list(r, &format!("{path}.resources"), true)?;
    }
    if let Some(r) = s.get("requestedToCapacityRatio") {
        let at = format!("{path}.requestedToCapacityRatio");
        let r = object(r, &at)?;
        fields(r, &at, &["shape"])?;
        if let Some(shape) = r.get("shape") {
            let at = format!("{at}.shape");
            st.shape.clear();
            for (i, pt) in array(shape, &at)?.iter().enumerate() {
                let pa = format!("{at}[{i}]");
                let pt = object(pt, &pa)?;
                fields(pt, &pa, &["utilization", "score"])?;
                let u = int(
                    pt.get("utilization").unwrap_or(&Value::Null),
                    &format!("{pa}.utilization"),
                    0,
                    100,
                )?;
                let sc = int(
                    pt.get("score").unwrap_or(&Value::Null),
                    &format!("{pa}.score"),
                    0,
                    10,
                )?;
                if st.shape.last().is_some_and(|(lu, _)| *lu >= u) {
                    return Err(format!("{pa}.utilization: Invalid value: {u}: utilization values must be sorted in increasing order"));
                }
                st.shape.push((u, sc));
            }
            if st.shape.is_empty() {
                return Err(format!(
                    "{at}: Required value: at least one point must be specified"
                ));
            }
        }
    }
    Ok(())
}

fn plugin_args(name: &str, a: &Obj, path: &str, p: &mut Profile) -> Result<(), String> {
    match name {
        "NodeResourcesFit" => fit_args(a, path, p),
        "NodeResourcesBalancedAllocation" => {
            fields(a, path, &["apiVersion", "kind", "resources"])?;
            if let Some(r) = a.get("resources") {
                p.balanced_resources = resource_list(r, &format!("{path}.resources"), false)?
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
            }
            Ok(())
        }
        "InterPodAffinity" => {
            fields(
                a,
                path,
                &[
                    "apiVersion",
                    "kind",
                    "hardPodAffinityWeight",
                    "ignorePreferredTermsOfExistingPods",
                ],
            )?;
            if let Some(w) = a.get("hardPodAffinityWeight") {
                p.hard_pod_affinity_weight =
                    int(w, &format!("{path}.hardPodAffinityWeight"), 0, 100)?;
            }
            if let Some(b) = a.get("ignorePreferredTermsOfExistingPods") {
                p.ignore_preferred_terms_of_existing_pods =
                    boolean(b, &format!("{path}.ignorePreferredTermsOfExistingPods"))?;
            }
            Ok(())
        }
        "DefaultPreemption" => {
            fields(
                a,
                path,
                &[
                    "apiVersion",
                    "kind",
                    "minCandidateNodesPercentage",
                    "minCandidateNodesAbsolute",
                ],
            )?;
            if let Some(v) = a.get("minCandidateNodesPercentage") {
                p.min_candidate_nodes_percentage =
                    int(v, &format!("{path}.minCandidateNodesPercentage"), 0, 100)? as u32;
            }
            if let Some(v) = a.get("minCandidateNodesAbsolute") {
                p.min_candidate_nodes_absolute = int(
                    v,
                    &format!("{path}.minCandidateNodesAbsolute"),
                    0,
                    u32::MAX as i64,
                )? as u32;
            }
            if p.min_candidate_nodes_percentage == 0 && p.min_candidate_nodes_absolute == 0 {
                return Err(format!("{path}: Invalid value: minCandidateNodesPercentage and minCandidateNodesAbsolute cannot be zero at the same time"));
            }
            Ok(())
        }
        "PodTopologySpread" => {
            fields(
                a,
                path,
                &["apiVersion", "kind", "defaultConstraints", "defaultingType"],
            )?;
            if a.get("defaultConstraints")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
            {
                return Err(format!("{path}.defaultConstraints: Forbidden: default topology spread constraints are not supported"));
            }
            Ok(())
        }
        "NodeAffinity" => {
            fields(a, path, &["apiVersion", "kind", "addedAffinity"])?;
            if a.get("addedAffinity").is_some_and(|v| !v.is_null()) {
                return Err(format!(
                    "{path}.addedAffinity: Forbidden: addedAffinity is not supported"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn profile(
    v: &Value,
    path: &str,
    global_pct: Option<u32>,
    single: bool,
) -> Result<Profile, String> {
    let o = object(v, path)?;
    fields(
        o,
        path,
        &[
            "schedulerName",
            "percentageOfNodesToScore",
            "plugins",
            "pluginConfig",
        ],
    )?;
    let mut p = Profile::default();
    match o.get("schedulerName") {
        Some(n) => p.scheduler_name = string(n, &format!("{path}.schedulerName"))?.to_string(),
        None if single => {}
        None => return Err(format!("{path}.schedulerName: Required value")),
    }
    if p.scheduler_name.is_empty() {
        return Err(format!("{path}.schedulerName: Required value"));
    }
    p.percentage_of_nodes_to_score = match o.get("percentageOfNodesToScore") {
        Some(v) if !v.is_null() => {
            Some(int(v, &format!("{path}.percentageOfNodesToScore"), 0, 100)? as u32)
        }
        _ => global_pct,
    };
    let mut sets = BTreeMap::new();
    if let Some(plugins) = o.get("plugins") {
        let at = format!("{path}.plugins");
        let po = object(plugins, &at)?;
        fields(po, &at, &POINTS)?;
        for (point, set) in po {
            sets.insert(
                point.clone(),
                plugin_set(set, &format!("{at}.{point}"), point)?,
            );
        }
    }
    let multi = merge(
        DEFAULT_MULTI_POINT,
        sets.get("multiPoint").unwrap_or(&PluginSet::default()),
    );
    let filters = effective("filter", &sets, &multi);
    p.disabled_filters = FILTER_PLUGINS
        .iter()
        .filter(|f| !filters.iter().any(|(n, _)| n == *f))
        .map(|f| f.to_string())
        .collect();
    let scores = effective("score", &sets, &multi);
    p.score_weights = scores
        .iter()
        .filter(|(n, _)| SCORE_PLUGINS.iter().any(|(s, _)| s == n))
        .map(|(n, w)| (n.clone(), w.filter(|w| *w > 0).unwrap_or(1)))
        .collect();
    p.disabled_scores = SCORE_PLUGINS
        .iter()
        .filter(|(s, _)| !p.score_weights.contains_key(*s))
        .map(|(s, _)| s.to_string())
        .collect();
    p.disable_preemption = !effective("postFilter", &sets, &multi)
        .iter()
        .any(|(n, _)| n == "DefaultPreemption");
    let mut configured = BTreeSet::new();
    if let Some(pc) = o.get("pluginConfig") {
        let at = format!("{path}.pluginConfig");
        for (i, c) in array(pc, &at)?.iter().enumerate() {
            let ci = format!("{at}[{i}]");
            let c = object(c, &ci)?;
            fields(c, &ci, &["name", "args"])?;
            let name = string(c.get("name").unwrap_or(&Value::Null), &format!("{ci}.name"))?;
            if !known(name) {
                return Err(format!(
                    "{ci}.name: Invalid value: \"{name}\": unknown plugin"
                ));
            }
            if !configured.insert(name.to_string()) {
                return Err(format!("{ci}.name: Duplicate value: \"{name}\""));
            }
            if let Some(args) = c.get("args").filter(|a| !a.is_null()) {
                let aa = format!("{ci}.args");
                plugin_args(name, object(args, &aa)?, &aa, &mut p)?;
            }
        }
    }
    Ok(p)
}

/// Reads a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1, YAML or JSON) into its
/// profiles (one default-scheduler profile when it lists none). Unknown fields, unknown
/// plugins, a plugin at an extension point it does not implement, values out of range, a bad
/// apiVersion or kind, and what this scheduler cannot honour (extenders, default topology
/// spread constraints, addedAffinity) are errors naming the field.
pub fn parse_config(text: &str) -> Result<Vec<Profile>, String> {
    let v: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| format!("invalid KubeSchedulerConfiguration: {e}"))?
    } else {
        serde_yaml_ng::from_str(text)
            .map_err(|e| format!("invalid KubeSchedulerConfiguration: {e}"))?
    };
    let o = object(&v, "KubeSchedulerConfiguration")?;
    fields(
        o,
        "",
        &[
            "apiVersion",
            "kind",
            "parallelism",
            "leaderElection",
            "clientConnection",
            "healthzBindAddress",
            "metricsBindAddress",
            "enableProfiling",
            "enableContentionProfiling",
            "percentageOfNodesToScore",
            "podInitialBackoffSeconds",
            "podMaxBackoffSeconds",
            "profiles",
            "extenders",
            "delayCacheUntilActive",
        ],
    )?;
    const API: &str = "kubescheduler.config.k8s.io/v1";
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(API) => {}
        Some(other) => {
            return Err(format!(
                "apiVersion: Unsupported value: \"{other}\": supported values: \"{API}\""
            ))
        }
        None => return Err("apiVersion: Required value".into()),
    }
    match o.get("kind").and_then(Value::as_str) {
        Some("KubeSchedulerConfiguration") => {}
        Some(other) => return Err(format!("kind: Unsupported value: \"{other}\": supported values: \"KubeSchedulerConfiguration\"")),
        None => return Err("kind: Required value".into()),
    }
    if o.get("extenders")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty())
    {
        return Err("extenders: Forbidden: scheduler extenders are not supported".into());
    }
    let pct = match o.get("percentageOfNodesToScore") {
        Some(v) if !v.is_null() => Some(int(v, "percentageOfNodesToScore", 0, 100)? as u32),
        _ => None,
    };
    let empty = vec![Value::Object(Map::new())];
    let list = match o.get("profiles") {
        Some(p) if !p.is_null() => array(p, "profiles")?,
        _ => &empty,
    };
    let list = if list.is_empty() { &empty } else { list };
    let mut out: Vec<Profile> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let path = format!("profiles[{i}]");
        let p = profile(p, &path, pct, list.len() == 1)?;
        if out.iter().any(|o| o.scheduler_name == p.scheduler_name) {
            return Err(format!(
                "{path}.schedulerName: Duplicate value: \"{}\"",
                p.scheduler_name
            ));
        }
        out.push(p);
    }
    Ok(out)
}
