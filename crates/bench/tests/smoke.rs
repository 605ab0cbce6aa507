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
