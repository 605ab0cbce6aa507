//! Admission: what kube-apiserver's built-in admission plugins do before an object is stored
//! — NamespaceLifecycle, Priority, ServiceAccount, DefaultTolerationSeconds — plus the
//! server-side allocations (service cluster IPs and node ports, after validation:
//! [`admit_service`]) and post-create hooks.

use crate::status::{ApiError, ApiResult};
use crate::{meta, ApiServer};
use capstan_api::resources::{self, Resource};
use serde_json::{json, Value};
use std::sync::Arc;

/// Namespaces that always exist and can't be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn admit_create(api: &Arc<ApiServer>, res: &Resource, obj: &mut Value) -> ApiResult<()> {
    if res.namespaced {
        namespace_lifecycle(api, meta::namespace(obj).unwrap_or("")).await?;
    }
    match res.kind {
        "Pod" => {
            pod_priority(api, obj).await?;
            pod_service_account(obj);
            default_tolerations(obj, api.config.default_toleration_seconds);
            pod_initial_status(obj);
        }
        "PriorityClass" => priority_class_global_default(api, obj).await?,
        "Namespace" => {
            obj["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
    // Workload templates get the same pod admission where the server can tell (priority class
    // names must resolve when the pods are created, as in kube).
    Ok(())
}

pub async fn admit_update(
    _api: &Arc<ApiServer>,
    res: &Resource,
    old: &Value,
    new: &mut Value,
) -> ApiResult<()> {
    match res.kind {
        "Service" => crate::allocator::patch_allocated_values(old, new),
        "Namespace" if new.pointer("/status/phase").is_none() => {
            new["status"]["phase"] = old
                .pointer("/status/phase")
                .cloned()
                .unwrap_or(json!("Active"));
        }
        "Pod" => {
            // Priority is resolved once, at creation.
            if let Some(p) = old.pointer("/spec/priority") {
                new["spec"]["priority"] = p.clone();
            }
        }
        _ => {}
    }
    Ok(())
}

/// A Service after validation (kube runs validating admission and the REST allocation after
/// the object validated): the externalIPs check, then the cluster IP and node port
/// allocation, reserved until the ticket is committed (or dropped) by the caller.
pub fn admit_service(
    api: &Arc<ApiServer>,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<crate::allocator::Ticket> {
    crate::externalip::admit(&api.config, obj, old)?;
    match old {
        None => api.allocator.allocate(obj),
        Some(old) => api.allocator.update(old, obj),
    }
}

/// NamespaceLifecycle: the namespace must exist and not be terminating.
async fn namespace_lifecycle(api: &Arc<ApiServer>, ns: &str) -> ApiResult<()> {
    let nsres = resources::find("", "v1", "namespaces").expect("namespaces registered");
    let Some(kv) = api.store.get(&nsres.key(None, ns)).await? else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    let v: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
    if v.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
        return Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

async fn priority_classes(api: &Arc<ApiServer>) -> ApiResult<Vec<Value>> {
    let pc = resources::find("scheduling.k8s.io", "v1", "priorityclasses").expect("registered");
    let list = api.store.list(&pc.prefix(None), None, None, 0).await?;
    Ok(list
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

/// Priority admission: priorityClassName → spec.priority (and preemptionPolicy); the
/// globalDefault class for pods that name none; unknown names are refused.
async fn pod_priority(api: &Arc<ApiServer>, pod: &mut Value) -> ApiResult<()> {
    let name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let classes = priority_classes(api).await?;
    let class = if name.is_empty() {
        classes
            .iter()
            .find(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
    } else {
        match classes.iter().find(|c| meta::name(c) == name) {
            Some(c) => Some(c),
            None => {
                return Err(ApiError::forbidden(format!(
                    "pods \"{}\" is forbidden: no PriorityClass with name {name} was found",
                    display_name(pod)
                )))
            }
        }
    };
    let (value, policy, cname) = match class {
        Some(c) => (
            c.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
            meta::name(c).to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string(), String::new()),
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != value {
            return Err(ApiError::forbidden(format!(
                "pods \"{}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
                display_name(pod)
            )));
        }
    }
    let spec = &mut pod["spec"];
    spec["priority"] = json!(value);
    if !cname.is_empty() {
        spec["priorityClassName"] = json!(cname);
    }
    if spec.get("preemptionPolicy").is_none() || class.is_some() {
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

fn display_name(obj: &Value) -> String {
    let n = meta::name(obj);
    if n.is_empty() {
        obj.pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    } else {
        n.to_string()
    }
}

/// Only one PriorityClass may be the global default.
async fn priority_class_global_default(api: &Arc<ApiServer>, pc: &Value) -> ApiResult<()> {
    if pc.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let classes = priority_classes(api).await?;
    if let Some(other) = classes.iter().find(|c| {
        c.get("globalDefault").and_then(Value::as_bool) == Some(true)
            && meta::name(c) != meta::name(pc)
    }) {
        return Err(ApiError::invalid("PriorityClass", "scheduling.k8s.io", meta::name(pc), format!(
            "PriorityClass.scheduling.k8s.io \"{}\" is invalid: globalDefault: Invalid value: true: globalDefault can be set only on one priority class. Priority class {} is already set as global default",
            meta::name(pc), meta::name(other)
        ), vec![json!({"reason":"FieldValueInvalid","field":"globalDefault","message":"globalDefault can be set only on one priority class"})]));
    }
    Ok(())
}

/// ServiceAccount admission: serviceAccountName defaults to "default".
fn pod_service_account(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(sa);
    spec["serviceAccount"] = json!(sa);
}

/// DefaultTolerationSeconds: tolerate not-ready/unreachable NoExecute taints for 300 s.
fn default_tolerations(pod: &mut Value, (not_ready, unreachable): (i64, i64)) {
    let spec = &mut pod["spec"];
    let mut tols = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, secs) in [
        ("node.kubernetes.io/not-ready", not_ready),
        ("node.kubernetes.io/unreachable", unreachable),
    ] {
        let has = tols.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str);
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            (k == Some(key) || (k.is_none() && op == "Exists"))
                && (e.is_empty() || e == "NoExecute")
        });
        if !has {
            tols.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}));
        }
    }
    spec["tolerations"] = json!(tols);
}

/// A new pod is Pending, with its QoS class.
fn pod_initial_status(pod: &mut Value) {
    let qos = qos_class(pod);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// Guaranteed / Burstable / BestEffort as Kubernetes computes it.
pub fn qos_class(pod: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for f in ["containers", "initContainers"] {
        if let Some(a) = pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array) {
            containers.extend(a.iter());
        }
    }
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&serde_json::Map<String, Value>>| {
            m.map(|m| {
                m.iter()
                    .filter(|(k, _)| *k == "cpu" || *k == "memory")
                    .count()
            })
            .unwrap_or(0)
        };
        if relevant(req) > 0 || relevant(lim) > 0 {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(r));
            let q = req.and_then(|m| m.get(r)).or(l);
            match (q, l) {
                (Some(q), Some(l)) if q == l => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// After a namespace is created, its `default` ServiceAccount is created too (kube's
/// service-account controller does this).
pub async fn after_create(api: &Arc<ApiServer>, res: &Resource, obj: &Value) {
    if res.kind == "Namespace" {
        let ns = meta::name(obj).to_string();
        let sa = resources::find("", "v1", "serviceaccounts").expect("registered");
        let body = json!({"kind":"ServiceAccount","apiVersion":"v1","metadata":{
            "name":"default","namespace": ns,"uid": uuid::Uuid::new_v4().to_string(),"creationTimestamp": meta::now()}});
        let _ = api
            .store
            .create(
                &sa.key(Some(&ns), "default"),
                crate::codec::encode_stored(&body),
            )
            .await;
    }
}

/// Eviction (kube's pods/eviction REST): a pod that is pending, terminated or already being
/// deleted goes without a budget; otherwise the one PodDisruptionBudget covering it must allow
/// a disruption — refused with 429 TooManyRequests and a `DisruptionBudget` cause when it does
/// not — and its status is charged first (disruptionsAllowed - 1, the pod in disruptedPods),
/// compare-and-swap, so two evictions never spend one disruption.
pub async fn check_eviction(api: &Arc<ApiServer>, ns: &str, pod_name: &str) -> ApiResult<()> {
    for _ in 0..16 {
        if charge_budget(api, ns, pod_name).await? {
            return Ok(());
        }
    }
    Err(ApiError::too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.",
    ))
}

fn budget_refusal(cause: String) -> ApiError {
    let mut e = ApiError::too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}));
    e
}

/// One attempt; false when the budget changed meanwhile.
async fn charge_budget(api: &Arc<ApiServer>, ns: &str, pod_name: &str) -> ApiResult<bool> {
    let pods = resources::find("", "v1", "pods").expect("registered");
    let Some(kv) = api.store.get(&pods.key(Some(ns), pod_name)).await? else {
        return Err(ApiError::not_found("", "pods", pod_name));
    };
    let pod: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(phase, "Succeeded" | "Failed" | "Pending" | "")
        || meta::deletion_timestamp(&pod).is_some()
    {
        return Ok(true);
    }
    let empty = serde_json::Map::new();
    let labels = meta::labels(&pod).unwrap_or(&empty);
    let pdbs = resources::find("policy", "v1", "poddisruptionbudgets").expect("registered");
    let list = api
        .store
        .list(&pdbs.prefix(Some(ns)), None, None, 0)
        .await?;
    let mut matching = Vec::new();
    for kv in list.kvs {
        let pdb: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        let Some(sel) = pdb.pointer("/spec/selector") else {
            continue;
        };
        let Ok(sel) = capstan_printers::selectors::LabelSelector::from_json(sel) else {
            continue;
        };
        if sel.matches(labels) {
            matching.push((kv, pdb));
        }
    }
    let Some((kv, mut pdb)) = matching.pop() else {
        return Ok(true);
    };
    if !matching.is_empty() {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    if int("/status/observedGeneration") < int("/metadata/generation") {
        return Err(budget_refusal(format!(
            "The disruption budget {} is still being processed by the server.",
            meta::name(&pdb)
        )));
    }
    let allowed = int("/status/disruptionsAllowed");
    if allowed <= 0 {
        return Err(budget_refusal(format!(
            "The disruption budget {} needs {} healthy pods and has {} currently",
            meta::name(&pdb),
            int("/status/desiredHealthy"),
            int("/status/currentHealthy")
        )));
    }
    pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !pdb["status"]["disruptedPods"].is_object() {
        pdb["status"]["disruptedPods"] = json!({});
    }
    pdb["status"]["disruptedPods"][pod_name] = json!(meta::now());
    match api
        .store
        .update(&kv.key, crate::codec::encode_stored(&pdb), kv.mod_revision)
        .await
    {
        Ok(_) => Ok(true),
        Err(capstan_store::Error::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
