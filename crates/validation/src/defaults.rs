//! Defaulting, as Kubernetes' generated `SetDefaults_*` functions do for each kind
//! (including the pod template embedded in workloads).

use serde_json::{json, Map, Value};

use crate::service::is_headless;
use crate::util::{ensure_obj, get, has, s, sd, set_default};

/// `imagePullPolicy` default: Always for `:latest` or untagged images, else IfNotPresent.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => "Always",
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(a) = v.get_mut(k).and_then(Value::as_array_mut) {
        for x in a.iter_mut().filter(|x| x.is_object()) {
            f(x);
        }
    }
}

fn default_probe(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    set_default(p, "timeoutSeconds", json!(1));
    set_default(p, "periodSeconds", json!(10));
    set_default(p, "successThreshold", json!(1));
    set_default(p, "failureThreshold", json!(3));
    default_handler(p);
}

fn default_handler(h: &mut Value) {
    if let Some(g) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        set_default(g, "path", json!("/"));
        set_default(g, "scheme", json!("HTTP"));
    }
}

fn default_container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let policy = default_pull_policy(sd(c, "image"));
    set_default(c, "imagePullPolicy", json!(policy));
    each_mut(c, "ports", |p| set_default(p, "protocol", json!("TCP")));
    each_mut(c, "env", |e| {
        if let Some(fr) = e
            .get_mut("valueFrom")
            .and_then(|vf| vf.get_mut("fieldRef"))
            .filter(|f| f.is_object())
        {
            set_default(fr, "apiVersion", json!("v1"));
        }
    });
    set_default(c, "resources", json!({}));
    // SetDefaults_Pod: requests default to limits.
    if let Some(limits) = c["resources"]
        .get("limits")
        .and_then(Value::as_object)
        .cloned()
    {
        let res = &mut c["resources"];
        let req = ensure_obj(res, "requests");
        if let Some(r) = req.as_object_mut() {
            for (k, v) in limits {
                r.entry(k).or_insert(v);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            default_probe(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for h in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(h).filter(|h| h.is_object()) {
                default_handler(h);
            }
        }
    }
}

const VOLUME_SOURCES_WITH_MODE: &[&str] = &["secret", "configMap", "downwardAPI", "projected"];

fn default_volume(v: &mut Value) {
    let has_source = v
        .as_object()
        .is_some_and(|m| m.iter().any(|(k, x)| k != "name" && !x.is_null()));
    if !has_source {
        set_default(v, "emptyDir", json!({}));
        return;
    }
    for src in VOLUME_SOURCES_WITH_MODE {
        if let Some(s) = v.get_mut(*src).filter(|s| s.is_object()) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        set_default(h, "type", json!(""));
    }
    if let Some(e) = v.get_mut("ephemeral") {
        if let Some(spec) = e
            .get_mut("volumeClaimTemplate")
            .and_then(|t| t.get_mut("spec"))
        {
            default_pvc_spec(spec);
        }
    }
}

fn default_pvc_spec(spec: &mut Value) {
    set_default(spec, "volumeMode", json!("Filesystem"));
}

/// SetDefaults_PodSpec and the container/volume defaults under it.
pub(crate) fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in ["initContainers", "containers"] {
        each_mut(spec, list, |c| {
            default_container(c);
            if host_network {
                each_mut(c, "ports", |p| {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p["hostPort"] = cp;
                        }
                    }
                });
            }
        });
    }
    each_mut(spec, "ephemeralContainers", default_container);
    each_mut(spec, "volumes", default_volume);
}

fn default_template(tpl: Option<&mut Value>) {
    if let Some(spec) = tpl.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

fn default_pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        default_pod_spec(spec);
        // PrepareForCreate: a negative grace period becomes 1.
        if spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g < 0)
        {
            spec["terminationGracePeriodSeconds"] = json!(1);
        }
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = sd(spec, "type").to_string();
    if sd(spec, "sessionAffinity") == "ClientIP" {
        let cfg = ensure_obj(spec, "sessionAffinityConfig");
        let cip = ensure_obj(cfg, "clientIP");
        set_default(cip, "timeoutSeconds", json!(10800));
    }
    each_mut(spec, "ports", |p| {
        set_default(p, "protocol", json!("TCP"));
        if !has(p, "targetPort")
            || p.get("targetPort") == Some(&json!(0))
            || p.get("targetPort") == Some(&json!(""))
        {
            if let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        }
    });
    if ty == "ExternalName" {
        return;
    }
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // clusterIPs mirrors clusterIP.
    if let Some(ip) = s(spec, "clusterIP")
        .filter(|ip| !ip.is_empty())
        .map(str::to_string)
    {
        set_default(spec, "clusterIPs", json!([ip]));
    }
    let headless_no_selector = is_headless(spec)
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    let policy = if headless_no_selector {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    set_default(spec, "ipFamilyPolicy", json!(policy));
    let family = match s(spec, "clusterIP") {
        Some(ip) if ip.contains(':') => "IPv6",
        _ => "IPv4",
    };
    set_default(spec, "ipFamilies", json!([family]));
}

fn default_deployment(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    let strategy = ensure_obj(spec, "strategy");
    set_default(strategy, "type", json!("RollingUpdate"));
    if sd(strategy, "type") == "RollingUpdate" {
        let ru = ensure_obj(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec.get_mut("template"));
}

fn default_replicated(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    default_template(spec.get_mut("template"));
}

fn default_rc(obj: &mut Value) {
    let labels = get(get(get(get(obj, "spec"), "template"), "metadata"), "labels").clone();
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        if labels.as_object().is_some_and(|l| !l.is_empty())
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        {
            spec["selector"] = labels.clone();
        }
    }
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        let meta = ensure_obj(obj, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta["labels"] = labels;
        }
    }
    default_replicated(obj);
}

fn default_daemon_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    let us = ensure_obj(spec, "updateStrategy");
    set_default(us, "type", json!("RollingUpdate"));
    if sd(us, "type") == "RollingUpdate" {
        let ru = ensure_obj(us, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(spec.get_mut("template"));
}

fn default_stateful_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    let us = ensure_obj(spec, "updateStrategy");
    set_default(us, "type", json!("RollingUpdate"));
    if sd(us, "type") == "RollingUpdate" {
        let ru = ensure_obj(us, "rollingUpdate");
        set_default(ru, "partition", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    let pol = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy");
    set_default(pol, "whenDeleted", json!("Retain"));
    set_default(pol, "whenScaled", json!("Retain"));
    each_mut(spec, "volumeClaimTemplates", |t| {
        if let Some(s) = t.get_mut("spec").filter(|s| s.is_object()) {
            default_pvc_spec(s);
        }
    });
    default_template(spec.get_mut("template"));
}

fn default_job(obj: &mut Value) {
    let labels = get(get(get(get(obj, "spec"), "template"), "metadata"), "labels").clone();
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        let meta = ensure_obj(obj, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta["labels"] = labels;
        }
    }
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if !has(spec, "completions") && !has(spec, "parallelism") {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    let backoff = if has(spec, "backoffLimitPerIndex") {
        i64::from(i32::MAX)
    } else {
        6
    };
    set_default(spec, "backoffLimit", json!(backoff));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let replacement = if has(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    set_default(spec, "manualSelector", json!(false));
    default_template(spec.get_mut("template"));
}

/// Label keys Kubernetes puts on a Job's pods and selector when it generates the selector.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The legacy spelling of [`JOB_CONTROLLER_UID_LABEL`].
pub const LEGACY_JOB_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// Job name label on a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The legacy spelling of [`JOB_NAME_LABEL`].
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// The Job strategy's `generateSelector`: unless `spec.manualSelector` is true, adds the
/// controller-uid and job-name labels to the pod template and selects on the uid.
/// Call after `metadata.uid` is set, before [`crate::validate`].
pub fn job_generate_selector(obj: &mut Value) {
    let spec = get(obj, "spec");
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let meta = get(obj, "metadata");
    let uid = sd(meta, "uid").to_string();
    let name = sd(meta, "name").to_string();
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    let tpl = ensure_obj(spec, "template");
    let tmeta = ensure_obj(tpl, "metadata");
    let labels = ensure_obj(tmeta, "labels");
    for k in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        set_default(labels, k, json!(name));
    }
    for k in [LEGACY_JOB_CONTROLLER_UID_LABEL, JOB_CONTROLLER_UID_LABEL] {
        set_default(labels, k, json!(uid));
    }
    let sel = ensure_obj(spec, "selector");
    let ml = ensure_obj(sel, "matchLabels");
    set_default(ml, JOB_CONTROLLER_UID_LABEL, json!(uid));
}

fn default_cron_job(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(js) = spec.get_mut("jobTemplate").and_then(|j| j.get_mut("spec")) {
        default_template(js.get_mut("template"));
    }
}

fn default_hpa(obj: &mut Value, version: &str) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    set_default(spec, "minReplicas", json!(1));
    if version != "v2" {
        return;
    }
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
    if let Some(b) = spec.get_mut("behavior").filter(|b| b.is_object()) {
        let up = ensure_obj(b, "scaleUp");
        set_default(up, "stabilizationWindowSeconds", json!(0));
        set_default(up, "selectPolicy", json!("Max"));
        set_default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = ensure_obj(b, "scaleDown");
        set_default(down, "selectPolicy", json!("Max"));
        set_default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

fn default_namespace(obj: &mut Value) {
    let spec = ensure_obj(obj, "spec");
    set_default(spec, "finalizers", json!(["kubernetes"]));
    let status = ensure_obj(obj, "status");
    set_default(status, "phase", json!("Active"));
}

fn default_node(obj: &mut Value) {
    if let Some(status) = obj.get_mut("status").filter(|s| s.is_object()) {
        if let Some(cap) = status.get("capacity").cloned().filter(|c| c.is_object()) {
            set_default(status, "allocatable", cap);
        }
    }
}

fn default_endpoint_slice(obj: &mut Value) {
    each_mut(obj, "ports", |p| {
        set_default(p, "name", json!(""));
        set_default(p, "protocol", json!("TCP"));
    });
}

fn default_endpoints(obj: &mut Value) {
    each_mut(obj, "subsets", |s| {
        each_mut(s, "ports", |p| set_default(p, "protocol", json!("TCP")))
    });
}

fn default_network_policy(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    for dir in ["ingress", "egress"] {
        each_mut(spec, dir, |r| {
            each_mut(r, "ports", |p| set_default(p, "protocol", json!("TCP")))
        });
    }
    if spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = Value::Array(types);
    }
}

fn default_pvc(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        default_pvc_spec(spec);
    }
}

fn default_pv(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
    let status = ensure_obj(obj, "status");
    set_default(status, "phase", json!("Pending"));
}

/// Applies the kind's defaults in place.
pub(crate) fn default_kind(group: &str, version: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => default_pod(obj),
        ("", "Service") => default_service(obj),
        ("", "Secret") => set_default(obj, "type", json!("Opaque")),
        ("", "ReplicationController") => default_rc(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Node") => default_node(obj),
        ("", "Endpoints") => default_endpoints(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "PersistentVolume") => default_pv(obj),
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => default_replicated(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(obj, version),
        ("scheduling.k8s.io", "PriorityClass") => {
            set_default(obj, "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        ("discovery.k8s.io", "EndpointSlice") => default_endpoint_slice(obj),
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(obj),
        _ => {}
    }
}
