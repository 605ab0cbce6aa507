//! The message schema the generic codec walks: one [`Msg`] per Kubernetes protobuf message, with its
//! fields' tags, JSON names, types and cardinalities (data in `generated/table.rs`).

use crate::generated::table::{KINDS, MESSAGES};

/// One protobuf message: short proto name (`apps.v1.Deployment`), JSON special form, fields sorted by tag.
pub(crate) struct Msg(pub &'static str, pub Special, pub &'static [Field]);

/// One field: tag, JSON name (empty for inline), value type, cardinality.
pub(crate) struct Field(pub u32, pub &'static str, pub Ty, pub Card);

/// The value type of a field (map fields: the value type; keys are always strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
    /// A message: index into [`MESSAGES`].
    M(u16),
}

/// How a field appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    /// Singular, Go non-pointer with `omitempty`: a zero scalar is dropped from JSON.
    One,
    /// Singular, Go pointer or required: a zero scalar is kept in JSON.
    Keep,
    /// Repeated.
    Many,
    /// `map<string, V>`: entries are messages {1: key, 2: value}.
    Map,
    /// An embedded Go struct (`json:",inline"`): its fields merge into the parent's JSON object.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// meta.v1.Time {1 seconds, 2 nanos} → RFC 3339 with second precision.
    Time,
    /// meta.v1.MicroTime → RFC 3339 with 6 fractional digits.
    MicroTime,
    /// meta.v1.Duration {1 ns} → Go duration string.
    Duration,
    /// {1 raw bytes} holding JSON (RawExtension, FieldsV1, apiextensions JSON) → the parsed JSON.
    RawJson,
    /// {1 repeated string items} (ExtraValue, Verbs) → a JSON array of strings.
    StringList,
    /// intstr.IntOrString {1 type, 2 intVal, 3 strVal} → number or string.
    IntOrString,
    /// resource.Quantity {1 string} → string.
    Quantity,
    /// JSONSchemaPropsOr{Array,StringArray} {1 schema, 2 list} → the schema or the list.
    OrArray,
    /// JSONSchemaPropsOrBool {1 allows, 2 schema} → the schema or the bool.
    OrBool,
}

pub(crate) fn msg(index: u16) -> &'static Msg {
    &MESSAGES[usize::from(index)]
}

impl Msg {
    pub(crate) fn name(&self) -> &'static str {
        self.0
    }

    pub(crate) fn special(&self) -> Special {
        self.1
    }

    pub(crate) fn fields(&self) -> &'static [Field] {
        self.2
    }

    pub(crate) fn field(&self, tag: u32) -> Option<&'static Field> {
        let fields = self.2;
        fields
            .binary_search_by_key(&tag, |f| f.0)
            .ok()
            .map(|i| &fields[i])
    }
}

/// The message for an (apiVersion, kind); meta/v1 kinds (DeleteOptions, Status, …) match any apiVersion.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<u16> {
    KINDS
        .iter()
        .find(|(gv, k, _)| *gv == api_version && *k == kind)
        .or_else(|| KINDS.iter().find(|(gv, k, _)| *gv == "*" && *k == kind))
        .map(|(_, _, i)| *i)
}

/// Every (apiVersion, kind) with a message, "*" meaning any apiVersion.
pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(gv, k, _)| (*gv, *k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_sorted_and_message_refs_resolve() {
        for m in MESSAGES {
            for w in m.fields().windows(2) {
                assert!(w[0].0 < w[1].0, "{} fields out of order", m.name());
            }
            for f in m.fields() {
                if let Ty::M(i) = f.2 {
                    assert!(usize::from(i) < MESSAGES.len(), "{}.{}", m.name(), f.1);
                }
            }
        }
    }

    #[test]
    fn kind_lookup() {
        let cases = [
            ("apps/v1", "Deployment", Some("apps.v1.Deployment")),
            ("v1", "Namespace", Some("core.v1.Namespace")),
            ("v1", "DeleteOptions", Some("meta.v1.DeleteOptions")),
            ("policy/v1", "DeleteOptions", Some("meta.v1.DeleteOptions")),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                Some("autoscaling.v2.HorizontalPodAutoscaler"),
            ),
            ("autoscaling/v1", "Scale", Some("autoscaling.v1.Scale")),
            (
                "authorization.k8s.io/v1",
                "SelfSubjectAccessReview",
                Some("authorization.v1.SelfSubjectAccessReview"),
            ),
            ("apps/v1", "Pod", None),
            ("example.com/v1", "Widget", None),
        ];
        for (gv, kind, want) in cases {
            assert_eq!(
                message_for_kind(gv, kind).map(|i| msg(i).name()),
                want,
                "{gv} {kind}"
            );
        }
    }

    #[test]
    fn every_served_resource_has_a_message() {
        for r in capstan_api::resources::RESOURCES {
            assert!(
                message_for_kind(&r.api_version(), r.kind).is_some(),
                "{} {}",
                r.api_version(),
                r.kind
            );
        }
        for (gv, kind) in [
            ("authentication.k8s.io/v1", "TokenRequest"),
            ("policy/v1", "Eviction"),
            ("v1", "Binding"),
            ("meta.k8s.io/v1", "DeleteOptions"),
            ("authorization.k8s.io/v1", "SubjectAccessReview"),
        ] {
            assert!(message_for_kind(gv, kind).is_some(), "{gv} {kind}");
        }
    }

    #[test]
    fn json_names_come_from_kubernetes() {
        let find = |name: &str| MESSAGES.iter().find(|m| m.name() == name).unwrap();
        let names = |name: &str| find(name).fields().iter().map(|f| f.1).collect::<Vec<_>>();
        assert!(names("core.v1.PodStatus").contains(&"podIP"));
        assert!(names("core.v1.ServiceSpec").contains(&"clusterIP"));
        assert!(names("core.v1.ServiceSpec").contains(&"externalIPs"));
        assert!(names("core.v1.PodSpec").contains(&"hostIPC"));
        assert!(names("autoscaling.v1.HorizontalPodAutoscalerSpec")
            .contains(&"targetCPUUtilizationPercentage"));
        assert_eq!(find("core.v1.Volume").field(1).unwrap().1, "name");
        assert_eq!(find("core.v1.Volume").field(2).unwrap().3, Card::Inline);
    }
}
