//! The kubelet server's TLS: the serving certificate a joined node received from the server
//! (`tls/kubelet.{crt,key}`), or, on the server's own node, one issued at start by the cluster
//! CA (`tls/ca.key`), for the node's InternalIP, hostname, node name and 127.0.0.1; clients must
//! present a certificate that chains to the cluster CA (the API server's kubelet-client
//! credential).

use anyhow::{Context, Result};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The serving certificate and key a joined node stores (issued by the server).
pub const KUBELET_CERT: &str = "kubelet.crt";
pub const KUBELET_KEY: &str = "kubelet.key";

/// Subject alternative names for the node: IPs and DNS names, de-duplicated.
pub fn sans(internal_ip: &str, hostname: &str, node_name: &str) -> Vec<SanType> {
    sans_for(&[internal_ip, "127.0.0.1", hostname, node_name, "localhost"])
}

/// Subject alternative names from IPs and DNS names (invalid and empty ones skipped),
/// de-duplicated, in order.
pub fn sans_for(names: &[&str]) -> Vec<SanType> {
    let mut out: Vec<SanType> = Vec::new();
    for &s in names {
        if s.is_empty() {
            continue;
        }
        let san = match s.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => match s.to_string().try_into() {
                Ok(name) => SanType::DnsName(name),
                Err(_) => continue,
            },
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    out
}

/// A kubelet serving certificate for `node_name` (CN `system:node:<name>`, O `system:nodes`)
/// signed by the CA: (certificate PEM, key PEM).
pub fn issue_serving(
    ca_pem: &str,
    ca_key_pem: &str,
    node_name: &str,
    sans: Vec<SanType>,
) -> Result<(String, String)> {
    let ca_keypair = KeyPair::from_pem(ca_key_pem).context("parsing the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, &ca_keypair).context("parsing the CA")?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "system:nodes");
    dn.push(DnType::CommonName, format!("system:node:{node_name}"));
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The rustls config of the kubelet server: the stored serving certificate when the node
/// joined a server, else one issued now from the CA key in the data dir.
pub fn server_config(
    data_dir: &Path,
    node_name: &str,
    sans: Vec<SanType>,
) -> Result<rustls::ServerConfig> {
    let tls = data_dir.join("tls");
    let ca_pem = std::fs::read_to_string(tls.join("ca.crt")).context("reading tls/ca.crt")?;
    let (cert_pem, key_pem) = if tls.join(KUBELET_CERT).exists() {
        (
            std::fs::read_to_string(tls.join(KUBELET_CERT))?,
            std::fs::read_to_string(tls.join(KUBELET_KEY)).context("reading tls/kubelet.key")?,
        )
    } else {
        let ca_key = std::fs::read_to_string(tls.join("ca.key")).context("reading tls/ca.key")?;
        issue_serving(&ca_pem, &ca_key, node_name, sans)?
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_cover_ip_hostname_and_loopback_once() {
        let got = sans("10.0.0.5", "host1", "host1");
        let want = vec![
            SanType::IpAddress("10.0.0.5".parse().unwrap()),
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::DnsName("host1".to_string().try_into().unwrap()),
            SanType::DnsName("localhost".to_string().try_into().unwrap()),
        ];
        assert_eq!(got, want);
        assert_eq!(sans("127.0.0.1", "", "n").len(), 3);
    }
}
