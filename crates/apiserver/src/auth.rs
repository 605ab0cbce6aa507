//! Authentication: client certificates signed by the cluster CA (CN = user, O = groups) and
//! bearer tokens the server knows. Anonymous requests reach only the public health and version
//! endpoints.

use crate::ApiServer;
use std::sync::Arc;

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// Read CN and O from a DER certificate already verified by rustls against the cluster CA.
pub fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(User { name, groups })
}

/// Look a bearer token up among the tokens the server issued.
pub fn user_from_bearer(api: &Arc<ApiServer>, headers: &http::HeaderMap) -> Option<User> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    api.config
        .tokens
        .iter()
        .find(|(t, _)| t == token)
        .map(|(_, u)| u.clone())
}

/// Paths anyone may read, as kube-apiserver's system:public-info-viewer allows.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/livez" | "/readyz" | "/healthz" | "/version" | "/version/"
    ) || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
        || path.starts_with("/healthz/")
}
