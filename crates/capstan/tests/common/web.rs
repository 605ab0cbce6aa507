//! The proxy e2e tests' shared scenario: three backend pods and a client pod in a namespace,
//! a selector-less NodePort Service `web` (port 80 → 8080) and a hand-written EndpointSlice
//! naming the backends, so each test decides when endpoints change.

use super::{eventually, Server};
use serde_json::Value;

/// The backend pods, in the order of [`Web::ips`].
pub const NAMES: [&str; 3] = ["web-a", "web-b", "web-c"];

/// A busybox pod to run requests from.
pub const CLIENT: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
"#;

/// The EndpointSlice `web-manual` of service `web`: `ips` ready on `node`, port `http` 8080.
pub fn manual_slice(node: &str, ips: &[String]) -> String {
    let eps: String = ips
        .iter()
        .map(|ip| {
            format!("- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  nodeName: {node}\n")
        })
        .collect();
    format!(
        r#"apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-manual
  labels:
    kubernetes.io/service-name: web
    endpointslice.kubernetes.io/managed-by: test
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:{}"#,
        if eps.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{eps}")
        }
    )
}

/// What [`start`] made.
pub struct Web {
    /// Pod IPs of web-a, web-b, web-c.
    pub ips: Vec<String>,
    pub vip: String,
    pub node_port: u64,
    /// The node's InternalIP.
    pub node_ip: String,
}

/// Namespace `ns`, pods web-a/b/c from `backend(name)` and the client, all Running and ready;
/// then Service `web` and its slice with the three backends.
pub fn start(s: &Server, ns: &str, node: &str, backend: impl Fn(&str) -> String) -> Web {
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", ns]).ok();
    for n in NAMES {
        s.kubectl_stdin(&["apply", "-n", ns, "-f", "-"], &backend(n))
            .ok();
    }
    s.kubectl_stdin(&["apply", "-n", ns, "-f", "-"], CLIENT)
        .ok();
    let ip_of = |pod: &str| -> String {
        eventually(90, || {
            let out = s
                .kubectl(&["get", "pod", "-n", ns, pod, "-o", "json"])
                .stdout;
            let p: Value = serde_json::from_str(&out).ok()?;
            let running = p["status"]["phase"] == "Running"
                && p["status"]["containerStatuses"][0]["ready"] == true;
            running
                .then(|| p["status"]["podIP"].as_str().map(str::to_string))
                .flatten()
        })
    };
    let ips: Vec<String> = NAMES.iter().map(|n| ip_of(n)).collect();
    ip_of("client");

    s.kubectl_stdin(
        &["apply", "-n", ns, "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  ports:\n  - {name: http, port: 80, targetPort: 8080, protocol: TCP}\n",
    )
    .ok();
    s.kubectl_stdin(&["apply", "-n", ns, "-f", "-"], &manual_slice(node, &ips))
        .ok();
    let svc: Value = serde_json::from_str(
        &s.kubectl(&["get", "svc", "-n", ns, "web", "-o", "json"])
            .ok(),
    )
    .unwrap();
    let vip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let n: Value =
        serde_json::from_str(&s.kubectl(&["get", "node", node, "-o", "json"]).ok()).unwrap();
    let node_ip = n["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap()
        .to_string();
    Web {
        ips,
        vip,
        node_port,
        node_ip,
    }
}
