//! JSON → protobuf → JSON round trips for kinds and encodings kubectl's fixtures do not cover.

use serde_json::{json, Value};

fn round_trip(v: &Value) -> Value {
    let body = capstan_wire::encode(v).unwrap_or_else(|e| panic!("encode {}: {e}", v["kind"]));
    assert!(capstan_wire::is_protobuf_envelope(&body));
    capstan_wire::decode(&body).unwrap_or_else(|e| panic!("decode {}: {e}", v["kind"]))
}

fn cases() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "default", "uid": "0b7c", "resourceVersion": "12", "generation": 3,
                "creationTimestamp": "2024-01-02T03:04:05Z", "deletionTimestamp": "2024-01-02T03:05:05Z",
                "deletionGracePeriodSeconds": 0,
                "labels": {"app": "web"}, "annotations": {"a": "b"}, "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u",
                                     "controller": true, "blockOwnerDeletion": false}],
                "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                   "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]
            },
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx", "command": ["sh"], "args": ["-c", "sleep 1"],
                    "ports": [{"containerPort": 80, "hostIP": "0.0.0.0", "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": false}}},
                            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "envFrom": [{"secretRef": {"name": "s"}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                                      "initialDelaySeconds": 5, "periodSeconds": 10},
                    "readinessProbe": {"tcpSocket": {"port": 80}},
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 0, "readOnlyRootFilesystem": false},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]
                }],
                "volumes": [
                    {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420, "items": [{"key": "a", "path": "a"}]}},
                    {"name": "sec", "secret": {"secretName": "s", "optional": true}},
                    {"name": "pvc", "persistentVolumeClaim": {"claimName": "claim"}}
                ],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "default", "hostNetwork": true,
                "hostIPC": true, "automountServiceAccountToken": false, "priority": 0,
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "hostIP": "192.168.1.2",
                "startTime": "2024-01-02T03:04:06Z", "qosClass": "Burstable",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-02T03:04:07Z"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "",
                                       "started": true,
                                       "state": {"running": {"startedAt": "2024-01-02T03:04:06Z"}}}]
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "externalIPs": ["1.2.3.4"], "ipFamilies": ["IPv4"], "sessionAffinity": "None",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}],
                     "selector": {"app": "web"}, "allocateLoadBalancerNodePorts": true},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"bin": "AAEC/w==", "empty": ""}, "stringData": {"x": "y"}, "type": "Opaque", "immutable": true
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "b"}, "binaryData": {"bin": "3q2+7w=="}
        }),
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2024-01-02T03:04:05.123456Z", "reportingController": "capstan", "reportingInstance": "i",
            "action": "Pulled", "reason": "Pulled", "type": "Normal", "note": "pulled image",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000001Z"}
        }),
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                     "renewTime": "2024-01-02T03:04:05.500000Z", "acquireTime": "2024-01-02T03:00:00.000000Z"}
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "cr"},
            "data": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}, "revision": 2
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate",
                                                   "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "selector": {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                     "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600, "paused": true},
            "status": {"observedGeneration": 4, "replicas": 3, "readyReplicas": 2, "collisionCount": 0,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                       "lastUpdateTime": "2024-01-02T03:04:05Z",
                                       "lastTransitionTime": "2024-01-02T03:04:05Z"}]}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {"schedule": "* * * * *", "suspend": false, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 0, "timeZone": "Etc/UTC",
                     "jobTemplate": {"spec": {"backoffLimit": 0, "completions": 1, "parallelism": 1,
                                              "ttlSecondsAfterFinished": 0,
                                              "template": {"spec": {"restartPolicy": "Never",
                                                                    "containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": {"lastScheduleTime": "2024-01-02T03:04:00Z", "active": [{"kind": "Job", "name": "cj-1"}]}
        }),
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "memory",
                                  "target": {"type": "AverageValue", "averageValue": "500Mi"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                                                "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                       "lastScaleTime": "2024-01-02T03:04:05Z",
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "memory",
                                           "current": {"averageValue": "400Mi"}}}]}
        }),
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"replicas": 0}, "status": {"replicas": 3, "selector": "app=web"}}),
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p", "namespace": "default"},
               "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                                 "preconditions": {"uid": "u"}, "dryRun": ["All"]}}),
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "7"},
               "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}]}),
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": "default"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background", "gracePeriodSeconds": 30,
               "orphanDependents": false}),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "propagationPolicy": "Orphan"}),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": "sa"},
               "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}},
               "status": {"token": "abc", "expirationTimestamp": "2024-01-02T04:04:05Z"}}),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
               "spec": {"user": "alice", "groups": ["dev"], "uid": "1",
                        "extra": {"scopes": ["a", "b"], "empty": []},
                        "nonResourceAttributes": {"path": "/healthz", "verb": "get"}},
               "status": {"allowed": true, "reason": "RBAC"}}),
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "nope",
               "reason": "NotFound", "code": 404,
               "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "field": "spec"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s-abc"},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false, "serving": true},
                              "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "p"}}],
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                     "ports": [{"protocol": "TCP", "port": 5432, "endPort": 5440}]}]}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
               "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"], "unschedulable": true,
                        "taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": "2024-01-02T03:04:05Z"}]},
               "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                          "allocatable": {"cpu": "3800m"},
                          "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                          "nodeInfo": {"kubeletVersion": "v1.32.0", "machineID": "m", "systemUUID": "s", "bootID": "b",
                                       "kernelVersion": "6", "osImage": "x", "containerRuntimeVersion": "c",
                                       "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
                          "conditions": [{"type": "Ready", "status": "True",
                                          "lastHeartbeatTime": "2024-01-02T03:04:05Z"}]}}),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                        "versions": [{"name": "v1", "served": true, "storage": true,
                                      "schema": {"openAPIV3Schema": {
                                          "type": "object",
                                          "properties": {"spec": {"type": "object",
                                              "x-kubernetes-preserve-unknown-fields": true,
                                              "properties": {"size": {"type": "integer", "minimum": 1.0,
                                                                      "default": 3},
                                                             "tags": {"type": "array", "items": {"type": "string"}}},
                                              "additionalProperties": false,
                                              "required": ["size"]}}}}}]}}),
    ]
}

#[test]
fn json_round_trips_through_protobuf() {
    for v in cases() {
        assert_eq!(round_trip(&v), v, "{}", v["kind"]);
    }
}

#[test]
fn encode_rejects_what_it_cannot_encode() {
    let cases = [
        (json!({"kind": "Pod"}), "no apiVersion"),
        (json!([1, 2]), "not an object"),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "x"}}),
            "wrong JSON type",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}}),
            "bad time",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "!!"}}),
            "bad base64",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"priority": 1e12}}),
            "int32 overflow",
        ),
    ];
    for (v, why) in cases {
        assert!(
            matches!(
                capstan_wire::encode(&v),
                Err(capstan_wire::WireError::Malformed(_))
            ),
            "{why}"
        );
    }
    assert_eq!(
        capstan_wire::encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
        Err(capstan_wire::WireError::UnsupportedKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
}
