"""The Python `kubernetes` client against a running Capstan: list, create and watch pods.

Usage: KUBECONFIG=... python3 client_test.py NAMESPACE
Exit status 0 when every check passed.
"""
import sys
import threading
import time

from kubernetes import client, config, watch

ns = sys.argv[1]
config.load_kube_config()
v1 = client.CoreV1Api()

v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

seen = []
ready = threading.Event()


def watcher():
    w = watch.Watch()
    ready.set()
    for ev in w.stream(v1.list_namespaced_pod, namespace=ns, timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ("ADDED", "py-pod") in seen:
            w.stop()
            return


t = threading.Thread(target=watcher)
t.start()
ready.wait()
time.sleep(0.5)

pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox", command=["sleep", "3600"])]),
)
created = v1.create_namespaced_pod(namespace=ns, body=pod)
assert created.metadata.uid, "created pod has a uid"
assert created.spec.restart_policy == "Always", created.spec.restart_policy

pods = v1.list_namespaced_pod(namespace=ns, label_selector="app=py")
names = [p.metadata.name for p in pods.items]
assert names == ["py-pod"], names

all_pods = v1.list_pod_for_all_namespaces()
assert any(p.metadata.name == "py-pod" for p in all_pods.items)

t.join(15)
assert ("ADDED", "py-pod") in seen, seen

try:
    v1.read_namespaced_pod(name="missing", namespace=ns)
    raise AssertionError("expected 404")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status

v1.delete_namespaced_pod(name="py-pod", namespace=ns)
print("python client: OK")
