//! Pure environment resolution for a container, as the kubelet builds it: service link
//! variables first, then `envFrom`, then `env` in order with `$(VAR)` expansion against what is
//! already defined; values from secrets, config maps, the downward API (fieldRef) and the
//! container's resources (resourceFieldRef). Errors are CreateContainerConfigError messages.

use crate::podstatus::expand;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use std::collections::HashMap;

/// The objects a pod refers to, fetched by the worker (None = not found).
#[derive(Default)]
pub struct Lookups {
    pub secrets: HashMap<String, Option<Secret>>,
    pub config_maps: HashMap<String, Option<ConfigMap>>,
}

impl Lookups {
    pub fn secret_value(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, String> {
        match self.secrets.get(name).and_then(Option::as_ref) {
            None if optional => Ok(None),
            None => Err(format!("secret \"{name}\" not found")),
            Some(s) => match s.data.as_ref().and_then(|d| d.get(key)) {
                Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
                None if optional => Ok(None),
                None => Err(format!("couldn't find key {key} in Secret {ns}/{name}")),
            },
        }
    }

    pub fn config_map_value(
        &self,
        ns: &str,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, String> {
        match self.config_maps.get(name).and_then(Option::as_ref) {
            None if optional => Ok(None),
            None => Err(format!("configmap \"{name}\" not found")),
            Some(cm) => match cm.data.as_ref().and_then(|d| d.get(key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(format!("couldn't find key {key} in ConfigMap {ns}/{name}")),
            },
        }
    }
}

/// Facts the downward API exposes that are not in the pod object yet.
pub struct Runtime<'a> {
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub node_cpu_milli: i128,
    pub node_memory: i128,
}

/// The value of a downward-API field path.
pub fn field_value(pod: &Pod, path: &str, rt: &Runtime) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let keyed = |prefix: &str, map: &Option<std::collections::BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| {
                map.as_ref()
                    .and_then(|m| m.get(k))
                    .cloned()
                    .unwrap_or_default()
            })
    };
    let fmt_map = |map: &Option<std::collections::BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| {
                format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => fmt_map(&m.labels),
        "metadata.annotations" => fmt_map(&m.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => rt.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => rt.pod_ip.to_string(),
        _ => {
            if let Some(v) = keyed("metadata.labels['", &m.labels) {
                v
            } else if let Some(v) = keyed("metadata.annotations['", &m.annotations) {
                v
            } else {
                return Err(format!("unsupported fieldPath: {path}"));
            }
        }
    })
}

/// The value of a resourceFieldRef (`limits.cpu`, `requests.memory`, …) in `divisor` units,
/// rounded up; an unset limit falls back to the node's allocatable.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    rt: &Runtime,
) -> Result<String, String> {
    use crate::pods::spec::milli;
    let r = c.resources.clone().unwrap_or_default();
    let (which, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {resource}"))?;
    let map = if which == "limits" {
        &r.limits
    } else {
        &r.requests
    };
    let mut v = milli(map.as_ref().and_then(|m| m.get(name)));
    if v == 0 && which == "limits" {
        v = match name {
            "cpu" => rt.node_cpu_milli,
            "memory" => rt.node_memory * 1000,
            _ => 0,
        };
    }
    let div = divisor
        .and_then(|d| capstan_validation::quantity::Quantity::parse(d).ok())
        .map(|q| q.milli_value())
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    Ok(((v + div - 1) / div).to_string())
}

fn env_name(svc: &str) -> String {
    svc.to_uppercase().replace('-', "_")
}

/// The service link variables (`WEB_SERVICE_HOST`, `WEB_PORT_80_TCP_ADDR`, …) for the services
/// of the pod's namespace plus the `kubernetes` service of `default`.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in services {
        let spec = s.spec.clone().unwrap_or_default();
        let ip = spec.cluster_ip.unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let n = env_name(s.metadata.name.as_deref().unwrap_or_default());
        let ports = spec.ports.unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{n}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{n}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = p.name.as_deref().filter(|x| !x.is_empty()) {
                out.push((
                    format!("{n}_SERVICE_PORT_{}", env_name(pn)),
                    p.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.clone().unwrap_or_else(|| "TCP".into())
        };
        out.push((
            format!("{n}_PORT"),
            format!("{}://{ip}:{}", proto(first).to_lowercase(), first.port),
        ));
        for p in &ports {
            let pr = proto(p);
            let base = format!("{n}_PORT_{}_{}", p.port, pr.to_uppercase());
            out.push((
                base.clone(),
                format!("{}://{ip}:{}", pr.to_lowercase(), p.port),
            ));
            out.push((format!("{base}_PROTO"), pr.to_lowercase()));
            out.push((format!("{base}_PORT"), p.port.to_string()));
            out.push((format!("{base}_ADDR"), ip.clone()));
        }
    }
    out
}

/// The container's environment, in the order the kubelet hands it to the runtime.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    lookups: &Lookups,
    service_env: &[(String, String)],
    rt: &Runtime,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set =
        |order: &mut Vec<String>, vars: &mut HashMap<String, String>, k: String, v: String| {
            if vars.insert(k.clone(), v).is_none() {
                order.push(k);
            }
        };
    for ef in c.env_from.iter().flatten() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        if let Some(r) = &ef.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match lookups.config_maps.get(&r.name).and_then(Option::as_ref) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut order, &mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &ef.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match lookups.secrets.get(&r.name).and_then(Option::as_ref) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut order,
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(src) = &e.value_from {
            if let Some(r) = &src.secret_key_ref {
                lookups.secret_value(&ns, &r.name, &r.key, r.optional.unwrap_or(false))?
            } else if let Some(r) = &src.config_map_key_ref {
                lookups.config_map_value(&ns, &r.name, &r.key, r.optional.unwrap_or(false))?
            } else if let Some(f) = &src.field_ref {
                Some(field_value(pod, &f.field_path, rt)?)
            } else if let Some(r) = &src.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => pod
                        .spec
                        .iter()
                        .flat_map(|s| {
                            s.containers
                                .iter()
                                .chain(s.init_containers.iter().flatten())
                        })
                        .find(|x| x.name == n)
                        .cloned()
                        .unwrap_or_else(|| c.clone()),
                    None => c.clone(),
                };
                Some(resource_value(
                    &target,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    rt,
                )?)
            } else {
                None
            }
        } else {
            let mut known = vars.clone();
            for (k, v) in service_env {
                known.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Some(expand(e.value.as_deref().unwrap_or(""), &known))
        };
        if let Some(v) = value {
            set(&mut order, &mut vars, e.name.clone(), v);
        }
    }
    let mut out: Vec<(String, String)> = service_env
        .iter()
        .filter(|(k, _)| !vars.contains_key(k))
        .cloned()
        .collect();
    out.extend(order.into_iter().map(|k| {
        let v = vars[&k].clone();
        (k, v)
    }));
    Ok(out)
}

/// command and args with `$(VAR)` expanded against the container's environment.
pub fn expand_command(c: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let ex = |v: &Option<Vec<String>>| v.iter().flatten().map(|s| expand(s, &vars)).collect();
    (ex(&c.command), ex(&c.args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt() -> Runtime<'static> {
        Runtime {
            pod_ip: "10.42.0.7",
            host_ip: "192.0.2.1",
            node_cpu_milli: 2000,
            node_memory: 1 << 30,
        }
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "U", "labels": {"app": "x"}, "annotations": {"a": "b"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "default", "containers": [{"name": "c",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]},
        }))
        .unwrap()
    }

    fn lookups() -> Lookups {
        let mut l = Lookups::default();
        l.secrets.insert(
            "db".into(),
            Some(
                serde_json::from_value(
                    json!({"data": {"password": "czNjcjN0", "user": "YWRtaW4="}}),
                )
                .unwrap(),
            ),
        );
        l.secrets.insert("gone".into(), None);
        l.config_maps.insert(
            "cfg".into(),
            Some(serde_json::from_value(json!({"data": {"MODE": "fast", "LEVEL": "3"}})).unwrap()),
        );
        l
    }

    fn env_of(
        c: serde_json::Value,
        svc: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let c: Container = serde_json::from_value(c).unwrap();
        container_env(&pod(), &c, &lookups(), svc, &rt())
    }

    #[test]
    fn env_table() {
        let kv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        type Case = (
            &'static str,
            serde_json::Value,
            Result<Vec<(String, String)>, String>,
        );
        let cases: Vec<Case> = vec![
            (
                "plain and expanded",
                json!({"name": "c", "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(NOPE)-$$(A)"}]}),
                Ok(kv(&[("A", "x"), ("B", "x-$(NOPE)-$(A)")])),
            ),
            (
                "secret key",
                json!({"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}),
                Ok(kv(&[("P", "s3cr3t")])),
            ),
            (
                "missing secret",
                json!({"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}),
                Err("secret \"nope\" not found".into()),
            ),
            (
                "missing key",
                json!({"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}]}),
                Err("couldn't find key k in Secret ns/db".into()),
            ),
            (
                "optional missing",
                json!({"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}]}),
                Ok(vec![]),
            ),
            (
                "configmap key",
                json!({"name": "c", "env": [{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}}]}),
                Ok(kv(&[("M", "fast")])),
            ),
            (
                "envFrom with prefix, env overrides",
                json!({"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "C_"}, {"secretRef": {"name": "db"}}],
                "env": [{"name": "user", "value": "root"}]}),
                Ok(kv(&[
                    ("C_LEVEL", "3"),
                    ("C_MODE", "fast"),
                    ("password", "s3cr3t"),
                    ("user", "root"),
                ])),
            ),
            (
                "fieldRef",
                json!({"name": "c", "env": [
                {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}]}),
                Ok(kv(&[
                    ("N", "web"),
                    ("NS", "ns"),
                    ("IP", "10.42.0.7"),
                    ("NODE", "n1"),
                    ("L", "x"),
                    ("SA", "default"),
                ])),
            ),
            (
                "resourceFieldRef",
                json!({"name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}, "env": [
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                {"name": "CPUL", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}),
                Ok(kv(&[("MEM", "64"), ("CPU", "250"), ("CPUL", "2")])),
            ),
            (
                "service env first, then expansion sees it",
                json!({"name": "c", "env": [{"name": "U", "value": "http://$(WEB_SERVICE_HOST)"}]}),
                Ok(kv(&[
                    ("WEB_SERVICE_HOST", "10.43.0.5"),
                    ("U", "http://10.43.0.5"),
                ])),
            ),
        ];
        let svc = kv(&[("WEB_SERVICE_HOST", "10.43.0.5")]);
        for (name, c, want) in cases {
            let svc_env: &[(String, String)] = if name.starts_with("service") {
                &svc
            } else {
                &[]
            };
            assert_eq!(env_of(c, svc_env), want, "{name}");
        }
    }

    #[test]
    fn service_links() {
        let s: Service = serde_json::from_value(json!({"metadata": {"name": "redis-master"},
            "spec": {"clusterIP": "10.43.0.11", "ports": [{"name": "db", "port": 6379}]}}))
        .unwrap();
        let headless: Service = serde_json::from_value(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}})).unwrap();
        let env: HashMap<_, _> = service_env(&[s, headless]).into_iter().collect();
        assert_eq!(env["REDIS_MASTER_SERVICE_HOST"], "10.43.0.11");
        assert_eq!(env["REDIS_MASTER_SERVICE_PORT"], "6379");
        assert_eq!(env["REDIS_MASTER_SERVICE_PORT_DB"], "6379");
        assert_eq!(env["REDIS_MASTER_PORT"], "tcp://10.43.0.11:6379");
        assert_eq!(env["REDIS_MASTER_PORT_6379_TCP_ADDR"], "10.43.0.11");
        assert_eq!(env["REDIS_MASTER_PORT_6379_TCP_PROTO"], "tcp");
        assert!(!env.keys().any(|k| k.starts_with("H_")));
    }

    #[test]
    fn command_expansion() {
        let c: Container = serde_json::from_value(
            json!({"name": "c", "command": ["sh", "-c", "echo $(MSG)"], "args": ["$(X)"]}),
        )
        .unwrap();
        let (cmd, args) = expand_command(&c, &[("MSG".into(), "hi".into())]);
        assert_eq!(cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(args, ["$(X)"]);
    }
}
