//! Label and field selectors, parsed, validated and matched as kube-apiserver does.
//!
//! Error messages follow apimachinery's wording: the API server answers 400 BadRequest with them.

mod field;
mod label;
mod validate;

pub use field::{FieldOperator, FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

/// Why a selector was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector string does not follow the grammar, or a key/value is invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// The label selector string has a syntax error outside a requirement.
    #[error("{0}")]
    Syntax(String),
    /// A `metav1.LabelSelector` JSON object is malformed (bad operator, bad values, wrong types).
    #[error("{0}")]
    Invalid(String),
    /// A field selector term has no `=`, `==` or `!=` operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field selector value has a bad backslash escape.
    #[error("invalid field selector: {0}")]
    FieldEscape(String),
    /// The field is not selectable for this kind.
    #[error("field label not supported: {0}")]
    FieldNotSupported(String),
}
