//! Valid examples from the platform seeds (OpenShift docs) must pass validation once
//! defaulted; the deliberately broken ones must fail where Kubernetes says.

mod common;

use common::*;
use serde_json::json;

#[test]
fn registry_pod_from_seed() {
    // seeds/000 and 003: the docker-registry pod (generateName, env, mounts, volumes).
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "default", "generateName": "docker-registry-1-",
            "labels": {"deployment": "docker-registry-1", "deploymentconfig": "docker-registry", "docker-registry": "default"}},
        "spec": {
            "containers": [{
                "env": [{"name": "OPENSHIFT_CA_DATA", "value": "..."}, {"name": "OPENSHIFT_CERT_DATA", "value": "..."},
                        {"name": "OPENSHIFT_INSECURE", "value": "false"}, {"name": "OPENSHIFT_KEY_DATA", "value": "..."},
                        {"name": "OPENSHIFT_master", "value": "https://master.example.com:8443"}],
                "image": "openshift/origin-docker-registry:v0.6.2",
                "imagePullPolicy": "IfNotPresent",
                "name": "registry",
                "ports": [{"containerPort": 5000, "protocol": "TCP"}],
                "resources": {},
                "securityContext": {},
                "volumeMounts": [{"mountPath": "/registry", "name": "registry-storage"},
                                 {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "default-token-br6yz", "readOnly": true}]
            }],
            "dnsPolicy": "ClusterFirst",
            "imagePullSecrets": [{"name": "default-dockercfg-at06w"}],
            "restartPolicy": "Always",
            "serviceAccount": "default",
            "volumes": [{"emptyDir": {}, "name": "registry-storage"}, {"name": "default-token-br6yz", "secret": {"secretName": "default-token-br6yz"}}]
        }
    });
    let r = res("v1", "Pod");
    assert!(capstan_validation::unknown_fields(r, &pod).is_empty());
    let errs = create("v1", "Pod", pod);
    assert!(errs.is_empty(), "{errs:#?}");
}

#[test]
fn stored_pod_from_seed() {
    // seeds/001: a stored pod with status, node name and SELinux options.
    let pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "example", "namespace": "default", "uid": "5cc30063-0265780783bc", "resourceVersion": "165032",
            "creationTimestamp": "2019-02-13T20:31:37Z", "labels": {"app": "hello-openshift"}, "annotations": {"openshift.io/scc": "anyuid"}},
        "spec": {
            "restartPolicy": "Always", "serviceAccountName": "default", "imagePullSecrets": [{"name": "default-dockercfg-5zrhb"}],
            "priority": 0, "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
            "nodeName": "ip-10-0-140-16.us-east-2.compute.internal",
            "securityContext": {"seLinuxOptions": {"level": "s0:c11,c10"}},
            "containers": [{"resources": {}, "terminationMessagePath": "/dev/termination-log", "name": "hello-openshift",
                "securityContext": {"capabilities": {"drop": ["MKNOD"]}, "procMount": "Default"},
                "ports": [{"containerPort": 8080, "protocol": "TCP"}], "imagePullPolicy": "Always",
                "volumeMounts": [{"name": "default-token-wbqsl", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePolicy": "File", "image": "registry.redhat.io/openshift4/ose-ogging-eventrouter:v4.1"}],
            "serviceAccount": "default",
            "volumes": [{"name": "default-token-wbqsl", "secret": {"secretName": "default-token-wbqsl", "defaultMode": 420}}],
            "dnsPolicy": "ClusterFirst"
        },
        "status": {"phase": "Pending", "conditions": [{"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2019-02-13T20:31:37Z"}],
            "hostIP": "10.0.140.16", "startTime": "2019-02-13T20:31:37Z",
            "containerStatuses": [{"name": "hello-openshift", "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}, "ready": false,
                "restartCount": 0, "image": "openshift/hello-openshift", "imageID": ""}], "qosClass": "BestEffort"}
    });
    assert!(capstan_validation::unknown_fields(res("v1", "Pod"), &pod).is_empty());
    let errs = create("v1", "Pod", pod.clone());
    assert!(errs.is_empty(), "{errs:#?}");
    // An update that only touches labels is fine against itself.
    let mut new = pod.clone();
    new["metadata"]["labels"]["extra"] = json!("1");
    assert!(update("v1", "Pod", pod, new).is_empty());
}

#[test]
fn secret_and_volume_pods_from_seed() {
    for pod in [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "secret-example-pod", "namespace": "d"}, "spec": {
            "containers": [{"name": "secret-test-container", "image": "busybox", "command": ["/bin/sh", "-c", "cat /etc/secret-volume/*"],
                "volumeMounts": [{"name": "secret-volume", "mountPath": "/etc/secret-volume", "readOnly": true}]}],
            "volumes": [{"name": "secret-volume", "secret": {"secretName": "test-secret"}}], "restartPolicy": "Never"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "secret-example-pod", "namespace": "d"}, "spec": {
            "containers": [{"name": "secret-test-container", "image": "busybox", "command": ["/bin/sh", "-c", "export"],
                "env": [{"name": "TEST_SECRET_USERNAME_ENV_VAR", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "username"}}}]}],
            "restartPolicy": "Never"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "my-service-pod", "namespace": "d"}, "spec": {
            "containers": [{"name": "mypod", "image": "redis", "volumeMounts": [{"name": "foo", "mountPath": "/etc/foo"}]}],
            "volumes": [{"name": "foo", "secret": {"secretName": "my-cert", "items": [{"key": "username", "path": "my-group/my-username", "mode": 511}]}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "namespace": "d", "labels": {"env": "test"}}, "spec": {
            "containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "IfNotPresent"}], "priorityClassName": "high-priority"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "redis-master", "namespace": "d"}, "spec": {
            "containers": [{"image": "dockerfile/redis", "name": "master", "ports": [{"containerPort": 6379, "protocol": "TCP"}]}],
            "nodeSelector": {"region": "east", "type": "user-node"}}}),
    ] {
        let errs = create("v1", "Pod", pod.clone());
        assert!(errs.is_empty(), "{pod}: {errs:#?}");
    }
}

#[test]
fn broken_seed_pods_fail() {
    // seeds/001 "Tesing_for_Image_pull" and "Tomcat": invalid names, missing image.
    let errs = create(
        "v1",
        "Pod",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Tesing_for_Image_pull", "namespace": "d"},
        "spec": {"containers": [{"name": "neo4j-server", "imagePullPolicy": "Always", "command": ["echo", "SUCCESS"]}]}}),
    );
    assert_eq!(
        fields(&errs),
        vec!["metadata.name", "spec.containers[0].image"]
    );
    let errs = create(
        "v1",
        "Pod",
        json!({"metadata": {"name": "Tomcat", "namespace": "d"},
        "spec": {"containers": [{"name": "Tomcat", "image": "tomcat:8.0", "ports": [{"containerPort": 7500}], "imagePullPolicy": "Always"}]}}),
    );
    assert_eq!(
        fields(&errs),
        vec!["metadata.name", "spec.containers[0].name"]
    );
    // Misspelled field "restartPocliy" is an unknown field under strict validation.
    let bad = json!({"metadata": {"name": "py", "namespace": "d"}, "spec": {"containers": [{"name": "py", "image": "python"}], "restartPocliy": "Never"}});
    assert_eq!(
        capstan_validation::unknown_fields(res("v1", "Pod"), &bad),
        vec![".spec.restartPocliy"]
    );
}
