//! Per-kind cell tests: services, workloads, HPA, core, events, networking, RBAC.

use chrono::Duration;
use serde_json::{json, Value};

use super::super::*;
use super::{ago, cell_strings};

fn svc(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "s", "creationTimestamp": ago(Duration::hours(3))}, "spec": spec, "status": status})
}

#[test]
fn service_cells() {
    let cases = vec![
        (
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"], "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}}),
                json!({}),
            ),
            vec![
                "s",
                "ClusterIP",
                "10.43.0.10",
                "<none>",
                "80/TCP",
                "3h",
                "app=web",
            ],
        ),
        (
            svc(
                json!({"type": "NodePort", "clusterIPs": ["10.43.0.11"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "externalIPs": ["1.2.3.4", "5.6.7.8"]}),
                json!({}),
            ),
            vec![
                "s",
                "NodePort",
                "10.43.0.11",
                "1.2.3.4,5.6.7.8",
                "80:30080/TCP,53/UDP",
                "3h",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.12"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
                json!({}),
            ),
            vec![
                "s",
                "LoadBalancer",
                "10.43.0.12",
                "<pending>",
                "443:31443/TCP",
                "3h",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.12"], "ports": [{"port": 443, "protocol": "TCP"}], "externalIPs": ["9.9.9.9"]}),
                json!({"loadBalancer": {"ingress": [{"ip": "5.5.5.5"}, {"hostname": "lb.example.com"}, {"ip": "1.1.1.1"}]}}),
            ),
            vec![
                "s",
                "LoadBalancer",
                "10.43.0.12",
                "1.1.1.1,5.5.5.5,lb.example.com,9.9.9.9",
                "443/TCP",
                "3h",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "ExternalName", "externalName": "example.com"}),
                json!({}),
            ),
            vec![
                "s",
                "ExternalName",
                "<none>",
                "example.com",
                "<none>",
                "3h",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"b": "2", "a": "1"}}),
                json!({}),
            ),
            vec![
                "s",
                "ClusterIP",
                "None",
                "<none>",
                "<none>",
                "3h",
                "a=1,b=2",
            ],
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(cell_strings("Service", &obj), want);
    }
}

fn meta(name: &str) -> Value {
    json!({"name": name, "creationTimestamp": ago(Duration::days(2) + Duration::hours(3))})
}

#[test]
fn workload_cells() {
    let template = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "busybox"}]}});
    let selector = json!({"matchLabels": {"app": "web"}});
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "Deployment",
            json!({"metadata": meta("d"), "spec": {"replicas": 3, "selector": selector, "template": template},
                   "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
            vec![
                "d",
                "2/3",
                "3",
                "2",
                "2d3h",
                "web,side",
                "nginx:1,busybox",
                "app=web",
            ],
        ),
        (
            "Deployment",
            json!({"metadata": meta("d"), "spec": {"replicas": 1, "template": template}, "status": {}}),
            vec![
                "d",
                "0/1",
                "0",
                "0",
                "2d3h",
                "web,side",
                "nginx:1,busybox",
                "",
            ],
        ),
        (
            "ReplicaSet",
            json!({"metadata": meta("rs"), "spec": {"replicas": 2, "selector": selector, "template": template}, "status": {"replicas": 2, "readyReplicas": 1}}),
            vec![
                "rs",
                "2",
                "2",
                "1",
                "2d3h",
                "web,side",
                "nginx:1,busybox",
                "app=web",
            ],
        ),
        (
            "ReplicationController",
            json!({"metadata": meta("rc"), "spec": {"replicas": 1, "selector": {"app": "x"}}, "status": {"replicas": 1}}),
            vec!["rc", "1", "1", "0", "2d3h", "", "", "app=x"],
        ),
        (
            "DaemonSet",
            json!({"metadata": meta("ds"), "spec": {"selector": selector, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "i"}]}}},
                   "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}}),
            vec![
                "ds",
                "2",
                "2",
                "1",
                "2",
                "1",
                "kubernetes.io/os=linux",
                "2d3h",
                "a",
                "i",
                "app=web",
            ],
        ),
        (
            "StatefulSet",
            json!({"metadata": meta("st"), "spec": {"replicas": 3, "template": template}, "status": {"readyReplicas": 3}}),
            vec!["st", "3/3", "2d3h", "web,side", "nginx:1,busybox"],
        ),
        (
            "Job",
            json!({"metadata": meta("j"), "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
                   "status": {"succeeded": 1, "startTime": ago(Duration::minutes(5)), "completionTime": ago(Duration::minutes(4)), "conditions": [{"type": "Complete", "status": "True"}]}}),
            vec![
                "j",
                "Complete",
                "1/1",
                "60s",
                "2d3h",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u",
            ],
        ),
        (
            "Job",
            json!({"metadata": meta("j"), "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}}, "status": {"startTime": ago(Duration::seconds(42))}}),
            vec!["j", "Running", "0/1 of 3", "42s", "2d3h", "", "", "<none>"],
        ),
        (
            "Job",
            json!({"metadata": meta("j"), "spec": {"suspend": true}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
            vec!["j", "Suspended", "0/1", "", "2d3h", "", "", "<none>"],
        ),
        (
            "CronJob",
            json!({"metadata": meta("cj"), "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
                   "status": {"active": [{"name": "cj-1"}], "lastScheduleTime": ago(Duration::seconds(90))}}),
            vec![
                "cj",
                "*/5 * * * *",
                "<none>",
                "False",
                "1",
                "90s",
                "2d3h",
                "c",
                "busybox",
                "<none>",
            ],
        ),
        (
            "CronJob",
            json!({"metadata": meta("cj"), "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}, "status": {}}),
            vec![
                "cj", "@daily", "Etc/UTC", "<unset>", "0", "<none>", "2d3h", "", "", "<none>",
            ],
        ),
        (
            "ControllerRevision",
            json!({"metadata": {"name": "ds-abc", "creationTimestamp": ago(Duration::days(3)), "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}, "revision": 2}),
            vec!["ds-abc", "daemonset.apps/ds", "2", "3d"],
        ),
        (
            "PodDisruptionBudget",
            json!({"metadata": meta("pdb"), "spec": {"minAvailable": 1}, "status": {"disruptionsAllowed": 0}}),
            vec!["pdb", "1", "N/A", "0", "2d3h"],
        ),
        (
            "PodDisruptionBudget",
            json!({"metadata": meta("pdb"), "spec": {"maxUnavailable": "25%"}, "status": {"disruptionsAllowed": 2}}),
            vec!["pdb", "N/A", "25%", "2", "2d3h"],
        ),
    ];
    for (kind, obj, want) in cases {
        assert_eq!(cell_strings(kind, &obj), want, "{kind}");
        assert_eq!(columns(kind).len(), want.len(), "{kind}");
    }
}

#[test]
fn hpa_targets() {
    let hpa =
        |spec: Value, status: Value| json!({"metadata": meta("h"), "spec": spec, "status": status});
    let target_ref = json!({"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"});
    let cases = vec![
        (
            hpa(
                json!({"scaleTargetRef": target_ref, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}),
                json!({"currentReplicas": 2}),
            ),
            vec![
                "h",
                "Deployment/web",
                "cpu: <unknown>/80%",
                "1",
                "5",
                "2",
                "2d3h",
            ],
        ),
        (
            hpa(
                json!({"scaleTargetRef": target_ref, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}),
                json!({"currentReplicas": 1, "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 10, "averageValue": "5m"}}},
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "512Mi"}}}]}),
            ),
            vec![
                "h",
                "Deployment/web",
                "cpu: 10%/80%, memory: 512Mi/1Gi + 1 more...",
                "<unset>",
                "5",
                "1",
                "2d3h",
            ],
        ),
        (
            hpa(
                json!({"scaleTargetRef": target_ref, "maxReplicas": 3, "minReplicas": 1, "targetCPUUtilizationPercentage": 50}),
                json!({"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}),
            ),
            vec!["h", "Deployment/web", "cpu: 12%/50%", "1", "3", "1", "2d3h"],
        ),
        (
            hpa(
                json!({"scaleTargetRef": target_ref, "maxReplicas": 3}),
                json!({}),
            ),
            vec!["h", "Deployment/web", "<none>", "<unset>", "3", "0", "2d3h"],
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(cell_strings("HorizontalPodAutoscaler", &obj), want);
    }
}

#[test]
fn core_cells() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "Node",
            json!({"metadata": {"name": "n1", "creationTimestamp": ago(Duration::days(10)),
                    "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/role": "extra"}},
                   "spec": {"unschedulable": true},
                   "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                              "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
                              "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian", "kernelVersion": "6.1.0", "containerRuntimeVersion": "capstan://0.1"}}}),
            vec![
                "n1",
                "Ready,SchedulingDisabled",
                "control-plane,extra,master",
                "10d",
                "v1.32.4",
                "192.168.1.10",
                "<none>",
                "Debian",
                "6.1.0",
                "capstan://0.1",
            ],
        ),
        (
            "Node",
            json!({"metadata": {"name": "n2", "creationTimestamp": ago(Duration::days(10))}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
            vec![
                "n2",
                "NotReady",
                "<none>",
                "10d",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ],
        ),
        (
            "Node",
            json!({"metadata": {"name": "n3"}}),
            vec![
                "n3",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ],
        ),
        (
            "Namespace",
            json!({"metadata": meta("ns"), "status": {"phase": "Active"}}),
            vec!["ns", "Active", "2d3h"],
        ),
        (
            "ConfigMap",
            json!({"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
            vec!["cm", "3", "2d3h"],
        ),
        (
            "Secret",
            json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}),
            vec!["s", "Opaque", "1", "2d3h"],
        ),
        (
            "ServiceAccount",
            json!({"metadata": meta("default")}),
            vec!["default", "0", "2d3h"],
        ),
        (
            "Endpoints",
            json!({"metadata": meta("ep"), "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 80}, {"port": 443}]}]}),
            vec![
                "ep",
                "10.42.0.5:80,10.42.0.6:80,10.42.0.5:443 + 1 more...",
                "2d3h",
            ],
        ),
        (
            "Endpoints",
            json!({"metadata": meta("ep"), "subsets": [{"addresses": [{"ip": "10.42.0.5"}]}, {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]}),
            vec!["ep", "10.42.0.5,[fd00::1]:53", "2d3h"],
        ),
        (
            "Endpoints",
            json!({"metadata": meta("ep")}),
            vec!["ep", "<none>", "2d3h"],
        ),
        (
            "PersistentVolume",
            json!({"metadata": meta("pv"), "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "local"}, "status": {"phase": "Bound"}}),
            vec![
                "pv",
                "1Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "2d3h",
                "<unset>",
            ],
        ),
        (
            "PersistentVolumeClaim",
            json!({"metadata": meta("data"), "spec": {"volumeName": "pv", "storageClassName": "local", "volumeMode": "Filesystem"},
                   "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}),
            vec![
                "data",
                "Bound",
                "pv",
                "1Gi",
                "RWO",
                "local",
                "<unset>",
                "2d3h",
                "Filesystem",
            ],
        ),
        (
            "PersistentVolumeClaim",
            json!({"metadata": meta("data"), "spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}}),
            vec![
                "data", "Pending", "", "", "", "", "<unset>", "2d3h", "<unset>",
            ],
        ),
        (
            "ResourceQuota",
            json!({"metadata": meta("q"), "status": {"hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "requests.memory": "1024Mi"},
                                                      "used": {"requests.cpu": "500m", "pods": "3"}}}),
            vec![
                "q",
                "pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi",
                "limits.memory: 0/2Gi",
                "2d3h",
            ],
        ),
    ];
    for (kind, obj, want) in cases {
        assert_eq!(cell_strings(kind, &obj), want, "{kind}");
    }
}

#[test]
fn event_cells() {
    let core = json!({
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
        "reason": "Pulled", "type": "Normal", "message": " Pulled image \n",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(Duration::minutes(5)), "lastTimestamp": ago(Duration::minutes(1)), "count": 4
    });
    assert_eq!(
        cell_strings("Event", &core),
        [
            "60s",
            "Normal",
            "Pulled",
            "pod/web",
            "spec.containers{c}",
            "kubelet, n1",
            "Pulled image",
            "5m",
            "4",
            "web.17a"
        ]
    );
    let new_style = json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Node"},
        "reason": "Starting", "type": "Normal", "message": "m",
        "eventTime": "2024-01-01T11:59:30.000000Z",
        "reportingComponent": "capstan", "reportingInstance": "n1"
    });
    assert_eq!(
        cell_strings("Event", &new_style),
        [
            "30s",
            "Normal",
            "Starting",
            "node",
            "",
            "capstan, n1",
            "m",
            "30s",
            "1",
            "e2"
        ]
    );
    let events_api = json!({
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "e3"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up",
        "eventTime": "2024-01-01T11:50:00.000000Z",
        "series": {"count": 3, "lastObservedTime": "2024-01-01T11:59:00.000000Z"},
        "reportingController": "deployment-controller"
    });
    assert_eq!(
        cell_strings("Event", &events_api),
        [
            "60s",
            "Normal",
            "ScalingReplicaSet",
            "deployment/web",
            "",
            "deployment-controller",
            "Scaled up",
            "10m",
            "3",
            "e3"
        ]
    );
}

#[test]
fn other_cells() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "EndpointSlice",
            json!({"metadata": meta("es"), "addressType": "IPv4", "ports": [{"port": 80}, {"name": "http"}, {}, {"port": 1}],
                   "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}]}),
            vec![
                "es",
                "IPv4",
                "80,http,* + 1 more...",
                "10.0.0.1,10.0.0.2,10.0.0.3",
                "2d3h",
            ],
        ),
        (
            "EndpointSlice",
            json!({"metadata": meta("es"), "addressType": "IPv4"}),
            vec!["es", "IPv4", "<unset>", "<unset>", "2d3h"],
        ),
        (
            "Ingress",
            json!({"metadata": meta("ing"), "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.com"}, {"host": "b.com"}, {}, {"host": "c.com"}, {"host": "d.com"}], "tls": [{}]},
                   "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
            vec![
                "ing",
                "nginx",
                "a.com,b.com,c.com + 2 more...",
                "1.2.3.4",
                "80, 443",
                "2d3h",
            ],
        ),
        (
            "Ingress",
            json!({"metadata": meta("ing"), "spec": {}}),
            vec!["ing", "<none>", "*", "", "80", "2d3h"],
        ),
        (
            "IngressClass",
            json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}),
            vec![
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/p",
                "2d3h",
            ],
        ),
        (
            "NetworkPolicy",
            json!({"metadata": meta("np"), "spec": {"podSelector": {}}}),
            vec!["np", "<none>", "2d3h"],
        ),
        (
            "NetworkPolicy",
            json!({"metadata": meta("np"), "spec": {"podSelector": {"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["db"]}]}}}),
            vec!["np", "role notin (db)", "2d3h"],
        ),
        (
            "RoleBinding",
            json!({"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "namespace": "default", "name": "sa"}, {"kind": "User", "name": "bob"}]}),
            vec![
                "rb",
                "ClusterRole/view",
                "2d3h",
                "alice, bob",
                "devs",
                "default/sa",
            ],
        ),
        (
            "Lease",
            json!({"metadata": meta("l"), "spec": {"holderIdentity": "n1"}}),
            vec!["l", "n1", "2d3h"],
        ),
        (
            "PriorityClass",
            json!({"metadata": meta("system-node-critical"), "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"}),
            vec![
                "system-node-critical",
                "2000001000",
                "false",
                "2d3h",
                "PreemptLowerPriority",
            ],
        ),
    ];
    for (kind, obj, want) in cases {
        assert_eq!(cell_strings(kind, &obj), want, "{kind}");
    }
}
