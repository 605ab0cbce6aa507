//! Issue 6's user scenarios with real traffic, on one server with its node agent (its own test
//! process: agent servers of one test process share its pod CIDR and bridge) and the real
//! kubectl: a 3-replica busybox httpd Deployment behind ClusterIP, ClientIP-affinity,
//! headless, NodePort, LoadBalancer and externalIP Services and an ExternalName alias; from a
//! client pod and from the host; DNS (headless A records, ExternalName CNAME, SRV), service
//! link variables, and the proxy following a scale-down. Needs root, containerd, nft and curl
//! (NOTICE and skip otherwise).

mod common;

use common::Server;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const NODE: &str = "capstan-svc-traffic";
const NS: &str = "traffic";
const SERVICE_CIDR: &str = "10.94.0.0/16";
const CLUSTER_DNS: &str = "10.94.0.10";
/// Test ranges (TEST-NET-2 and -3): nothing outside this machine carries them.
const EXTERNAL_CIDR: &str = "198.51.100.0/24";
const EXTERNAL_IP: &str = "198.51.100.7";
const OUTSIDE_IP: &str = "198.51.99.7";
const INGRESS_CIDR: &str = "203.0.113.0/28";

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.36
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
"#;

fn service(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: web}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n{extra_spec}"
    )
}

fn client(name: &str, links: bool) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  enableServiceLinks: {links}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// `ip` commands run when the test ends, however it ends (before the server stops).
struct Undo(Vec<Vec<String>>);

impl Drop for Undo {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let _ = Command::new("ip").args(args).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Retry `f` until it returns Some, for up to `secs`; the panic names `what`.
fn within<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many DNATs to `ip:8080` the listed table holds: a chain's own (`dnat to ip:8080`, one
/// endpoint or an affinity endpoint chain) or an arm of a service chain's numgen map
/// (`i : ip . 8080`).
fn dnat_targets(table: &str, ip: &str) -> usize {
    table.matches(&format!("dnat to {ip}:8080")).count()
        + table.matches(&format!(": {ip} . 8080")).count()
}

/// Wait until the proxy's table maps `ip . tcp . port` (before traffic to an address that is
/// the host's own: without the rule the host itself would answer).
fn wait_rule(table: &str, ip: &str, port: u16) {
    within(60, &format!("proxy rule for {ip}:{port}"), || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", table])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("{ip} . tcp . {port} :"))
            .then_some(())
    });
}

/// `curl` from the host: (exit code, body).
fn curl(url: &str) -> (i32, String) {
    let o = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .expect("curl runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// `n` HTTP/1.0 GETs to `host:port` from `pod` (busybox nc): one line per request, the body's
/// last line or FAIL.
fn requests_from(s: &Server, pod: &str, host: &str, port: u16, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} 2>&1) && echo \"$out\" | tail -n 1 || echo FAIL; done"
    );
    let out = s
        .kubectl(&["exec", "-n", NS, pod, "--", "sh", "-c", &script])
        .stdout;
    out.lines().map(str::to_string).collect()
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get", "-n", NS];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&s.kubectl(&a).ok()).unwrap()
}

/// The names and IPs of the Deployment's ready pods.
fn backends(s: &Server) -> Vec<(String, String)> {
    let v = json(s, &["pods", "-l", "app=web"]);
    let mut out: Vec<(String, String)> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// `nslookup name` from the client pod until `done` accepts its output.
fn lookup(s: &Server, name: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = s.kubectl(&["exec", "-n", NS, "client", "--", "nslookup", name]);
        if done(&o.stdout) {
            return o.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "nslookup {name}: {} {}",
            o.stdout,
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn services_carry_real_traffic() {
    if !common::agent_prerequisites(&["nft", "curl"]) {
        return;
    }
    let table = format!("csttraffic{}", std::process::id() % 100_000);
    let s = Server::start_with_agent_args(
        NODE,
        &[
            "--eviction-hard",
            "memory.available<100Mi",
            "--proxy-nft-table",
            &table,
            "--service-cidr",
            SERVICE_CIDR,
            "--cluster-dns",
            CLUSTER_DNS,
            "--external-ip-cidrs",
            EXTERNAL_CIDR,
            "--ingress-ip-cidr",
            INGRESS_CIDR,
        ],
    );
    let mut undo = Undo(vec![]);
    s.import_builtin_images();
    s.kubectl(&["create", "namespace", NS]).ok();
    let apply = |y: &str| {
        s.kubectl_stdin(&["apply", "-n", NS, "-f", "-"], y).ok();
    };
    // Services first: the client pods' service links are taken when they start.
    apply(&service("web", ""));
    apply(&service(
        "web-sticky",
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}\n",
    ));
    apply(&service("web-headless", "  clusterIP: None\n"));
    apply(&service("web-np", "  type: NodePort\n"));
    apply(&service("web-lb", "  type: LoadBalancer\n"));
    apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: alias}}\nspec:\n  type: ExternalName\n  externalName: web.{NS}.svc.cluster.local\n"
    ));
    apply(DEPLOY);
    apply(&client("client", true));
    apply(&client("nolinks", false));

    let pods = within(120, "three ready backends", || {
        let b = backends(&s);
        (b.len() == 3).then_some(b)
    });
    let names: BTreeSet<String> = pods.iter().map(|(n, _)| n.clone()).collect();
    for c in ["client", "nolinks"] {
        within(60, "client pods ready", || {
            (json(&s, &["pod", c])["status"]["containerStatuses"][0]["ready"] == true).then_some(())
        });
    }
    let vip = |name: &str| {
        json(&s, &["svc", name])["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let web = vip("web");
    // The proxy has every endpoint of web and web-sticky.
    within(60, "proxy rules for every endpoint", || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        pods.iter()
            .all(|(_, ip)| dnat_targets(&text, ip) >= 2)
            .then_some(())
    });

    // 300 requests through the ClusterIP from a pod: all answered, by all three backends.
    let answers = requests_from(&s, "client", &web, 80, 300);
    assert_eq!(answers.len(), 300, "{answers:?}");
    let seen: BTreeSet<String> = answers.iter().cloned().collect();
    assert_eq!(seen, names, "every request answered, by every backend");

    // ClientIP affinity pins the client to one backend.
    let sticky = requests_from(&s, "client", &vip("web-sticky"), 80, 30);
    let seen: BTreeSet<&String> = sticky.iter().collect();
    assert_eq!(seen.len(), 1, "{sticky:?}");
    assert!(names.contains(sticky[0].as_str()), "{sticky:?}");

    // NodePort from the host at the node's address.
    let node: Value =
        serde_json::from_str(&s.kubectl(&["get", "node", NODE, "-o", "json"]).ok()).unwrap();
    let node_ip = node["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap()
        .to_string();
    let np = json(&s, &["svc", "web-np"])["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let (code, body) = curl(&format!("http://{node_ip}:{np}/"));
        assert_eq!(code, 0, "host → NodePort {node_ip}:{np}: {body}");
        seen.insert(body);
    }
    assert_eq!(seen, names, "NodePort reaches every backend");

    // LoadBalancer: an ingress IP from the pool, carrying traffic from the host and a pod. The
    // pool is routed to this node's bridge, as a user routes it to the node.
    let lb_ip = within(60, "LB ingress IP assigned", || {
        json(&s, &["svc", "web-lb"])["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .map(str::to_string)
    });
    assert!(lb_ip.starts_with("203.0.113."), "{lb_ip}");
    wait_rule(&table, &lb_ip, 80);
    let bridge = common::cni_bridge();
    ip(&["route", "add", INGRESS_CIDR, "dev", &bridge]);
    undo.0.push(
        ["route", "del", INGRESS_CIDR, "dev", &bridge]
            .map(String::from)
            .to_vec(),
    );
    let mut seen = BTreeSet::new();
    seen.insert(within(60, "host reaches the LB ingress IP", || {
        let (code, body) = curl(&format!("http://{lb_ip}/"));
        (code == 0).then_some(body)
    }));
    for _ in 0..20 {
        let (code, body) = curl(&format!("http://{lb_ip}/"));
        assert_eq!(code, 0, "host → LB {lb_ip}: {body}");
        seen.insert(body);
    }
    assert_eq!(seen, names, "the LB ingress IP reaches every backend");
    let from_pod = requests_from(&s, "client", &lb_ip, 80, 10);
    assert!(
        from_pod.iter().all(|b| names.contains(b)),
        "pod → LB {lb_ip}: {from_pod:?}"
    );

    // externalIPs: outside --external-ip-cidrs refused with 422, inside admitted and served
    // once the address is the node's.
    let ext = |ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web-ext}}\nspec:\n  selector: {{app: web}}\n  externalIPs: [\"{ip}\"]\n  ports:\n  - {{name: http, port: 8081, targetPort: 8080}}\n"
        )
    };
    let err = s
        .kubectl_stdin(&["apply", "-n", NS, "-f", "-"], &ext(OUTSIDE_IP))
        .err();
    assert!(
        err.contains(r#"The Service "web-ext" is invalid: spec.externalIPs[0]: Forbidden: externalIP is not allowed"#),
        "{err}"
    );
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-ext"},
        "spec": {"selector": {"app": "web"}, "externalIPs": [OUTSIDE_IP],
                 "ports": [{"port": 8081, "targetPort": 8080}]}
    });
    let (code, resp) = s.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body.to_string(),
        &format!("{}/api/v1/namespaces/{NS}/services", s.url()),
    ]);
    assert_eq!(code, 422, "{resp}");
    assert!(resp.contains("externalIP is not allowed"), "{resp}");
    apply(&ext(EXTERNAL_IP));
    wait_rule(&table, EXTERNAL_IP, 8081);
    let addr = format!("{EXTERNAL_IP}/32");
    ip(&["addr", "add", &addr, "dev", "lo"]);
    undo.0.push(
        ["addr", "del", &addr, "dev", "lo"]
            .map(String::from)
            .to_vec(),
    );
    let mut seen = BTreeSet::new();
    let first = within(60, "host reaches the externalIP", || {
        let (code, body) = curl(&format!("http://{EXTERNAL_IP}:8081/"));
        (code == 0).then_some(body)
    });
    seen.insert(first);
    for _ in 0..20 {
        let (code, body) = curl(&format!("http://{EXTERNAL_IP}:8081/"));
        assert_eq!(code, 0, "host → externalIP: {body}");
        seen.insert(body);
    }
    if seen != names {
        let ss = Command::new("ss").args(["-ltnp"]).output().unwrap();
        panic!(
            "externalIP answers {seen:?}, backends {names:?}; listeners:\n{}",
            String::from_utf8_lossy(&ss.stdout)
        );
    }
    assert_eq!(seen, names, "externalIP reaches every backend");
    let from_pod = requests_from(&s, "client", EXTERNAL_IP, 8081, 10);
    assert!(
        from_pod.iter().all(|b| names.contains(b)),
        "pod → externalIP: {from_pod:?}"
    );

    // DNS: the headless service answers with the three pod IPs, the ExternalName with a CNAME.
    let want: BTreeSet<String> = pods.iter().map(|(_, ip)| ip.clone()).collect();
    let headless = format!("web-headless.{NS}.svc.cluster.local");
    let out = lookup(&s, &headless, |o| {
        want.iter().all(|ip| o.contains(&format!("Address: {ip}")))
    });
    let got = out.matches("Address: ").count();
    assert_eq!(got, 3, "three A records: {out}");
    let out = lookup(&s, &format!("alias.{NS}.svc.cluster.local"), |o| {
        o.contains("canonical name")
    });
    assert!(
        out.contains(&format!(
            "alias.{NS}.svc.cluster.local\tcanonical name = web.{NS}.svc.cluster.local"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("Address: {web}")), "{out}");

    // SRV for the named port.
    let srv = format!("_http._tcp.web.{NS}.svc.cluster.local");
    let out = s
        .kubectl(&[
            "exec",
            "-n",
            NS,
            "client",
            "--",
            "nslookup",
            "-type=SRV",
            &srv,
        ])
        .stdout;
    assert!(
        out.contains(&format!("service = 0 100 80 web.{NS}.svc.cluster.local")),
        "{out}"
    );

    // Service links: in a pod started after the services, not with enableServiceLinks false.
    let env = |pod: &str| s.kubectl(&["exec", "-n", NS, pod, "--", "env"]).ok();
    let linked = env("client");
    for want in [
        format!("WEB_SERVICE_HOST={web}"),
        "WEB_SERVICE_PORT=80".to_string(),
        "WEB_SERVICE_PORT_HTTP=80".to_string(),
        format!("WEB_PORT=tcp://{web}:80"),
        format!("WEB_PORT_80_TCP=tcp://{web}:80"),
        format!("WEB_PORT_80_TCP_ADDR={web}"),
        "WEB_PORT_80_TCP_PORT=80".to_string(),
        "WEB_PORT_80_TCP_PROTO=tcp".to_string(),
        format!("WEB_STICKY_SERVICE_HOST={}", vip("web-sticky")),
        "KUBERNETES_SERVICE_HOST=10.94.0.1".to_string(),
    ] {
        assert!(linked.lines().any(|l| l == want), "{want} in\n{linked}");
    }
    assert!(
        !linked.contains("WEB_HEADLESS_SERVICE_HOST"),
        "no variables for a headless service:\n{linked}"
    );
    let unlinked = env("nolinks");
    assert!(
        !unlinked.contains("WEB_SERVICE_HOST") && !unlinked.contains("WEB_PORT"),
        "{unlinked}"
    );
    assert!(
        unlinked.contains("KUBERNETES_SERVICE_HOST=10.94.0.1"),
        "the kubernetes service's variables stay: {unlinked}"
    );

    // Scaled down: once the endpoints follow, every request goes to the two pods left.
    s.kubectl(&["scale", "-n", NS, "deployment/web", "--replicas=2"])
        .ok();
    let left: BTreeSet<String> = within(60, "endpoints follow the scale-down", || {
        let v = json(
            &s,
            &["endpointslices", "-l", "kubernetes.io/service-name=web"],
        );
        let ready: BTreeSet<String> = v["items"]
            .as_array()?
            .iter()
            .flat_map(|sl| sl["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .filter_map(|e| e["targetRef"]["name"].as_str().map(str::to_string))
            .collect();
        (ready.len() == 2).then_some(ready)
    });
    let ips: Vec<String> = pods
        .iter()
        .filter(|(n, _)| left.contains(n))
        .map(|(_, ip)| ip.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let gone = pods
            .iter()
            .filter(|(n, _)| !left.contains(n))
            .all(|(_, ip)| dnat_targets(&text, ip) == 0);
        if gone && ips.iter().all(|ip| dnat_targets(&text, ip) > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not follow the scale-down to {left:?}:\n{text}\nslices:\n{}\npods:\n{}",
            s.kubectl(&["get", "endpointslices", "-n", NS, "-o", "yaml"])
                .stdout,
            s.kubectl(&["get", "pods", "-n", NS, "-o", "wide"]).stdout,
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let answers = requests_from(&s, "client", &web, 80, 60);
    let seen: BTreeSet<String> = answers.iter().cloned().collect();
    assert_eq!(seen, left, "{answers:?}");
    drop(undo);
}
