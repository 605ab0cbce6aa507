//! Bodies `kubectl create …` / `kubectl run` send (kubectl 1.32), with the namespace the server
//! fills in from the URL: they must default and validate cleanly, with no unknown fields.

mod common;

use common::*;
use serde_json::{json, Value};

fn with_ns(mut v: Value, namespaced: bool) -> Value {
    if namespaced {
        v["metadata"]["namespace"] = json!("default");
    }
    v
}

#[test]
fn kubectl_create_bodies_are_valid() {
    let bodies: Vec<(&str, &str, Value)> = vec![
        (
            "v1",
            "Pod",
            json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"nginx","creationTimestamp":null,"labels":{"run":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst"},"status":{}}),
        ),
        (
            "apps/v1",
            "Deployment",
            json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},"strategy":{}},"status":{}}),
        ),
        (
            "v1",
            "Service",
            json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"my-svc","creationTimestamp":null,"labels":{"app":"my-svc"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"my-svc"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}),
        ),
        (
            "v1",
            "Service",
            json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"np","creationTimestamp":null},"spec":{"ports":[{"name":"80","protocol":"TCP","port":80,"targetPort":80}],"selector":{"app":"np"},"type":"NodePort"},"status":{"loadBalancer":{}}}),
        ),
        (
            "batch/v1",
            "CronJob",
            json!({"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"hello","creationTimestamp":null},"spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"hello","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"hello","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}),
        ),
        (
            "v1",
            "Secret",
            json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","creationTimestamp":null},"data":{"k":"dg=="}}),
        ),
        (
            "v1",
            "Secret",
            json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"reg","creationTimestamp":null},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"eyJhdXRocyI6e319"}}),
        ),
        (
            "v1",
            "ConfigMap",
            json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","creationTimestamp":null},"data":{"a":"b"}}),
        ),
        (
            "v1",
            "Namespace",
            json!({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"team-a","creationTimestamp":null},"spec":{},"status":{}}),
        ),
        (
            "v1",
            "ServiceAccount",
            json!({"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"bot","creationTimestamp":null}}),
        ),
        (
            "policy/v1",
            "PodDisruptionBudget",
            json!({"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"p","creationTimestamp":null},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"x"}}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}),
        ),
        (
            "scheduling.k8s.io/v1",
            "PriorityClass",
            json!({"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"high","creationTimestamp":null},"value":1000,"globalDefault":false,"description":"","preemptionPolicy":"PreemptLowerPriority"}),
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "Role",
            json!({"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"pod-reader","creationTimestamp":null},"rules":[{"verbs":["get","watch","list"],"apiGroups":[""],"resources":["pods"]}]}),
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            json!({"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb","creationTimestamp":null},"subjects":[{"kind":"ServiceAccount","name":"default","namespace":"default"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}}),
        ),
        (
            "networking.k8s.io/v1",
            "Ingress",
            json!({"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"simple","creationTimestamp":null},"spec":{"rules":[{"host":"foo.com","http":{"paths":[{"path":"/bar","pathType":"Exact","backend":{"service":{"name":"svc1","port":{"number":8080}}}}]}}]},"status":{"loadBalancer":{}}}),
        ),
        (
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            json!({"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v2","metadata":{"name":"web","creationTimestamp":null},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"web","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":5,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":80}}}]},"status":{"currentMetrics":null,"desiredReplicas":0}}),
        ),
        (
            "coordination.k8s.io/v1",
            "Lease",
            json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"node-1"},"spec":{"holderIdentity":"node-1","leaseDurationSeconds":40,"renewTime":"2024-05-01T10:00:00.123456Z"}}),
        ),
    ];
    for (api_version, kind, body) in bodies {
        let r = res(api_version, kind);
        let body = with_ns(body, r.namespaced);
        assert!(
            capstan_validation::unknown_fields(r, &body).is_empty(),
            "{kind}: {:?}",
            capstan_validation::unknown_fields(r, &body)
        );
        let errs = create(api_version, kind, body);
        assert!(errs.is_empty(), "{kind}: {errs:#?}");
    }
}

#[test]
fn kubectl_create_job_after_selector_generation() {
    let r = res("batch/v1", "Job");
    let mut job = json!({"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"pi","namespace":"default","creationTimestamp":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"pi","image":"perl","resources":{}}],"restartPolicy":"Never"}}},"status":{}});
    capstan_validation::default_object(r, &mut job);
    job["metadata"]["uid"] = json!("0b1c2d3e-aaaa-bbbb-cccc-0123456789ab");
    capstan_validation::job_generate_selector(&mut job);
    let errs = capstan_validation::validate(r, &job, None, None);
    assert!(errs.is_empty(), "{errs:#?}");
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "pi"
    );
}
