//! `decode` never panics: malformed envelopes, truncations and mutations of real bodies, deep nesting.

use capstan_wire::{decode, WireError};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(tag: u64, body: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// An envelope around `raw` for (apiVersion, kind).
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    len_field(1, api_version.as_bytes(), &mut tm);
    len_field(2, kind.as_bytes(), &mut tm);
    let mut out = b"k8s\0".to_vec();
    len_field(1, &tm, &mut out);
    len_field(2, raw, &mut out);
    out
}

#[test]
fn malformed_envelopes() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("json", br#"{"kind":"Pod"}"#.to_vec()),
        ("magic only", b"k8s\0".to_vec()),
        ("truncated typeMeta", b"k8s\0\x0a\x05\x0a\x02v1".to_vec()),
        ("typeMeta wrong wire type", b"k8s\0\x08\x01".to_vec()),
        ("gzip contentEncoding", {
            let mut e = envelope("v1", "Namespace", b"");
            len_field(3, b"gzip", &mut e);
            e
        }),
        ("unknown contentType", {
            let mut e = envelope("v1", "Namespace", b"");
            len_field(4, b"application/cbor", &mut e);
            e
        }),
        (
            "string field as varint",
            envelope("v1", "Namespace", &[0x0a, 0x02, 0x08, 0x01]),
        ),
        (
            "truncated raw",
            envelope("v1", "Namespace", &[0x0a, 0x10, 0x0a]),
        ),
        ("bad embedded JSON", {
            let mut raw_ext = Vec::new();
            len_field(1, b"{not json", &mut raw_ext);
            let mut revision = Vec::new();
            len_field(2, &raw_ext, &mut revision);
            envelope("apps/v1", "ControllerRevision", &revision)
        }),
    ];
    for (why, body) in cases {
        match decode(&body) {
            Err(WireError::Malformed(_)) => {}
            other => panic!("{why}: {other:?}"),
        }
    }
    assert_eq!(
        decode(&envelope("example.com/v1", "Widget", b"")),
        Err(WireError::UnsupportedKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
    assert_eq!(
        decode(&envelope("v1", "Namespace", b"")).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace"})
    );
}

#[test]
fn every_truncation_and_byte_flip_of_real_bodies_is_handled() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in [
        "create-deployment.pb",
        "create-service-clusterip.pb",
        "autoscale-v2-kubectl-1.33.pb",
        "create-quota.pb",
    ] {
        let body = fixture(name);
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
        for _ in 0..3000 {
            let mut b = body.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let _ = decode(&b);
        }
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    // JSONSchemaProps nested through `not` (field 28 of apiextensions.v1.JSONSchemaProps) 10_000 deep.
    let mut props: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        let mut outer = Vec::new();
        len_field(28, &props, &mut outer);
        props = outer;
        if props.len() > 1 << 20 {
            break;
        }
    }
    let mut validation = Vec::new();
    len_field(1, &props, &mut validation);
    let mut version = Vec::new();
    len_field(1, b"v1", &mut version);
    len_field(4, &validation, &mut version);
    let mut spec = Vec::new();
    len_field(7, &version, &mut spec);
    let mut crd = Vec::new();
    len_field(2, &spec, &mut crd);
    let body = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    assert!(matches!(decode(&body), Err(WireError::Malformed(_))));

    // Envelopes nested in RawExtensions (v1 List items) are bounded too.
    let mut inner = envelope("v1", "Namespace", b"");
    for _ in 0..500 {
        let mut raw_ext = Vec::new();
        len_field(1, &inner, &mut raw_ext);
        let mut list = Vec::new();
        len_field(2, &raw_ext, &mut list);
        inner = envelope("v1", "List", &list);
    }
    assert!(matches!(decode(&inner), Err(WireError::Malformed(_))));
}

#[test]
fn nested_envelope_in_raw_extension_decodes() {
    let ns = envelope("v1", "Namespace", b"");
    let mut raw_ext = Vec::new();
    len_field(1, &ns, &mut raw_ext);
    let mut list = Vec::new();
    len_field(2, &raw_ext, &mut list);
    assert_eq!(
        decode(&envelope("v1", "List", &list)).unwrap(),
        json!({"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace"}]})
    );
}
