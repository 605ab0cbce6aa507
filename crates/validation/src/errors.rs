//! `FieldError`, the Kubernetes `field.Error` / `StatusCause` equivalent, with constructors
//! that print messages exactly the way kube-apiserver's `field.Error.ErrorBody()` does,
//! and the aggregate 422 message of `apierrors.NewInvalid`.

use serde_json::Value;

/// One failing field, as a Kubernetes StatusCause.
///
/// `reason` is the cause type ("FieldValueInvalid", "FieldValueRequired", …), `field` the
/// field path ("spec.containers[0].image") and `message` the body kube-apiserver prints
/// (`Required value`, `Invalid value: "x": …`), without the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// Formats a bad value like Go's `%v`/`%q` in `field.Error.ErrorBody`.
pub(crate) fn fmt_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Go's `%q` for a string (close enough: JSON escaping of the same characters).
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

impl FieldError {
    /// `Required value[: detail]`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            message: with_detail("Required value".into(), detail),
        }
    }

    /// `Invalid value: <value>: detail`.
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: with_detail(
                format!("Invalid value: {}", fmt_value(&value.into())),
                detail,
            ),
        }
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: with_detail(
                format!("Unsupported value: {}", fmt_value(&value.into())),
                &detail,
            ),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {}", fmt_value(&value.into())),
        }
    }

    /// `Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: with_detail("Forbidden".into(), detail),
        }
    }

    /// `Too long: may not be more than N bytes` (Kubernetes 1.32 `field.TooLong`).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} {unit}"),
        }
    }

    /// `Invalid value: <value>: detail` with reason FieldValueTypeInvalid.
    pub fn type_invalid(field: impl Into<String>, value: impl Into<Value>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueTypeInvalid",
            field: field.into(),
            message: with_detail(
                format!("Invalid value: {}", fmt_value(&value.into())),
                detail,
            ),
        }
    }

    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            reason: "FieldValueNotFound",
            field: field.into(),
            message: format!("Not found: {}", fmt_value(&value.into())),
        }
    }

    /// `Invalid value: <value>: field is immutable`.
    pub fn immutable(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::invalid(field, value, "field is immutable")
    }
}

/// Field path helpers: `child("spec", "containers")` → "spec.containers".
pub(crate) fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

/// `index("spec.containers", 0)` → "spec.containers[0]".
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `key("data", "a b")` → "data[a b]" (Kubernetes does not quote map keys).
pub(crate) fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// Builds the 422 message kube-apiserver prints:
/// `Pod "web" is invalid: [spec.containers[0].image: Required value, ...]`; a single error has
/// no brackets, and identical errors are printed once (as `utilerrors.NewAggregate` does).
///
/// `kind` is the qualified kind as `schema.GroupKind.String()` prints it: "Pod" for core,
/// "Deployment.apps" otherwise (see [`qualified_kind`]).
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let mut seen = std::collections::HashSet::new();
    let msgs: Vec<String> = errs
        .iter()
        .map(|e| e.to_string())
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let head = format!("{kind} {} is invalid", go_quote(name));
    match msgs.len() {
        0 => head,
        1 => format!("{head}: {}", msgs[0]),
        _ => format!("{head}: [{}]", msgs.join(", ")),
    }
}

/// "Pod" for the core group, "Deployment.apps" otherwise (Go's `GroupKind.String()`).
pub fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let cases: Vec<(FieldError, &str, &str)> = vec![
            (FieldError::required("spec.containers[0].image", ""), "FieldValueRequired", "Required value"),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "FieldValueRequired",
                "Required value: name or generateName is required",
            ),
            (
                FieldError::invalid("spec.ports[0].port", 70000, "must be between 1 and 65535, inclusive"),
                "FieldValueInvalid",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                FieldError::not_supported("spec.restartPolicy", "Foo", &["Always", "OnFailure", "Never"]),
                "FieldValueNotSupported",
                "Unsupported value: \"Foo\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (FieldError::duplicate("spec.containers[1].name", "web"), "FieldValueDuplicate", "Duplicate value: \"web\""),
            (FieldError::forbidden("spec", "nope"), "FieldValueForbidden", "Forbidden: nope"),
            (FieldError::too_long("data", 1048576), "FieldValueTooLong", "Too long: may not be more than 1048576 bytes"),
            (FieldError::immutable("value", 5), "FieldValueInvalid", "Invalid value: 5: field is immutable"),
            (FieldError::not_found("x", "y"), "FieldValueNotFound", "Not found: \"y\""),
            (FieldError::invalid("x", Value::Null, "bad"), "FieldValueInvalid", "Invalid value: null: bad"),
        ];
        for (e, reason, msg) in cases {
            assert_eq!(e.reason, reason);
            assert_eq!(e.message, msg);
        }
    }

    #[test]
    fn aggregate() {
        let one = [FieldError::required("spec.containers[0].image", "")];
        assert_eq!(
            invalid_message("Pod", "web", &one),
            "Pod \"web\" is invalid: spec.containers[0].image: Required value"
        );
        let two = [
            FieldError::required("spec.containers[0].image", ""),
            FieldError::required("spec.containers[0].name", ""),
            FieldError::required("spec.containers[0].name", ""),
        ];
        assert_eq!(
            invalid_message("Deployment.apps", "web", &two),
            "Deployment.apps \"web\" is invalid: [spec.containers[0].image: Required value, spec.containers[0].name: Required value]"
        );
        assert_eq!(qualified_kind("apps", "Deployment"), "Deployment.apps");
        assert_eq!(qualified_kind("", "Pod"), "Pod");
    }
}
