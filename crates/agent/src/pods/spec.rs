//! Pure builders of the CRI requests for a pod: the sandbox config (metadata, labels, hostname,
//! DNS, port mappings, cgroup parent, sysctls, namespaces) and each container's config
//! (command, env, mounts, resources, security context). No I/O: the worker resolves env and
//! volumes first and passes the results in.

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements, SecurityContext};
use std::collections::HashMap;

pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotation: a hash of the container's spec, so a changed spec restarts the container.
pub const ANNOTATION_HASH: &str = "io.kubernetes.container.hash";
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Annotation: the host file mounted at terminationMessagePath.
pub const ANNOTATION_TERMINATION_FILE: &str = "capstan.io/termination-message-file";

/// The pod's identity as the CRI labels carry it.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    let mut l: HashMap<String, String> = m.labels.clone().unwrap_or_default().into_iter().collect();
    l.insert(LABEL_POD_NAME.into(), m.name.clone().unwrap_or_default());
    l.insert(
        LABEL_POD_NAMESPACE.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    l.insert(LABEL_POD_UID.into(), m.uid.clone().unwrap_or_default());
    l
}

/// The QoS class admission recorded (BestEffort when absent).
pub fn qos_class(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort")
}

/// The QoS class of a pod spec, as kube-apiserver computes it: Guaranteed when every container
/// has cpu and memory limits equal to its requests, BestEffort when none has any, Burstable
/// otherwise.
pub fn compute_qos(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.clone().unwrap_or_default();
        for name in ["cpu", "memory"] {
            let limit = resource(&r, true, name);
            let mut request = resource(&r, false, name);
            if request == 0 {
                request = limit;
            }
            if limit != 0 || request != 0 {
                any = true;
            }
            if limit == 0 || limit != request {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The pod's cgroup parent under the cgroupfs driver, as the kubelet lays it out.
pub fn cgroup_parent(pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match qos_class(pod) {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "Burstable" => format!("/kubepods/burstable/pod{uid}"),
        _ => format!("/kubepods/besteffort/pod{uid}"),
    }
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn namespaces(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| {
        spec.and_then(f).unwrap_or(false)
    };
    let node = cri::NamespaceMode::Node as i32;
    let podm = cri::NamespaceMode::Pod as i32;
    cri::NamespaceOption {
        network: if host_network(pod) { node } else { podm },
        pid: if flag(|s| s.host_pid) {
            node
        } else if flag(|s| s.share_process_namespace) {
            podm
        } else {
            cri::NamespaceMode::Container as i32
        },
        ipc: if flag(|s| s.host_ipc) { node } else { podm },
        ..Default::default()
    }
}

/// The sandbox config. `dns` is the resolver config the pod's dnsPolicy asks for.
pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    log_directory: &str,
    dns: cri::DnsConfig,
) -> cri::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let name = m.name.clone().unwrap_or_default();
    let hostname = if host_network(pod) {
        String::new()
    } else {
        spec.hostname.clone().unwrap_or_else(|| name.clone())
    };
    let mut port_mappings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|h| *h > 0) {
                port_mappings.push(cri::PortMapping {
                    protocol: protocol(p.protocol.as_deref()),
                    container_port: p.container_port,
                    host_port: hp,
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    let psc = spec.security_context.clone().unwrap_or_default();
    let sysctls = psc
        .sysctls
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    let mut annotations: HashMap<String, String> = m
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    annotations.retain(|k, _| k != "kubectl.kubernetes.io/last-applied-configuration");
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name,
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        log_directory: log_directory.to_string(),
        dns_config: Some(dns),
        port_mappings,
        labels: pod_labels(pod),
        annotations,
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(pod),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(pod)),
                run_as_user: psc.run_as_user.map(|v| cri::Int64Value { value: v }),
                run_as_group: psc.run_as_group.map(|v| cri::Int64Value { value: v }),
                supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
                privileged: spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .any(|c| {
                        c.security_context
                            .as_ref()
                            .and_then(|s| s.privileged)
                            .unwrap_or(false)
                    }),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The sysctls the kubelet allows without `--allowed-unsafe-sysctls` (kube 1.32's safe set).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// The CRI attempt of a pod's next sandbox: past every attempt CRI still lists, since a
/// sandbox that failed to stop keeps its name (`<pod>_<ns>_<uid>_<attempt>`) reserved.
pub fn next_sandbox_attempt(sandboxes: &[cri::PodSandbox]) -> u32 {
    sandboxes
        .iter()
        .filter_map(|s| s.metadata.as_ref())
        .map(|m| m.attempt + 1)
        .max()
        .unwrap_or(0)
}

/// The first sysctl of the pod outside the safe set.
pub fn forbidden_sysctl(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .security_context
        .as_ref()?
        .sysctls
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .find(|n| !SAFE_SYSCTLS.contains(&n.as_str()))
}

fn protocol(p: Option<&str>) -> i32 {
    match p {
        Some("UDP") => cri::Protocol::Udp as i32,
        Some("SCTP") => cri::Protocol::Sctp as i32,
        _ => cri::Protocol::Tcp as i32,
    }
}

/// The resolver config for `dnsPolicy` (ClusterFirst falls back to the host's resolvers while
/// no cluster DNS is configured, as the kubelet does without `--cluster-dns`).
pub fn dns_config(
    pod: &Pod,
    host_resolv_conf: &str,
    cluster_dns: Option<&str>,
    domain: &str,
) -> cri::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut host = cri::DnsConfig::default();
    for line in host_resolv_conf.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => host.servers.extend(w.next().map(String::from)),
            Some("search") => host.searches = w.map(String::from).collect(),
            Some("options") => host.options.extend(w.map(String::from)),
            _ => {}
        }
    }
    let cluster_first = match policy {
        "ClusterFirst" => !host_network(pod),
        "ClusterFirstWithHostNet" => true,
        _ => false,
    };
    let mut cfg = match (policy, cluster_first, cluster_dns) {
        ("None", _, _) => cri::DnsConfig::default(),
        (_, true, Some(ip)) => cri::DnsConfig {
            servers: vec![ip.to_string()],
            searches: [
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ]
            .into_iter()
            .chain(host.searches.iter().cloned())
            .collect(),
            options: vec!["ndots:5".into()],
        },
        _ => host,
    };
    if let Some(dc) = spec.dns_config {
        cfg.servers.extend(dc.nameservers.unwrap_or_default());
        cfg.searches.extend(dc.searches.unwrap_or_default());
        for o in dc.options.unwrap_or_default() {
            let name = o.name.unwrap_or_default();
            cfg.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            cfg.options.push(match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    cfg
}

/// Milli-units of a resource quantity (0 when absent or malformed).
pub fn milli(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i128 {
    q.and_then(|q| capstan_validation::quantity::Quantity::parse(&q.0).ok())
        .map(|q| q.milli_value())
        .unwrap_or(0)
}

fn resource(r: &ResourceRequirements, limits: bool, name: &str) -> i128 {
    let map = if limits { &r.limits } else { &r.requests };
    milli(map.as_ref().and_then(|m| m.get(name)))
}

/// Requests and limits as cgroup settings (the kubelet's conversion: shares from the CPU
/// request, quota from the CPU limit over a 100 ms period, the memory limit in bytes).
pub fn linux_resources(
    r: &ResourceRequirements,
    qos: &str,
    node_memory: i128,
) -> cri::LinuxContainerResources {
    let cpu_limit = resource(r, true, "cpu");
    let mut cpu_request = resource(r, false, "cpu");
    if cpu_request == 0 && cpu_limit != 0 {
        cpu_request = cpu_limit;
    }
    let shares = (cpu_request * 1024 / 1000).max(2) as i64;
    let (period, quota) = if cpu_limit > 0 {
        (100_000, ((cpu_limit * 100_000 / 1000) as i64).max(1000))
    } else {
        (0, 0)
    };
    let memory_limit = (resource(r, true, "memory") / 1000) as i64;
    let memory_request = resource(r, false, "memory") / 1000;
    let oom = match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let adj = 1000 - (1000 * memory_request / node_memory.max(1)) as i64;
            adj.clamp(2, 999)
        }
    };
    cri::LinuxContainerResources {
        cpu_period: period,
        cpu_quota: quota,
        cpu_shares: shares,
        memory_limit_in_bytes: memory_limit,
        oom_score_adj: oom,
        ..Default::default()
    }
}

/// The container's security context, pod-level settings applied under the container's own.
pub fn security_context(pod: &Pod, c: &Container) -> cri::LinuxContainerSecurityContext {
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc: SecurityContext = c.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut groups = psc.supplemental_groups.clone().unwrap_or_default();
    groups.extend(psc.fs_group);
    let run_as_user = sc.run_as_user.or(psc.run_as_user);
    let run_as_group = sc.run_as_group.or(psc.run_as_group);
    let privileged = sc.privileged.unwrap_or(false);
    let cap = |v: Option<Vec<String>>| -> Vec<String> {
        v.unwrap_or_default()
            .into_iter()
            // capset fails on this host for CAP_SYS_RESOURCE (HOST-NOTES); never ask for it.
            .filter(|c| c != "SYS_RESOURCE" && c != "CAP_SYS_RESOURCE")
            .collect()
    };
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: cap(caps.add),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespaces(pod)),
        run_as_user: run_as_user.map(|v| cri::Int64Value { value: v }),
        run_as_group: run_as_group.map(|v| cri::Int64Value { value: v }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: groups,
        no_new_privs: !privileged && sc.allow_privilege_escalation == Some(false),
        ..Default::default()
    }
}

/// Whether runAsNonRoot applies to this container.
pub fn run_as_non_root(pod: &Pod, c: &Container) -> bool {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.run_as_non_root)
        })
        .unwrap_or(false)
}

/// The effective runAsUser of a container (its own, else the pod's).
pub fn run_as_user(pod: &Pod, c: &Container) -> Option<i64> {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.run_as_user)
        })
}

/// A stable hash of the container's spec (changes when the user edits the container).
pub fn container_hash(c: &Container) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(c).unwrap_or_default().hash(&mut h);
    format!("{:x}", h.finish())
}

/// Everything resolved for one container start.
pub struct Resolved {
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<cri::Mount>,
    pub log_path: String,
    pub termination_file: String,
    pub node_memory: i128,
}

/// The container config for attempt `attempt`.
pub fn container_config(
    pod: &Pod,
    c: &Container,
    attempt: u32,
    r: Resolved,
) -> cri::ContainerConfig {
    let mut labels = HashMap::new();
    for k in [LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID] {
        labels.insert(k.to_string(), pod_labels(pod)[k].clone());
    }
    labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
    let mut annotations = HashMap::new();
    annotations.insert(ANNOTATION_HASH.to_string(), container_hash(c));
    annotations.insert(ANNOTATION_RESTART_COUNT.to_string(), attempt.to_string());
    annotations.insert(ANNOTATION_TERMINATION_FILE.to_string(), r.termination_file);
    let resources = c.resources.clone().unwrap_or_default();
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt,
        }),
        image: Some(cri::ImageSpec {
            image: r.image,
            ..Default::default()
        }),
        command: r.command,
        args: r.args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: r
            .env
            .into_iter()
            .map(|(key, value)| cri::KeyValue { key, value })
            .collect(),
        mounts: r.mounts,
        labels,
        annotations,
        log_path: r.log_path,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources(&resources, qos_class(pod), r.node_memory)),
            security_context: Some(security_context(pod, c)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn rr(v: serde_json::Value) -> ResourceRequirements {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resources_table() {
        // requests/limits, qos → (shares, period, quota, memory limit, oom_score_adj)
        let gi = 1i128 << 30;
        let cases = [
            (json!({}), "BestEffort", (2, 0, 0, 0, 1000)),
            (
                json!({"limits": {"cpu": "500m", "memory": "64Mi"}}),
                "Guaranteed",
                (512, 100_000, 50_000, 64 << 20, -997),
            ),
            (
                json!({"requests": {"cpu": "250m", "memory": "512Mi"}}),
                "Burstable",
                (256, 0, 0, 0, 500),
            ),
            (
                json!({"limits": {"cpu": "5m"}}),
                "Burstable",
                (5, 100_000, 1000, 0, 999),
            ),
        ];
        for (r, qos, (shares, period, quota, mem, oom)) in cases {
            let got = linux_resources(&rr(r.clone()), qos, gi);
            assert_eq!(
                (
                    got.cpu_shares,
                    got.cpu_period,
                    got.cpu_quota,
                    got.memory_limit_in_bytes,
                    got.oom_score_adj
                ),
                (shares, period, quota, mem, oom),
                "{r}"
            );
        }
    }

    #[test]
    fn sysctls_outside_the_safe_set_are_forbidden() {
        for (sysctls, want) in [
            (
                json!([{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]),
                None,
            ),
            (
                json!([{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "net.core.somaxconn", "value": "1024"}]),
                Some("net.core.somaxconn"),
            ),
            (json!([]), None),
        ] {
            let p =
                pod(json!({"spec": {"containers": [], "securityContext": {"sysctls": sysctls}}}));
            assert_eq!(forbidden_sysctl(&p).as_deref(), want);
        }
    }

    #[test]
    fn cgroup_parent_by_qos() {
        for (qos, want) in [
            ("Guaranteed", "/kubepods/podU"),
            ("Burstable", "/kubepods/burstable/podU"),
            ("BestEffort", "/kubepods/besteffort/podU"),
        ] {
            let p = pod(json!({"metadata": {"uid": "U"}, "status": {"qosClass": qos}}));
            assert_eq!(cgroup_parent(&p), want);
        }
    }

    #[test]
    fn dns_policies() {
        let host = "nameserver 1.1.1.1\nsearch example.com\noptions edns0\n";
        let p = |policy: &str, host_net: bool| {
            pod(
                json!({"metadata": {"namespace": "web"}, "spec": {"containers": [], "dnsPolicy": policy, "hostNetwork": host_net}}),
            )
        };
        let cf = dns_config(
            &p("ClusterFirst", false),
            host,
            Some("10.43.0.10"),
            "cluster.local",
        );
        assert_eq!(cf.servers, ["10.43.0.10"]);
        assert_eq!(
            cf.searches,
            [
                "web.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "example.com"
            ]
        );
        assert_eq!(cf.options, ["ndots:5"]);
        // Without cluster DNS, or on the host network, the host's resolvers.
        for (policy, hn, dns) in [
            ("ClusterFirst", false, None),
            ("ClusterFirst", true, Some("10.43.0.10")),
            ("Default", false, Some("10.43.0.10")),
        ] {
            let d = dns_config(&p(policy, hn), host, dns, "cluster.local");
            assert_eq!(d.servers, ["1.1.1.1"], "{policy} {hn}");
            assert_eq!(d.searches, ["example.com"]);
        }
        let hn = dns_config(
            &p("ClusterFirstWithHostNet", true),
            host,
            Some("10.43.0.10"),
            "cluster.local",
        );
        assert_eq!(hn.servers, ["10.43.0.10"]);
        let none = pod(json!({"spec": {"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["9.9.9.9"], "searches": ["a.b"], "options": [{"name": "ndots", "value": "2"}]}}}));
        let d = dns_config(&none, host, Some("10.43.0.10"), "cluster.local");
        assert_eq!(
            (d.servers, d.searches, d.options),
            (
                vec!["9.9.9.9".to_string()],
                vec!["a.b".to_string()],
                vec!["ndots:2".to_string()]
            )
        );
    }

    #[test]
    fn sandbox_carries_identity_ports_and_namespaces() {
        let p = pod(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "U", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}],
                     "securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]}},
        }));
        let s = sandbox_config(&p, 2, "/logs", cri::DnsConfig::default());
        let md = s.metadata.as_ref().unwrap();
        assert_eq!(
            (
                md.name.as_str(),
                md.namespace.as_str(),
                md.uid.as_str(),
                md.attempt
            ),
            ("web", "ns", "U", 2)
        );
        assert_eq!(s.hostname, "web");
        assert_eq!(s.labels["app"], "x");
        assert_eq!(s.labels[LABEL_POD_UID], "U");
        assert_eq!(s.port_mappings.len(), 1);
        assert_eq!(
            (
                s.port_mappings[0].container_port,
                s.port_mappings[0].host_port
            ),
            (80, 8080)
        );
        let linux = s.linux.unwrap();
        assert_eq!(linux.sysctls["net.ipv4.ip_local_port_range"], "1024 65000");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
    }

    #[test]
    fn security_context_merges_pod_and_container() {
        let p = pod(
            json!({"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000]},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 1001, "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN", "SYS_RESOURCE"], "drop": ["ALL"]}}}]}}),
        );
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        let sc = security_context(&p, &c);
        assert_eq!(sc.run_as_user.unwrap().value, 1001);
        assert_eq!(sc.supplemental_groups, [3000, 2000]);
        assert!(sc.no_new_privs && sc.readonly_rootfs && !sc.privileged);
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, ["NET_ADMIN"]);
        assert_eq!(caps.drop_capabilities, ["ALL"]);
        assert_eq!(run_as_user(&p, &c), Some(1001));
    }

    #[test]
    fn next_sandbox_attempts() {
        let sb = |attempt: u32, created_at: i64| cri::PodSandbox {
            metadata: Some(cri::PodSandboxMetadata {
                attempt,
                ..Default::default()
            }),
            created_at,
            ..Default::default()
        };
        let cases: Vec<(Vec<cri::PodSandbox>, u32)> = vec![
            (vec![], 0),
            (vec![sb(0, 1)], 1),
            (vec![sb(3, 5)], 4),
            // Newest first but an older attempt number (the name of 1 is still taken).
            (vec![sb(0, 9), sb(1, 5)], 2),
            (vec![sb(1, 5), sb(0, 9), sb(2, 1)], 3),
            (vec![cri::PodSandbox::default()], 0),
        ];
        for (list, want) in cases {
            assert_eq!(next_sandbox_attempt(&list), want, "{list:?}");
        }
    }
}
