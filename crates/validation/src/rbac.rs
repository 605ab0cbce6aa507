//! RBAC validation: Role/ClusterRole rules, RoleBinding/ClusterRoleBinding roleRef and subjects.

use serde_json::Value;

use crate::errors::{child, index, FieldError};
use crate::names::is_path_segment_name;
use crate::util::{arr, get, sd};

type Errs = Vec<FieldError>;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidatePolicyRule` for every rule of a Role (`namespaced`) or ClusterRole.
pub(crate) fn validate_role(role: &Value, namespaced: bool, errs: &mut Errs) {
    for (i, r) in arr(role, "rules").iter().enumerate() {
        let p = index("rules", i);
        if arr(r, "verbs").is_empty() {
            errs.push(FieldError::required(
                child(&p, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr(r, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(r, "apiGroups").is_empty()
                || !arr(r, "resources").is_empty()
                || !arr(r, "resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(r, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                child(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(r, "resources").is_empty() {
            errs.push(FieldError::required(
                child(&p, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
pub(crate) fn validate_binding(b: &Value, namespaced: bool, errs: &mut Errs) {
    let rr = get(b, "roleRef");
    let group = sd(rr, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            group,
            &[RBAC_GROUP],
        ));
    }
    let kind = sd(rr, "kind");
    let kinds: &[&str] = if namespaced {
        &["ClusterRole", "Role"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported("roleRef.kind", kind, kinds));
    }
    let name = sd(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in is_path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", name, &msg));
        }
    }
    for (i, s) in arr(b, "subjects").iter().enumerate() {
        let p = index("subjects", i);
        if sd(s, "name").is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        let g = sd(s, "apiGroup");
        match sd(s, "kind") {
            "ServiceAccount" => {
                if !g.is_empty() {
                    errs.push(FieldError::not_supported(child(&p, "apiGroup"), g, &[""]));
                }
                if !namespaced && sd(s, "namespace").is_empty() {
                    errs.push(FieldError::required(child(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if g != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        g,
                        &[RBAC_GROUP],
                    ));
                }
            }
            k => errs.push(FieldError::not_supported(
                child(&p, "kind"),
                k,
                &["Group", "ServiceAccount", "User"],
            )),
        }
    }
}

/// Binding update: `roleRef` cannot change.
pub(crate) fn validate_binding_update(new: &Value, old: &Value, errs: &mut Errs) {
    if get(new, "roleRef") != get(old, "roleRef") {
        errs.push(FieldError::invalid(
            "roleRef",
            get(new, "roleRef").clone(),
            "cannot change roleRef",
        ));
    }
}
