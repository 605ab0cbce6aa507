//! The cluster's certificates: a CA, the API server's serving certificate, the admin client
//! credential and the API server's client credential towards kubelets
//! (`apiserver-kubelet-client`), created on first start under `<data-dir>/tls` and reused
//! afterwards.
//! Also the admin kubeconfig, the node join token and joining nodes' credentials
//! ([`NodeIssuer`]).

use crate::token;
use anyhow::{Context, Result};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::fs;
use std::path::Path;

/// Paths of the PEM files in the data dir.
pub struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// The API server's client credential towards kubelets (CN kube-apiserver-kubelet-client).
    pub kubelet_client_cert: String,
    pub kubelet_client_key: String,
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

fn validity(params: &mut CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(years * 365);
}

/// Load or create the PKI. `sans` are the serving certificate's names and IPs; when they differ
/// from the stored certificate's, a new serving certificate is issued by the same CA.
pub fn ensure(data_dir: &Path, sans: &[String]) -> Result<Pki> {
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let (ca_cert, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        (
            fs::read_to_string(&ca_cert_path)?,
            fs::read_to_string(&ca_key_path)?,
        )
    } else {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("capstan-ca@{}", chrono::Utc::now().timestamp()),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 10);
        let cert = params.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        fs::write(&ca_cert_path, cert.pem())?;
        (cert.pem(), key.serialize_pem())
    };
    let ca_keypair = KeyPair::from_pem(&ca_key).context("parsing the CA key")?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_cert, &ca_keypair).context("parsing the CA certificate")?;

    // Serving certificate.
    let serving_cert_path = dir.join("serving.crt");
    let serving_key_path = dir.join("serving.key");
    let sans_path = dir.join("serving.sans");
    let want_sans = sans.join(",");
    let have_sans = fs::read_to_string(&sans_path).unwrap_or_default();
    if !(serving_cert_path.exists() && serving_key_path.exists() && have_sans == want_sans) {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(s.clone().try_into()?)),
            })
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 1);
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&serving_key_path, &key.serialize_pem())?;
        fs::write(&serving_cert_path, cert.pem())?;
        fs::write(&sans_path, &want_sans)?;
    }

    // Admin client credential.
    let admin_cert_path = dir.join("client-admin.crt");
    let admin_key_path = dir.join("client-admin.key");
    if !(admin_cert_path.exists() && admin_key_path.exists()) {
        let (cert, key) = issue_client(&issuer, "admin", &["system:masters"])?;
        write_private(&admin_key_path, &key)?;
        fs::write(&admin_cert_path, cert)?;
    }
    // The API server's credential for kubelets (logs, exec, attach, port-forward), as kubeadm's.
    let kc_cert_path = dir.join("apiserver-kubelet-client.crt");
    let kc_key_path = dir.join("apiserver-kubelet-client.key");
    if !(kc_cert_path.exists() && kc_key_path.exists()) {
        let (cert, key) = issue_client(
            &issuer,
            "kube-apiserver-kubelet-client",
            &["system:masters"],
        )?;
        write_private(&kc_key_path, &key)?;
        fs::write(&kc_cert_path, cert)?;
    }
    Ok(Pki {
        kubelet_client_cert: fs::read_to_string(&kc_cert_path)?,
        kubelet_client_key: fs::read_to_string(&kc_key_path)?,
        ca_cert,
        serving_cert: fs::read_to_string(&serving_cert_path)?,
        serving_key: fs::read_to_string(&serving_key_path)?,
        admin_cert: fs::read_to_string(&admin_cert_path)?,
        admin_key: fs::read_to_string(&admin_key_path)?,
    })
}

/// A client certificate (PEM cert, PEM key) with CN = user and O = groups.
pub fn issue_client(
    issuer: &Issuer<'_, &KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    for g in groups {
        dn.push(DnType::OrganizationName, *g);
    }
    dn.push(DnType::CommonName, user);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 1);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Write `<data-dir>/admin.kubeconfig` pointing at `server` with the admin credential embedded.
pub fn write_kubeconfig(path: &Path, server: &str, pki: &Pki) -> Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\npreferences: {{}}\nusers:\n- name: default\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&pki.ca_cert),
        server,
        b64(&pki.admin_cert),
        b64(&pki.admin_key)
    );
    write_private(path, &cfg)
}

/// The node join token (`K10<sha256 of the CA>::server:<secret>`, [`crate::token`]), created
/// once; a stored token in an older form, or for another CA, is rewritten with its secret kept.
pub fn ensure_token(data_dir: &Path, ca_cert: &str) -> Result<(String, token::Token)> {
    let path = data_dir.join("token");
    let stored = fs::read_to_string(&path)
        .ok()
        .and_then(|t| token::parse(&t).ok());
    let secret = match stored {
        Some(t) if t.verify_ca(ca_cert.as_bytes()).is_ok() && t.user == "server" => {
            let full = fs::read_to_string(&path)?.trim().to_string();
            return Ok((full, t));
        }
        Some(t) => t.secret,
        None => {
            use rand::Rng;
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(40)
                .map(char::from)
                .collect()
        }
    };
    let full = token::format(ca_cert.as_bytes(), &secret);
    write_private(&path, &format!("{full}\n"))?;
    let parsed = token::parse(&full).map_err(anyhow::Error::msg)?;
    Ok((full, parsed))
}

/// Issues joining nodes' credentials from the CA in the data dir.
pub struct NodeIssuer {
    pub ca_cert: String,
    pub ca_key: String,
}

impl NodeIssuer {
    pub fn load(data_dir: &Path) -> Result<NodeIssuer> {
        let tls = data_dir.join("tls");
        Ok(NodeIssuer {
            ca_cert: fs::read_to_string(tls.join("ca.crt"))?,
            ca_key: fs::read_to_string(tls.join("ca.key"))?,
        })
    }
}

impl capstan_apiserver::join::IssueNodeCredentials for NodeIssuer {
    /// Client: CN `system:node:<name>`, O `system:nodes`. Serving: the node's addresses plus
    /// its name, 127.0.0.1 and localhost.
    fn issue(
        &self,
        node_name: &str,
        addresses: &[String],
    ) -> Result<capstan_apiserver::join::NodeCredentials, String> {
        let run = || -> Result<capstan_apiserver::join::NodeCredentials> {
            let ca_keypair = KeyPair::from_pem(&self.ca_key)?;
            let issuer = Issuer::from_ca_cert_pem(&self.ca_cert, &ca_keypair)?;
            let (client_cert, client_key) = issue_client(
                &issuer,
                &format!("system:node:{node_name}"),
                &["system:nodes"],
            )?;
            let mut names: Vec<&str> = addresses.iter().map(String::as_str).collect();
            names.extend([node_name, "127.0.0.1", "localhost"]);
            let sans = capstan_agent::kubelet::tls::sans_for(&names);
            let (serving_cert, serving_key) = capstan_agent::kubelet::tls::issue_serving(
                &self.ca_cert,
                &self.ca_key,
                node_name,
                sans,
            )?;
            Ok(capstan_apiserver::join::NodeCredentials {
                client_cert,
                client_key,
                serving_cert,
                serving_key,
            })
        };
        run().map_err(|e| format!("{e:#}"))
    }
}

/// The rustls client config the API server dials kubelets with: their serving certificates must
/// chain to the cluster CA; it presents the apiserver-kubelet-client certificate; HTTP/1.1 only
/// (upgrades).
pub fn kubelet_client_tls(pki: &Pki) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_cert.as_bytes()) {
        roots.add(c?)?;
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.kubelet_client_cert.as_bytes())
            .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.kubelet_client_key.as_bytes())?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A rustls server config: the serving certificate, client certificates verified against the
/// CA when presented (requests without one fall back to bearer tokens or 401), h2 and http/1.1.
pub fn server_tls(pki: &Pki) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_cert.as_bytes()) {
        roots.add(c?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.serving_cert.as_bytes())
            .chain(CertificateDer::pem_slice_iter(pki.ca_cert.as_bytes()))
            .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key.as_bytes())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
