//! Images for containers: imagePullPolicy (Always / IfNotPresent / Never; `:latest` or no tag
//! means Always by default) and registry credentials from the pod's imagePullSecrets
//! (kubernetes.io/dockerconfigjson or dockercfg), matched to the image's registry.

use base64::Engine;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

/// The registry host of a normalized reference (`docker.io/library/busybox:1` → `docker.io`).
pub fn registry_host(image: &str) -> &str {
    image.split('/').next().unwrap_or("docker.io")
}

fn key_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// Credentials for `image` from pull secrets (first match wins).
pub fn auth_for(image: &str, secrets: &[Secret]) -> Option<cri::AuthConfig> {
    let host = registry_host(image);
    for s in secrets {
        let data = s.data.clone().unwrap_or_default();
        let cfg: Option<Value> = data
            .get(".dockerconfigjson")
            .and_then(|b| serde_json::from_slice::<Value>(&b.0).ok())
            .and_then(|v| v.get("auths").cloned())
            .or_else(|| {
                data.get(".dockercfg")
                    .and_then(|b| serde_json::from_slice(&b.0).ok())
            });
        let Some(Value::Object(auths)) = cfg else {
            continue;
        };
        for (k, a) in auths {
            if key_host(&k) != host {
                continue;
            }
            let (mut user, mut pass) = (
                a["username"].as_str().unwrap_or("").to_string(),
                a["password"].as_str().unwrap_or("").to_string(),
            );
            if let Some(enc) = a["auth"].as_str() {
                if let Ok(dec) = base64::engine::general_purpose::STANDARD.decode(enc) {
                    let dec = String::from_utf8_lossy(&dec).into_owned();
                    if let Some((u, p)) = dec.split_once(':') {
                        user = u.into();
                        pass = p.into();
                    }
                }
            }
            return Some(cri::AuthConfig {
                username: user,
                password: pass,
                // containerd parses this as a URL and then only matches its host; leave it
                // empty: the credentials were already chosen for this image's registry.
                server_address: String::new(),
                ..Default::default()
            });
        }
    }
    None
}

/// The effective pull policy.
pub fn pull_policy<'a>(image: &str, policy: Option<&'a str>) -> &'a str {
    match policy {
        Some(p) if !p.is_empty() => p,
        _ => {
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
                "IfNotPresent"
            } else {
                "Always"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_policy_defaults() {
        for (image, policy, want) in [
            ("busybox", None, "Always"),
            ("busybox:latest", None, "Always"),
            ("busybox:1.36", None, "IfNotPresent"),
            ("127.0.0.1:5000/app", None, "Always"),
            ("127.0.0.1:5000/app:v1", None, "IfNotPresent"),
            ("busybox@sha256:abc", None, "IfNotPresent"),
            ("busybox", Some("Never"), "Never"),
        ] {
            assert_eq!(pull_policy(image, policy), want, "{image}");
        }
    }

    #[test]
    fn credentials_match_the_registry() {
        let cfg = json!({"auths": {"127.0.0.1:5000": {"auth": base64::engine::general_purpose::STANDARD.encode("u:p")},
                                    "https://index.docker.io/v1/": {"username": "d", "password": "x"}}});
        let s: Secret = serde_json::from_value(json!({"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}})).unwrap();
        let a = auth_for("127.0.0.1:5000/app:v1", std::slice::from_ref(&s)).unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        let d = auth_for("docker.io/library/busybox:1", std::slice::from_ref(&s)).unwrap();
        assert_eq!(d.username, "d");
        assert!(auth_for("quay.io/x/y", &[s]).is_none());
    }
}
