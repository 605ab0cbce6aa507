//! Defaulting per kind (SetDefaults_*), checked against what kube-apiserver stores.

mod common;

use capstan_validation::{default_object, default_pull_policy};
use common::*;
use serde_json::{json, Value};

fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
    default_object(res(api_version, kind), &mut obj);
    obj
}

#[test]
fn pull_policy() {
    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry:5000/app", "Always"),
        ("registry:5000/app:v1", "IfNotPresent"),
        ("app@sha256:abcd", "IfNotPresent"),
    ] {
        assert_eq!(default_pull_policy(image), want, "{image}");
    }
}

#[test]
fn pod_defaults() {
    let p = defaulted(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}},
            "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "s", "secret": {"secretName": "x"}}, {"name": "e"}, {"name": "cm", "configMap": {"name": "c"}}],
        "tolerations": [{"operator": "Exists"}]}}),
    );
    let spec = &p["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
    let c = &spec["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
    assert_eq!(spec["volumes"][2]["configMap"]["defaultMode"], 420);
    // Idempotent.
    assert_eq!(defaulted("v1", "Pod", p.clone()), p);
}

#[test]
fn service_defaults() {
    let s = defaulted(
        "v1",
        "Service",
        json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(
        s["spec"]["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
    assert!(s["spec"].get("externalTrafficPolicy").is_none());
    let np = defaulted(
        "v1",
        "Service",
        json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.5", "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["clusterIPs"], json!(["10.0.0.5"]));
    assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
    let en = defaulted(
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
    );
    assert!(en["spec"].get("ipFamilies").is_none());
    let hl = defaulted("v1", "Service", json!({"spec": {"clusterIP": "None"}}));
    assert_eq!(hl["spec"]["ipFamilyPolicy"], "RequireDualStack");
    let ca = defaulted(
        "v1",
        "Service",
        json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}}),
    );
    assert_eq!(
        ca["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
}

#[test]
fn workload_defaults() {
    let tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
    let d = defaulted("apps/v1", "Deployment", json!({"spec": {"template": tpl}}));
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );

    let ds = defaulted("apps/v1", "DaemonSet", json!({"spec": {"template": tpl}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

    let sts = defaulted("apps/v1", "StatefulSet", json!({"spec": {"template": tpl}}));
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );

    let rs = defaulted("apps/v1", "ReplicaSet", json!({"spec": {"template": tpl}}));
    assert_eq!(rs["spec"]["replicas"], 1);

    let rc = defaulted(
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "r"}, "spec": {"template": tpl}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(rc["spec"]["replicas"], 1);

    let job = defaulted(
        "batch/v1",
        "Job",
        json!({"metadata": {"name": "j"}, "spec": {"template": tpl}}),
    );
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ("manualSelector", json!(false)),
    ] {
        assert_eq!(job["spec"][k], v, "{k}");
    }
    assert_eq!(job["metadata"]["labels"], json!({"app": "web"}));
    let par = defaulted(
        "batch/v1",
        "Job",
        json!({"spec": {"parallelism": 3, "template": tpl}}),
    );
    assert!(par["spec"].get("completions").is_none());

    let cj = defaulted(
        "batch/v1",
        "CronJob",
        json!({"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": tpl}}}}),
    );
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn other_defaults() {
    let hpa = defaulted(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 3}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    let hpa1 = defaulted(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 3}}),
    );
    assert_eq!(hpa1["spec"]["minReplicas"], 1);
    assert!(hpa1["spec"].get("metrics").is_none());
    let pc = defaulted("scheduling.k8s.io/v1", "PriorityClass", json!({"value": 1}));
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    let ns = defaulted("v1", "Namespace", json!({"metadata": {"name": "x"}}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    let sec = defaulted("v1", "Secret", json!({"metadata": {"name": "x"}}));
    assert_eq!(sec["type"], "Opaque");
    let np = defaulted(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let es = defaulted(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        es["ports"][0],
        json!({"port": 80, "name": "", "protocol": "TCP"})
    );
    let node = defaulted("v1", "Node", json!({"status": {"capacity": {"cpu": "4"}}}));
    assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
}
