//! Bodies captured from the real kubectl (v1.32.4, and v1.33.1 where named) decode to the expected JSON.
//!
//! Each `fixtures/X.pb` is a request body kubectl sent with `Content-Type: application/vnd.kubernetes.protobuf`
//! (captured with a logging HTTP server); `fixtures/X.json` is the JSON it must decode to.

use std::path::Path;

use serde_json::Value;

fn fixtures() -> Vec<(String, Vec<u8>, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("pb") {
            continue;
        }
        let body = std::fs::read(&path).expect("read fixture");
        let json = std::fs::read_to_string(path.with_extension("json"))
            .expect("expected JSON next to each fixture");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((
            name,
            body,
            serde_json::from_str(&json).expect("valid expected JSON"),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn captured_kubectl_bodies_decode_to_expected_json() {
    let all = fixtures();
    assert!(all.len() >= 20, "fixtures missing: {}", all.len());
    for (name, body, want) in all {
        assert!(capstan_wire::is_protobuf_envelope(&body), "{name}");
        let got = capstan_wire::decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn decoded_fixtures_survive_encode_then_decode() {
    for (name, body, _) in fixtures() {
        let json = capstan_wire::decode(&body).unwrap();
        let again = capstan_wire::encode(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(capstan_wire::decode(&again).unwrap(), json, "{name}");
    }
}

#[test]
fn specific_fields_of_kubectl_bodies() {
    let get = |name: &str| {
        let body = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap();
        capstan_wire::decode(&body).unwrap()
    };
    let cases: &[(&str, &str, Value)] = &[
        ("create-deployment.pb", "/spec/replicas", 2.into()),
        (
            "create-deployment-zero-replicas.pb",
            "/spec/replicas",
            0.into(),
        ),
        (
            "create-deployment.pb",
            "/spec/template/spec/containers/0/ports/0/containerPort",
            80.into(),
        ),
        (
            "create-deployment-kubectl-1.33.pb",
            "/metadata/namespace",
            "team".into(),
        ),
        ("create-secret-generic.pb", "/data/k", "dg==".into()), // base64 of "v"
        (
            "create-service-clusterip.pb",
            "/spec/ports/0/targetPort",
            8080.into(),
        ), // IntOrString int
        ("create-quota.pb", "/spec/hard/memory", "1Gi".into()), // Quantity
        (
            "create-poddisruptionbudget.pb",
            "/spec/minAvailable",
            1.into(),
        ),
        (
            "autoscale-v1.pb",
            "/spec/targetCPUUtilizationPercentage",
            80.into(),
        ),
        (
            "autoscale-v2-kubectl-1.33.pb",
            "/spec/metrics/0/resource/target/averageUtilization",
            80.into(),
        ),
        (
            "auth-can-i.pb",
            "/spec/resourceAttributes/verb",
            "create".into(),
        ),
        ("create-token.pb", "/spec/expirationSeconds", 3600.into()),
        ("create-priorityclass.pb", "/value", 1000.into()),
        (
            "create-ingress.pb",
            "/spec/rules/0/http/paths/0/backend/service/port/number",
            80.into(),
        ),
    ];
    for (file, pointer, want) in cases {
        assert_eq!(get(file).pointer(pointer), Some(want), "{file} {pointer}");
    }
    // Zero-valued non-pointer fields kubectl's gogo-protobuf always writes are dropped, as Go's omitempty does.
    let d = get("create-deployment.pb");
    assert_eq!(d.pointer("/metadata/namespace"), None);
    assert_eq!(d.pointer("/metadata/creationTimestamp"), None);
    assert_eq!(d.pointer("/spec/minReadySeconds"), None);
    assert_eq!(d.pointer("/spec/paused"), None);
    assert_eq!(d.pointer("/status"), Some(&serde_json::json!({})));
}
