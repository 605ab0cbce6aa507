//! Field selectors (`fields.ParseSelector`): `metadata.name=x,status.phase!=Running`, with the
//! per-kind selectable fields kube-apiserver supports and its value rendering (booleans as
//! "true"/"false", integers in decimal, absent fields as "").

use std::fmt;

use serde_json::Value;

use super::SelectorError;

/// `=`/`==` (has) or `!=` (not has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    Equals,
    DoubleEquals,
    NotEquals,
}

/// One `field op value` term; `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

/// A parsed field selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::DoubleEquals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, rhs));
            }
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError::FieldEscape(format!(
                        "invalid escape sequence: \\{other}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::FieldEscape(format!(
                    "unescaped character in value: {}",
                    u32::from(c)
                )))
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::FieldEscape(
            "invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

/// Fields selectable beyond `metadata.name` (and `metadata.namespace` where listed), per kind,
/// as kube-apiserver's field label conversion functions accept them.
fn supported_fields(kind: &str) -> (bool, &'static [&'static str]) {
    // (metadata.namespace allowed, kind-specific fields)
    match kind {
        "Pod" => (
            true,
            &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
                "spec.host",
            ],
        ),
        "Event" => (
            true,
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
        ),
        "Secret" => (true, &["type"]),
        "Namespace" => (false, &["status.phase"]),
        "Node" => (false, &["spec.unschedulable"]),
        "ReplicationController" | "ReplicaSet" => (true, &["status.replicas"]),
        "Job" => (true, &["status.successful"]),
        "Service" => (true, &["spec.clusterIP", "spec.type"]),
        _ => (true, &[]),
    }
}

fn str_at(obj: &Value, ptr: &str) -> String {
    match obj.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn int_at(obj: &Value, ptr: &str) -> String {
    obj.pointer(ptr)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn bool_at(obj: &Value, ptr: &str) -> String {
    obj.pointer(ptr)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// The value kube-apiserver's `ToSelectableFields` gives `field` for an object of `kind`.
pub(crate) fn field_value(kind: &str, obj: &Value, field: &str) -> String {
    match field {
        "metadata.name" => return str_at(obj, "/metadata/name"),
        "metadata.namespace" => return str_at(obj, "/metadata/namespace"),
        _ => {}
    }
    match (kind, field) {
        ("Pod", "spec.nodeName" | "spec.host") => str_at(obj, "/spec/nodeName"),
        ("Pod", "spec.restartPolicy") => str_at(obj, "/spec/restartPolicy"),
        ("Pod", "spec.schedulerName") => str_at(obj, "/spec/schedulerName"),
        ("Pod", "spec.serviceAccountName") => str_at(obj, "/spec/serviceAccountName"),
        ("Pod", "spec.hostNetwork") => bool_at(obj, "/spec/hostNetwork"),
        ("Pod", "status.phase") => str_at(obj, "/status/phase"),
        ("Pod", "status.podIP" | "status.podIPs") => {
            let first = str_at(obj, "/status/podIPs/0/ip");
            if first.is_empty() {
                str_at(obj, "/status/podIP")
            } else {
                first
            }
        }
        ("Pod", "status.nominatedNodeName") => str_at(obj, "/status/nominatedNodeName"),
        ("Event", f) if f.starts_with("involvedObject.") => {
            let sub = &f["involvedObject.".len()..];
            let base = if obj.get("involvedObject").is_some() {
                "involvedObject"
            } else {
                "regarding"
            };
            str_at(obj, &format!("/{base}/{sub}"))
        }
        ("Event", "reason") => str_at(obj, "/reason"),
        ("Event", "type") => str_at(obj, "/type"),
        ("Event", "reportingComponent") => {
            let s = str_at(obj, "/reportingComponent");
            if s.is_empty() {
                str_at(obj, "/reportingController")
            } else {
                s
            }
        }
        ("Event", "source") => {
            let mut s = str_at(obj, "/source/component");
            if s.is_empty() {
                s = str_at(obj, "/deprecatedSource/component");
            }
            if s.is_empty() {
                s = str_at(obj, "/reportingComponent");
            }
            if s.is_empty() {
                s = str_at(obj, "/reportingController");
            }
            s
        }
        ("Secret", "type") => str_at(obj, "/type"),
        ("Namespace", "status.phase") => str_at(obj, "/status/phase"),
        ("Node", "spec.unschedulable") => bool_at(obj, "/spec/unschedulable"),
        ("ReplicationController" | "ReplicaSet", "status.replicas") => {
            int_at(obj, "/status/replicas")
        }
        ("Job", "status.successful") => int_at(obj, "/status/succeeded"),
        ("Service", "spec.clusterIP") => str_at(obj, "/spec/clusterIP"),
        ("Service", "spec.type") => str_at(obj, "/spec/type"),
        _ => String::new(),
    }
}

impl FieldSelector {
    /// Parses `fields.ParseSelector` syntax: comma-separated `field=value`, `field==value`,
    /// `field!=value`; `\,` `\=` `\\` escape in values.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let (lhs, operator, rhs) =
                split_term(part).ok_or_else(|| SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: part.to_string(),
                })?;
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                operator,
                value: unescape(rhs)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The terms, sorted as the parser sorts them.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// For `metadata.name=X` (or `==`), the name X: lets a server narrow a list to one key.
    pub fn exact_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == "metadata.name" && r.operator != FieldOperator::NotEquals)
            .map(|r| r.value.as_str())
    }

    /// Rejects fields kube-apiserver does not support for `kind`
    /// (`field label not supported: spec.foo`).
    pub fn validate_for(&self, kind: &str) -> Result<(), SelectorError> {
        let (namespace_ok, fields) = supported_fields(kind);
        for r in &self.requirements {
            let ok = r.field == "metadata.name"
                || (namespace_ok && r.field == "metadata.namespace")
                || fields.contains(&r.field.as_str());
            if !ok {
                return Err(SelectorError::FieldNotSupported(r.field.clone()));
            }
        }
        Ok(())
    }

    /// Whether an object of `kind` satisfies every term.
    pub fn matches(&self, kind: &str, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let have = field_value(kind, obj, &r.field);
            match r.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => have == r.value,
                FieldOperator::NotEquals => have != r.value,
            }
        })
    }
}

/// Renders like `fields.Selector.String()`: `f=v` / `f!=v`, values escaped, comma-joined.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = if r.operator == FieldOperator::NotEquals {
                    "!="
                } else {
                    "="
                };
                format!("{}{}{}", r.field, op, escape(&r.value))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_render() {
        let cases = [
            ("", ""),
            ("metadata.name=x", "metadata.name=x"),
            ("metadata.name==x", "metadata.name=x"),
            (
                "status.phase!=Running,metadata.name=x",
                "metadata.name=x,status.phase!=Running",
            ),
            ("a=b\\,c", "a=b\\,c"),
            ("a=b\\=c", "a=b\\=c"),
            ("a=", "a="),
            ("a!=", "a!="),
        ];
        for (input, want) in cases {
            assert_eq!(
                FieldSelector::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        let s = FieldSelector::parse("a=b\\,c").unwrap();
        assert_eq!(s.requirements()[0].value, "b,c");
    }

    #[test]
    fn parse_errors() {
        let cases = [
            (
                "metadata.name",
                "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
            ),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (
                "a=b\\x",
                "invalid field selector: invalid escape sequence: \\x",
            ),
            (
                "a=b\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                FieldSelector::parse(input).unwrap_err().to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn validation() {
        let cases = [
            ("Pod", "spec.nodeName=n1,status.phase=Running", Ok(())),
            (
                "Pod",
                "spec.foo=x",
                Err("field label not supported: spec.foo"),
            ),
            ("ConfigMap", "metadata.name=x,metadata.namespace=y", Ok(())),
            (
                "ConfigMap",
                "data.x=y",
                Err("field label not supported: data.x"),
            ),
            ("Node", "spec.unschedulable=true", Ok(())),
            (
                "Node",
                "metadata.namespace=x",
                Err("field label not supported: metadata.namespace"),
            ),
            (
                "Event",
                "involvedObject.name=web,involvedObject.uid=u",
                Ok(()),
            ),
            ("Secret", "type=Opaque", Ok(())),
            ("Service", "spec.type=ClusterIP", Ok(())),
            ("Job", "status.successful=1", Ok(())),
            ("Namespace", "status.phase=Active", Ok(())),
            ("ReplicaSet", "status.replicas=0", Ok(())),
        ];
        for (kind, sel, want) in cases {
            let got = FieldSelector::parse(sel).unwrap().validate_for(kind);
            assert_eq!(
                got.map_err(|e| e.to_string()),
                want.map_err(str::to_string),
                "{kind} {sel}"
            );
        }
    }

    #[test]
    fn matching() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}
        });
        let cases = [
            ("Pod", &pod, "metadata.name=web", true),
            ("Pod", &pod, "metadata.name=db", false),
            (
                "Pod",
                &pod,
                "metadata.namespace=default,status.phase=Running",
                true,
            ),
            ("Pod", &pod, "status.phase!=Running", false),
            ("Pod", &pod, "spec.nodeName=n1", true),
            ("Pod", &pod, "spec.host=n1", true),
            ("Pod", &pod, "spec.hostNetwork=false", true),
            ("Pod", &pod, "status.podIP=10.0.0.5", true),
            ("Pod", &pod, "spec.schedulerName=", true),
        ];
        for (kind, obj, sel, want) in cases {
            assert_eq!(
                FieldSelector::parse(sel).unwrap().matches(kind, obj),
                want,
                "{sel}"
            );
        }
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        assert!(FieldSelector::parse("spec.unschedulable=true")
            .unwrap()
            .matches("Node", &node));
        let ev = json!({
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "uid": "u1"},
            "source": {"component": "kubelet"}, "type": "Normal", "reason": "Pulled"
        });
        let sel = FieldSelector::parse(
            "involvedObject.name=web,involvedObject.uid=u1,source=kubelet,type=Normal",
        )
        .unwrap();
        assert!(sel.matches("Event", &ev));
        let rs = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        assert!(FieldSelector::parse("status.replicas=3")
            .unwrap()
            .matches("ReplicaSet", &rs));
        let job = json!({"metadata": {"name": "j"}, "status": {}});
        assert!(FieldSelector::parse("status.successful=0")
            .unwrap()
            .matches("Job", &job));
        assert_eq!(
            FieldSelector::parse("metadata.name=x")
                .unwrap()
                .exact_name(),
            Some("x")
        );
    }
}
