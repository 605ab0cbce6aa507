//! Registry mirrors and credentials in k3s's `registries.yaml` form, rendered into containerd's
//! `certs.d/<host>/hosts.toml` (containerd reads that directory on every pull, so an edited
//! file takes effect at the next pull):
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5000":
//!     auth: {username: u, password: p}
//!     tls: {insecure_skip_verify: true}
//! ```

use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// host → hosts.toml for a registries document (pure).
pub fn render(doc: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let configs = doc
        .get("configs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let host_of = |endpoint: &str| {
        endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    };
    let host_block = |endpoint: &str| -> String {
        let mut b = format!("[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
        if let Some(c) = configs.get(&host_of(endpoint)) {
            if c.pointer("/tls/insecure_skip_verify")
                .and_then(Value::as_bool)
                == Some(true)
            {
                b.push_str("  skip_verify = true\n");
            }
            if let Some(a) = c.get("auth") {
                let (u, p) = (
                    a["username"].as_str().unwrap_or(""),
                    a["password"].as_str().unwrap_or(""),
                );
                if !u.is_empty() {
                    let token =
                        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                    b.push_str(&format!(
                        "  [host.\"{endpoint}\".header]\n    Authorization = [\"Basic {token}\"]\n"
                    ));
                }
            }
        }
        b
    };
    let mirrors = doc
        .get("mirrors")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (registry, m) in &mirrors {
        let endpoints: Vec<String> = m
            .get("endpoint")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("mirrors.{registry}.endpoint must be a list"))?
            .iter()
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        let upstream = if registry == "docker.io" {
            "https://registry-1.docker.io".to_string()
        } else {
            format!("https://{registry}")
        };
        let mut t = format!("server = \"{upstream}\"\n\n");
        for e in &endpoints {
            t.push_str(&host_block(e));
            t.push('\n');
        }
        out.insert(registry.clone(), t);
    }
    // Configs for registries that are not mirrored: their own endpoint.
    for host in configs.keys() {
        if !out.contains_key(host) {
            let scheme = if host.starts_with("127.") || host.starts_with("localhost") {
                "http"
            } else {
                "https"
            };
            let endpoint = format!("{scheme}://{host}");
            out.insert(
                host.clone(),
                format!("server = \"{endpoint}\"\n\n{}", host_block(&endpoint)),
            );
        }
    }
    Ok(out)
}

/// Write the hosts.toml files for `file` (YAML) into `certs_d`; files of hosts no longer
/// configured are removed. A missing file means no configuration.
pub fn apply(file: &Path, certs_d: &Path) -> Result<(), String> {
    let doc: Value = match std::fs::read_to_string(file) {
        Ok(t) => serde_yaml_ng::from_str(&t).map_err(|e| format!("{}: {e}", file.display()))?,
        Err(_) => Value::Null,
    };
    let rendered = render(&doc)?;
    let _ = std::fs::create_dir_all(certs_d);
    if let Ok(rd) = std::fs::read_dir(certs_d) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !rendered.contains_key(&name)
                && e.path().join("hosts.toml").exists()
                && e.path().join(".capstan").exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    for (host, toml) in rendered {
        let dir = certs_d.join(&host);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("hosts.toml");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(toml.as_str()) {
            std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        }
        let _ = std::fs::write(dir.join(".capstan"), b"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mirrors_and_configs() {
        let doc = json!({
            "mirrors": {"docker.io": {"endpoint": ["http://127.0.0.1:5000"]}, "registry.k8s.io": {"endpoint": ["https://mirror.local:5443"]}},
            "configs": {"127.0.0.1:5000": {"auth": {"username": "u", "password": "p"}}, "mirror.local:5443": {"tls": {"insecure_skip_verify": true}}, "127.0.0.1:6000": {}},
        });
        let r = render(&doc).unwrap();
        assert_eq!(
            r["docker.io"],
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  [host.\"http://127.0.0.1:5000\".header]\n    Authorization = [\"Basic dTpw\"]\n\n"
        );
        assert!(r["registry.k8s.io"].starts_with("server = \"https://registry.k8s.io\""));
        assert!(r["registry.k8s.io"].contains("skip_verify = true"));
        assert_eq!(r["127.0.0.1:6000"], "server = \"http://127.0.0.1:6000\"\n\n[host.\"http://127.0.0.1:6000\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
        assert!(render(&json!({"mirrors": {"x": {"endpoint": "nope"}}})).is_err());
        assert!(render(&Value::Null).unwrap().is_empty());
    }
}
