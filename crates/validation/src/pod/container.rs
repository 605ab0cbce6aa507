//! Container validation: names, images, ports, env, mounts, resources, probes and
//! security contexts.

use std::collections::HashSet;

use serde_json::Value;

use crate::errors::{child, index, key, FieldError};
use crate::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_label, is_env_var_name, is_qualified_name,
    is_valid_port_name, is_valid_port_num,
};
use crate::quantity::{Quantity, QUANTITY_FORMAT_MSG};
use crate::util::{arr, get, has, int, obj, s, sd};

type Errs = Vec<FieldError>;

use super::nonneg;

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

#[allow(clippy::too_many_arguments)]
pub(super) fn validate_container(
    c: &Value,
    path: &str,
    init: bool,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    port_names: &mut HashSet<String>,
    spec: &Value,
    errs: &mut Errs,
) {
    let name = sd(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, &msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(path, "name"), name));
        }
    }
    let image = sd(c, "image");
    if image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    match s(c, "imagePullPolicy").unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "imagePullPolicy"), "")),
        p if !PULL_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "imagePullPolicy"),
            p,
            PULL_POLICIES,
        )),
        _ => {}
    }
    match s(c, "terminationMessagePolicy").unwrap_or("") {
        "" => errs.push(FieldError::required(
            child(path, "terminationMessagePolicy"),
            "",
        )),
        p if !TERMINATION_MESSAGE_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "terminationMessagePolicy"),
            p,
            TERMINATION_MESSAGE_POLICIES,
        )),
        _ => {}
    }
    let sidecar = s(c, "restartPolicy");
    match (init, sidecar) {
        (_, None) => {}
        (true, Some("Always")) => {}
        (true, Some(p)) => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            p,
            &["Always"],
        )),
        (false, Some(_)) => errs.push(FieldError::forbidden(
            child(path, "restartPolicy"),
            "may not be set for non-init containers",
        )),
    }
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for (j, port) in arr(c, "ports").iter().enumerate() {
        let p = index(&child(path, "ports"), j);
        if let Some(n) = s(port, "name").filter(|n| !n.is_empty()) {
            for msg in is_valid_port_name(n) {
                errs.push(FieldError::invalid(child(&p, "name"), n, &msg));
            }
            if !port_names.insert(n.to_string()) {
                errs.push(FieldError::duplicate(child(&p, "name"), n));
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for msg in is_valid_port_num(cp) {
                errs.push(FieldError::invalid(child(&p, "containerPort"), cp, &msg));
            }
        }
        if let Some(hp) = int(port, "hostPort").filter(|&h| h != 0) {
            for msg in is_valid_port_num(hp) {
                errs.push(FieldError::invalid(child(&p, "hostPort"), hp, &msg));
            }
            if host_network && hp != cp {
                errs.push(FieldError::invalid(
                    child(&p, "hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        match s(port, "protocol").unwrap_or("") {
            "" => errs.push(FieldError::required(child(&p, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                pr,
                PROTOCOLS,
            )),
            _ => {}
        }
    }
    validate_env(arr(c, "env"), &child(path, "env"), errs);
    for (j, e) in arr(c, "envFrom").iter().enumerate() {
        let p = index(&child(path, "envFrom"), j);
        if let Some(prefix) = s(e, "prefix").filter(|x| !x.is_empty()) {
            for msg in is_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&p, "prefix"), prefix, &msg));
            }
        }
        let n = ["configMapRef", "secretRef"]
            .iter()
            .filter(|k| has(e, k))
            .count();
        if n == 0 {
            errs.push(FieldError::invalid(
                &p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &p,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    let mut mount_paths = HashSet::new();
    for (j, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = index(&child(path, "volumeMounts"), j);
        let n = sd(m, "name");
        if n.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else if !volumes.contains(n) {
            errs.push(FieldError::not_found(child(&p, "name"), n));
        }
        let mp = sd(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        } else if !mount_paths.insert(mp.to_string()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mp,
                "must be unique",
            ));
        }
        if let Some(sp) = s(m, "subPath").filter(|x| !x.is_empty()) {
            if sp.starts_with('/') {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    sp,
                    "must be a relative path",
                ));
            } else if sp.split('/').any(|x| x == "..") {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    sp,
                    "must not contain '..'",
                ));
            }
        }
        if let Some(mpp) = s(m, "mountPropagation") {
            const MP: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !MP.contains(&mpp) {
                errs.push(FieldError::not_supported(
                    child(&p, "mountPropagation"),
                    mpp,
                    MP,
                ));
            }
        }
    }
    validate_resources(get(c, "resources"), &child(path, "resources"), errs);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if !has(c, probe) {
            continue;
        }
        if init && sidecar != Some("Always") {
            errs.push(FieldError::forbidden(
                child(path, probe),
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        validate_probe(
            get(c, probe),
            &child(path, probe),
            probe != "readinessProbe",
            errs,
        );
    }
    validate_container_security_context(
        get(c, "securityContext"),
        &child(path, "securityContext"),
        errs,
    );
}

fn validate_env(env: &[Value], path: &str, errs: &mut Errs) {
    for (j, e) in env.iter().enumerate() {
        let p = index(path, j);
        let n = sd(e, "name");
        if n.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for msg in is_env_var_name(n) {
                errs.push(FieldError::invalid(child(&p, "name"), n, &msg));
            }
        }
        let Some(vf) = e.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let vp = child(&p, "valueFrom");
        let refs: Vec<&str> = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .into_iter()
        .filter(|k| has(vf, k))
        .collect();
        if refs.is_empty() {
            errs.push(FieldError::invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if refs.len() > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
        if !sd(e, "value").is_empty() && !refs.is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        for r in refs {
            let rv = get(vf, r);
            let rp = child(&vp, r);
            match r {
                "fieldRef" => {
                    if sd(rv, "fieldPath").is_empty() {
                        errs.push(FieldError::required(child(&rp, "fieldPath"), ""));
                    }
                }
                "resourceFieldRef" => {
                    if sd(rv, "resource").is_empty() {
                        errs.push(FieldError::required(child(&rp, "resource"), ""));
                    }
                }
                _ => {
                    let k = sd(rv, "key");
                    if k.is_empty() {
                        errs.push(FieldError::required(child(&rp, "key"), ""));
                    } else {
                        for msg in is_config_map_key(k) {
                            errs.push(FieldError::invalid(child(&rp, "key"), k, &msg));
                        }
                    }
                    if sd(rv, "name").is_empty() {
                        errs.push(FieldError::required(child(&rp, "name"), ""));
                    }
                }
            }
        }
    }
}

fn quantity_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `ValidateContainerResourceRequirements`: names, non-negative quantities, requests ≤ limits.
pub(crate) fn validate_resources(res: &Value, path: &str, errs: &mut Errs) {
    let mut parsed: Vec<(&str, String, Option<Quantity>)> = Vec::new();
    for which in ["limits", "requests"] {
        let Some(m) = obj(res, which) else { continue };
        let wp = child(path, which);
        for (name, q) in m {
            let kp = key(&wp, name);
            for msg in is_qualified_name(name) {
                errs.push(FieldError::invalid(&kp, name.as_str(), &msg));
            }
            let native = !name.contains('/') || name.contains("kubernetes.io/");
            if native
                && !name.contains('/')
                && !STANDARD_CONTAINER_RESOURCES.contains(&name.as_str())
                && !name.starts_with("hugepages-")
            {
                errs.push(FieldError::invalid(
                    &kp,
                    name.as_str(),
                    "must be a standard resource for containers",
                ));
            }
            let qs = quantity_str(q);
            match Quantity::parse(&qs) {
                Ok(qty) => {
                    if qty.is_negative() {
                        errs.push(FieldError::invalid(
                            &kp,
                            qs.as_str(),
                            "must be greater than or equal to 0",
                        ));
                    }
                    if name == "cpu"
                        || name == "memory"
                        || name == "ephemeral-storage"
                        || name.starts_with("hugepages-")
                    {
                        parsed.push((which, name.clone(), Some(qty)));
                    }
                }
                Err(_) => errs.push(FieldError::type_invalid(
                    &kp,
                    qs.as_str(),
                    QUANTITY_FORMAT_MSG,
                )),
            }
        }
    }
    for (which, name, q) in &parsed {
        if *which != "requests" {
            continue;
        }
        let limit = parsed.iter().find(|(w, n, _)| *w == "limits" && n == name);
        if let (Some(req), Some((_, _, Some(lim)))) = (q, limit) {
            if req > lim {
                let rs = quantity_str(get(get(res, "requests"), name));
                let ls = quantity_str(get(get(res, "limits"), name));
                errs.push(FieldError::invalid(
                    key(&child(path, "requests"), name),
                    rs.as_str(),
                    &format!("must be less than or equal to {name} limit of {ls}"),
                ));
            }
        }
    }
}

fn validate_probe_port(port: &Value, path: &str, errs: &mut Errs) {
    match port {
        Value::Number(_) => {
            let n = port.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, &msg));
            }
        }
        Value::String(s) => {
            for msg in is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), &msg));
            }
        }
        _ => errs.push(FieldError::required(path, "")),
    }
}

fn validate_probe(probe: &Value, path: &str, success_must_be_one: bool, errs: &mut Errs) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|k| has(probe, k))
        .collect();
    match handlers.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a handler type")),
        [_, second, ..] => errs.push(FieldError::forbidden(
            child(path, second),
            "may not specify more than 1 handler type",
        )),
        _ => {}
    }
    if let Some(h) = probe.get("httpGet").filter(|v| !v.is_null()) {
        let hp = child(path, "httpGet");
        validate_probe_port(get(h, "port"), &child(&hp, "port"), errs);
        if let Some(sch) = s(h, "scheme") {
            if !["HTTP", "HTTPS"].contains(&sch) {
                errs.push(FieldError::not_supported(
                    child(&hp, "scheme"),
                    sch,
                    &["HTTP", "HTTPS"],
                ));
            }
        }
    }
    if let Some(t) = probe.get("tcpSocket").filter(|v| !v.is_null()) {
        validate_probe_port(
            get(t, "port"),
            &child(&child(path, "tcpSocket"), "port"),
            errs,
        );
    }
    if let Some(g) = probe.get("grpc").filter(|v| !v.is_null()) {
        let n = int(g, "port").unwrap_or(0);
        for msg in is_valid_port_num(n) {
            errs.push(FieldError::invalid(
                child(&child(path, "grpc"), "port"),
                n,
                &msg,
            ));
        }
    }
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonneg(probe, f, path, errs);
    }
    if success_must_be_one {
        if let Some(st) = int(probe, "successThreshold").filter(|&n| n != 1) {
            errs.push(FieldError::invalid(
                child(path, "successThreshold"),
                st,
                "must be 1",
            ));
        }
    }
    if let Some(t) = int(probe, "terminationGracePeriodSeconds").filter(|&n| n <= 0) {
        errs.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
}

fn validate_ids(sc: &Value, path: &str, fields: &[&str], errs: &mut Errs) {
    for f in fields {
        if let Some(n) = int(sc, f) {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(
                    child(path, f),
                    n,
                    &inclusive_range_error(0, i32::MAX.into()),
                ));
            }
        }
    }
}

pub(super) fn validate_pod_security_context(sc: &Value, path: &str, errs: &mut Errs) {
    if sc.is_null() {
        return;
    }
    validate_ids(sc, path, &["runAsUser", "runAsGroup", "fsGroup"], errs);
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        if let Some(n) = g
            .as_i64()
            .filter(|n| !(0..=i64::from(i32::MAX)).contains(n))
        {
            errs.push(FieldError::invalid(
                index(&child(path, "supplementalGroups"), i),
                n,
                &inclusive_range_error(0, i32::MAX.into()),
            ));
        }
    }
    if let Some(p) = s(sc, "fsGroupChangePolicy") {
        if !["OnRootMismatch", "Always"].contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "fsGroupChangePolicy"),
                p,
                &["OnRootMismatch", "Always"],
            ));
        }
    }
}

fn validate_container_security_context(sc: &Value, path: &str, errs: &mut Errs) {
    if sc.is_null() {
        return;
    }
    validate_ids(sc, path, &["runAsUser", "runAsGroup"], errs);
    let privileged = sc.get("privileged").and_then(Value::as_bool) == Some(true);
    let no_escalation = sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false);
    if privileged && no_escalation {
        errs.push(FieldError::invalid(
            path,
            Value::Null,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    if let Some(p) = s(sc, "procMount") {
        if !["Default", "Unmasked"].contains(&p) {
            errs.push(FieldError::not_supported(
                child(path, "procMount"),
                p,
                &["Default", "Unmasked"],
            ));
        }
    }
}
