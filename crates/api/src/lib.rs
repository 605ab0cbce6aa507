//! Capstan's object model: the resource registry and the pure functions over
//! Kubernetes objects (as `serde_json::Value`) that the API server applies on every
//! request. Nothing here does I/O.

pub mod resources;
