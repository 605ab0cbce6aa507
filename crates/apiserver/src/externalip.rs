//! OpenShift's ExternalIPRanger admission for Services: spec.externalIPs must lie in the
//! administrator's CIDRs (`--external-ip-cidrs`, `!` rejects; none configured: externalIPs
//! are disabled). The LoadBalancer ingress pool is not the user's to pick from: an address
//! inside it is an externalIP only when it is the one the service-lb controller assigned
//! (status.loadBalancer.ingress[0].ip of the stored LoadBalancer service, as OpenShift's
//! allowIngressIP rule).

use crate::status::ApiResult;
use crate::Config;
use capstan_validation::cidr::{Cidr, CidrRules};
use capstan_validation::FieldError;
use serde_json::Value;
use std::net::Ipv4Addr;

/// The field errors for `svc` (its stored version `old` on updates).
pub fn check(
    rules: &CidrRules,
    ingress: Option<&Cidr>,
    svc: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let ips: Vec<&str> = svc
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        return Vec::new();
    }
    let is_lb = svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
    let ingress_ip = old
        .filter(|_| is_lb)
        .and_then(|o| o.pointer("/status/loadBalancer/ingress/0/ip"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if rules.admit.is_empty() {
        if ips.len() == 1 && ips[0] == ingress_ip {
            return Vec::new();
        }
        return vec![FieldError::forbidden(
            "spec.externalIPs",
            "externalIPs have been disabled",
        )];
    }
    let mut errs = Vec::new();
    for (i, s) in ips.iter().enumerate() {
        let field = format!("spec.externalIPs[{i}]");
        let Ok(ip) = s.parse::<Ipv4Addr>() else {
            errs.push(FieldError::forbidden(
                field,
                "externalIPs must be a valid address",
            ));
            continue;
        };
        if *s == ingress_ip {
            continue;
        }
        if !rules.allows(ip) || ingress.is_some_and(|c| c.contains(ip)) {
            errs.push(FieldError::forbidden(field, "externalIP is not allowed"));
        }
    }
    errs
}

/// 422 when `svc`'s externalIPs are not allowed.
pub fn admit(config: &Config, svc: &Value, old: Option<&Value>) -> ApiResult<()> {
    let errs = check(
        &config.external_ip_cidrs,
        config.ingress_ip_cidr.as_ref(),
        svc,
        old,
    );
    if errs.is_empty() {
        return Ok(());
    }
    let res = capstan_api::resources::find("", "v1", "services").expect("registered");
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(crate::codec::invalid(res, name, &errs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ty: &str, ips: &[&str]) -> Value {
        json!({"metadata": {"name": "s"}, "spec": {"type": ty, "externalIPs": ips}})
    }

    #[test]
    fn table() {
        let pool = Cidr::parse("172.29.0.0/16").unwrap();
        let assigned = json!({"spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.29.0.7", "ipMode": "VIP"}]}}});
        let cases: Vec<(&str, Value, Option<&Value>, Vec<&str>)> = vec![
            ("", svc("ClusterIP", &[]), None, vec![]),
            (
                "",
                svc("ClusterIP", &["1.2.3.4"]),
                None,
                vec!["spec.externalIPs: Forbidden: externalIPs have been disabled"],
            ),
            // The assigned ingress IP alone is fine even with externalIPs disabled.
            (
                "",
                svc("LoadBalancer", &["172.29.0.7"]),
                Some(&assigned),
                vec![],
            ),
            (
                "",
                svc("ClusterIP", &["172.29.0.7"]),
                Some(&assigned),
                vec!["spec.externalIPs: Forbidden: externalIPs have been disabled"],
            ),
            (
                "192.168.0.0/16",
                svc("ClusterIP", &["192.168.1.1"]),
                None,
                vec![],
            ),
            (
                "192.168.0.0/16",
                svc("NodePort", &["192.168.1.1", "10.0.0.1"]),
                None,
                vec!["spec.externalIPs[1]: Forbidden: externalIP is not allowed"],
            ),
            (
                "192.168.0.0/16,!192.168.5.0/24",
                svc("ClusterIP", &["192.168.5.5"]),
                None,
                vec!["spec.externalIPs[0]: Forbidden: externalIP is not allowed"],
            ),
            // The pool is refused even inside an admitted CIDR, unless it is the assigned IP.
            (
                "172.16.0.0/12",
                svc("LoadBalancer", &["172.29.0.8"]),
                Some(&assigned),
                vec!["spec.externalIPs[0]: Forbidden: externalIP is not allowed"],
            ),
            (
                "10.0.0.0/8",
                svc("LoadBalancer", &["172.29.0.7", "10.1.1.1"]),
                Some(&assigned),
                vec![],
            ),
            (
                "10.0.0.0/8",
                svc("ClusterIP", &["nope"]),
                None,
                vec!["spec.externalIPs[0]: Forbidden: externalIPs must be a valid address"],
            ),
        ];
        for (rules, s, old, want) in cases {
            let r = CidrRules::parse(rules).unwrap();
            let got: Vec<String> = check(&r, Some(&pool), &s, old)
                .iter()
                .map(|e| e.to_string())
                .collect();
            assert_eq!(got, want, "{rules} {s}");
        }
    }
}
