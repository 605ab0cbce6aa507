"""The Python `kubernetes` client's streaming (kubernetes.stream, websocket v4.channel.k8s.io)
against a running Capstan. Prints one JSON line with what it saw.

Usage: KUBECONFIG=... python3 streams.py exec NAMESPACE POD CONTAINER
       KUBECONFIG=... python3 streams.py portforward NAMESPACE POD PORT
"""
import json
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream

mode, ns, pod, arg = sys.argv[1:5]
config.load_kube_config()
v1 = client.CoreV1Api()

if mode == "exec":
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        pod,
        ns,
        container=arg,
        command=["sh", "-c", "echo py-out; echo py-err >&2; exit 4"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=20)
    out = resp.read_stdout()
    err = resp.read_stderr()
    print(json.dumps({"stdout": out, "stderr": err, "code": resp.returncode}))
elif mode == "portforward":
    port = int(arg)
    pf = portforward(v1.connect_get_namespaced_pod_portforward, pod, ns, ports=str(port))
    sock = pf.socket(port)
    sock.settimeout(20)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    body = data.split(b"\r\n\r\n", 1)[-1].decode()
    print(json.dumps({"body": body, "error": pf.error(port)}))
else:
    sys.exit("unknown mode " + mode)
