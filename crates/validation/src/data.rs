//! Secret and ConfigMap validation, and `stringData` normalisation for Secrets.

use base64::Engine;
use serde_json::{Map, Value};

use crate::errors::{key, FieldError};
use crate::names::is_config_map_key;
use crate::util::{get, obj, s, sd};

type Errs = Vec<FieldError>;

/// Kubernetes' `MaxSecretSize` (also the ConfigMap limit).
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Merges `stringData` into `data` (base64-encoded, overriding) and drops `stringData`.
pub fn normalize_secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    let Some(sd) = m.remove("stringData") else {
        return;
    };
    let Some(sd) = sd.as_object().cloned() else {
        return;
    };
    if sd.is_empty() {
        return;
    }
    let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("object");
    for (k, v) in sd {
        let text = match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        data.insert(k, Value::String(B64.encode(text.as_bytes())));
    }
}

fn decoded_len(v: &Value) -> usize {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .map_or(0, |b| b.len())
}

pub(crate) fn validate_secret(secret: &Value, errs: &mut Errs) {
    let data = obj(secret, "data");
    let mut total = 0usize;
    if let Some(d) = data {
        for (k, v) in d {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(key("data", k), k.as_str(), &msg));
            }
            total += decoded_len(v);
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has_key = |k: &str| data.is_some_and(|d| d.contains_key(k));
    match sd(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let ann = get(get(secret, "metadata"), "annotations");
            if s(ann, "kubernetes.io/service-account.name")
                .unwrap_or("")
                .is_empty()
            {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.and_then(|d| d.get(k)) {
                None => errs.push(FieldError::required(key("data", k), "")),
                Some(v) => {
                    let bytes = v
                        .as_str()
                        .and_then(|s| B64.decode(s).ok())
                        .unwrap_or_default();
                    if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
                        errs.push(FieldError::invalid(
                            key("data", k),
                            "<secret contents redacted>",
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has_key("username") && !has_key("password") => {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if !has_key("ssh-privatekey") => {
            errs.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has_key("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has_key("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
}

/// Secret/ConfigMap update: `type` is immutable; `immutable: true` freezes data.
pub(crate) fn validate_immutable_data(new: &Value, old: &Value, is_secret: bool, errs: &mut Errs) {
    if is_secret && sd(new, "type") != sd(old, "type") {
        errs.push(FieldError::immutable("type", sd(new, "type")));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        let fields: &[&str] = if is_secret {
            &["data"]
        } else {
            &["data", "binaryData"]
        };
        for f in fields {
            let n = obj(new, f).cloned().unwrap_or_default();
            let o = obj(old, f).cloned().unwrap_or_default();
            if n != o {
                errs.push(FieldError::forbidden(
                    *f,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
}

pub(crate) fn validate_config_map(cm: &Value, errs: &mut Errs) {
    let mut total = 0usize;
    let data = obj(cm, "data");
    if let Some(d) = data {
        for (k, v) in d {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(key("data", k), k.as_str(), &msg));
            }
            total += v.as_str().map_or(0, str::len);
        }
    }
    if let Some(b) = obj(cm, "binaryData") {
        for (k, v) in b {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(key("binaryData", k), k.as_str(), &msg));
            }
            if data.is_some_and(|d| d.contains_key(k)) {
                errs.push(FieldError::invalid(
                    key("binaryData", k),
                    k.as_str(),
                    "duplicate of key present in data",
                ));
            }
            total += decoded_len(v);
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
}
