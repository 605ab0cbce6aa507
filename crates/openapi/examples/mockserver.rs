//! Throwaway HTTP server (std only, plain HTTP) serving this crate's discovery and OpenAPI
//! documents plus a toy object store, to try the real kubectl against them:
//! `cargo run -p capstan-openapi --example mockserver -- 127.0.0.1:18080`.
//! Every non-discovery request is logged (method, path, content type, body) to stderr.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Store = Arc<Mutex<HashMap<String, serde_json::Value>>>;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let listener = TcpListener::bind(&addr).expect("bind");
    let store: Store = Arc::default();
    for s in listener.incoming().flatten() {
        let store = store.clone();
        std::thread::spawn(move || {
            let _ = handle(s, &store);
        });
    }
}

fn respond(s: &mut TcpStream, code: u16, ct: &str, body: &[u8]) -> std::io::Result<()> {
    write!(s, "HTTP/1.1 {code} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    s.write_all(body)
}

fn handle(mut s: TcpStream, store: &Store) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let (path, _query) = target.split_once('?').unwrap_or((&target, ""));
    let accept = headers.get("accept").cloned().unwrap_or_default();
    let aggregated = accept
        .split(',')
        .any(|m| m.contains("as=APIGroupDiscoveryList") && m.contains("v=v2;"));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let json = "application/json";
    let j = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["version"]) => {
            return respond(
                &mut s,
                200,
                json,
                br#"{"major":"1","minor":"32","gitVersion":"v1.32.0","platform":"linux/amd64"}"#,
            )
        }
        ("GET", ["api"]) if aggregated => {
            return respond(
                &mut s,
                200,
                capstan_openapi::AGGREGATED_CONTENT_TYPE,
                &j(&capstan_openapi::aggregated_discovery(true)),
            )
        }
        ("GET", ["apis"]) if aggregated => {
            return respond(
                &mut s,
                200,
                capstan_openapi::AGGREGATED_CONTENT_TYPE,
                &j(&capstan_openapi::aggregated_discovery(false)),
            )
        }
        ("GET", ["api"]) => {
            return respond(&mut s, 200, json, &j(&capstan_openapi::core_versions()))
        }
        ("GET", ["apis"]) => {
            return respond(&mut s, 200, json, &j(&capstan_openapi::api_group_list()))
        }
        ("GET", ["api", v]) => {
            if let Some(l) = capstan_openapi::api_resource_list("", v) {
                return respond(&mut s, 200, json, &j(&l));
            }
        }
        ("GET", ["apis", g]) => {
            if let Some(l) = capstan_openapi::api_group(g) {
                return respond(&mut s, 200, json, &j(&l));
            }
        }
        ("GET", ["apis", g, v]) => {
            if let Some(l) = capstan_openapi::api_resource_list(g, v) {
                return respond(&mut s, 200, json, &j(&l));
            }
        }
        ("GET", ["openapi", "v2"]) => {
            let (b, ct) = capstan_openapi::openapi_v2_for_accept(&accept);
            return respond(&mut s, 200, ct, b);
        }
        ("GET", ["openapi", "v3"]) => {
            return respond(&mut s, 200, json, &j(&capstan_openapi::openapi_v3_index()))
        }
        ("GET", ["openapi", "v3", rest @ ..]) => {
            if let Some((b, _)) = capstan_openapi::openapi_v3_group_version_bytes(&rest.join("/")) {
                return respond(&mut s, 200, json, b);
            }
        }
        _ => {}
    }
    eprintln!(
        "{method} {target} ct={:?}\n{}",
        headers.get("content-type"),
        String::from_utf8_lossy(&body)
    );
    let key = path.to_string();
    let mut st = store.lock().unwrap_or_else(|e| e.into_inner());
    match method.as_str() {
        "GET" => match st.get(&key) {
            Some(o) => respond(&mut s, 200, json, &j(o)),
            None => respond(&mut s, 404, json, br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}"#),
        },
        "POST" => {
            let mut o: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let name = o["metadata"]["name"].as_str().unwrap_or("x").to_string();
            o["metadata"]["uid"] = "u1".into();
            o["metadata"]["resourceVersion"] = "1".into();
            st.insert(format!("{key}/{name}"), o.clone());
            respond(&mut s, 201, json, &j(&o))
        }
        _ => {
            let o = st.get(&key).cloned().unwrap_or_default();
            respond(&mut s, 200, json, &j(&o))
        }
    }
}
