//! capstan-printers: pure functions over objects in their JSON wire form.
//!
//! * [`selectors`]: label and field selectors as kube-apiserver parses, validates and matches them.
//! * [`tables`]: server-side printing (`meta.k8s.io/v1` `Table`) with kube-apiserver's v1.32 printer
//!   columns and cell logic, so `kubectl get` output matches a real cluster byte for byte.
//! * [`duration`] and [`quantity`]: the small formatting helpers the printers rely on.
//!
//! **Architecture Invariant:** no I/O, no clock. Callers pass "now" explicitly.
#![forbid(unsafe_code)]

pub mod duration;
pub mod quantity;
pub mod selectors;
pub mod tables;

pub use duration::human_duration;
pub use selectors::{FieldSelector, LabelSelector, SelectorError};
pub use tables::{cells, columns, rows, table, ColumnDefinition};
