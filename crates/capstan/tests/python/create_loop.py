"""Create ConfigMaps one after another over HTTPS with the admin client certificate, printing
the name of each one the server acknowledged (2xx), until killed or the server goes away.

Usage: python3 create_loop.py HOST PORT TLS_DIR NAMESPACE
"""
import http.client
import json
import ssl
import sys

host, port, tls, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=f"{tls}/ca.crt")
ctx.load_cert_chain(f"{tls}/client-admin.crt", f"{tls}/client-admin.key")
conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=5)
i = 0
while True:
    name = f"crash-{i}"
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}})
    try:
        conn.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
    except Exception:
        sys.exit(0)
    if 200 <= resp.status < 300:
        print(name, flush=True)
    i += 1
