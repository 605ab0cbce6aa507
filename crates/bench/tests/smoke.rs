//! Smoke test: `capstan-bench --quick` against a real server, on both backends. Slow, and needs
//! a built `capstan` and /usr/bin/etcd, so it runs only with CAPSTAN_BENCH_SMOKE=1
//! (`CAPSTAN_BIN` says where the capstan binary is; by default it is the one next to the
//! benchmark binary that cargo built for this test).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn quick_run() {
    if std::env::var("CAPSTAN_BENCH_SMOKE").as_deref() != Ok("1") {
        eprintln!("skipped: set CAPSTAN_BENCH_SMOKE=1 to run the benchmark smoke test");
        return;
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_capstan-bench"));
    let capstan = std::env::var_os("CAPSTAN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench.with_file_name("capstan"));
    assert!(
        capstan.is_file(),
        "{} missing: cargo build -p capstan, or set CAPSTAN_BIN",
        capstan.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(&bench)
        .arg("--quick")
        .arg("--no-pods")
        .arg("--capstan")
        .arg(&capstan)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "capstan-bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "creates/s",
        "watch delivery",
        "RSS",
        "Targets:",
        "embedded",
        "etcd",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["quick"], true);
    for backend in ["embedded", "etcd"] {
        let b = &v["backends"][backend];
        assert_eq!(b["creates"].as_array().unwrap().len(), 3, "{backend}");
        assert!(
            b["creates"][1]["per_second"].as_f64().unwrap() > 0.0,
            "{backend}"
        );
        assert_eq!(b["list"]["items"], 1000, "{backend}");
        assert_eq!(b["watch"][1]["latency"]["n"], 100 * 30, "{backend}");
        assert!(b["rss_idle_mb"].as_f64().unwrap() > 0.0, "{backend}");
        assert_eq!(b["stored_pods"], 5000, "{backend}");
    }
    assert!(!v["checks"].as_array().unwrap().is_empty());
}

/// `capstan-bench --pods --quick`: a real server with its node agent, pods against raw CRI.
/// Needs root and containerd as well (skipped otherwise).
#[test]
fn pods_quick_run() {
    if std::env::var("CAPSTAN_BENCH_SMOKE").as_deref() != Ok("1") {
        eprintln!("skipped: set CAPSTAN_BENCH_SMOKE=1 to run the benchmark smoke test");
        return;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("NOTICE: the pod benchmark needs root; skipped");
        return;
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_capstan-bench"));
    let capstan = std::env::var_os("CAPSTAN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench.with_file_name("capstan"));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pods.json");
    let out = Command::new(&bench)
        .args(["--pods", "--quick", "--capstan"])
        .arg(&capstan)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "capstan-bench --pods failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in ["capstan pod", "raw CRI", "burst of 10", "RSS", "Targets:"] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let p = &v["pods"];
    assert_eq!(p["capstan"]["single"]["n"], 5);
    assert_eq!(p["raw_cri"]["burst"]["latency"]["n"], 10);
    assert!(p["rss_mb"]["server_pods"].as_f64().unwrap() > 0.0);
    assert_eq!(p["checks"].as_array().unwrap().len(), 3);
}
