//! Crash safety of the embedded store: a child process (this test binary re-executed
//! with an environment variable) writes keys concurrently and prints each acknowledged
//! key; the parent SIGKILLs it mid-stream, reopens the store and checks that every
//! acknowledged key is present.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use bytes::Bytes;
use capstan_store::embedded::EmbeddedStore;
use capstan_store::Store;

const DIR_VAR: &str = "CAPSTAN_STORE_CRASH_DIR";
const ROUND_VAR: &str = "CAPSTAN_STORE_CRASH_ROUND";

/// The child: writes until killed. A no-op when run as an ordinary test.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let round = std::env::var(ROUND_VAR).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = EmbeddedStore::open(dir.as_ref(), common::test_options())
            .await
            .unwrap();
        let store = std::sync::Arc::new(store);
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                let round = round.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("/crash/{round}/{t}/{i}");
                        let rev = store.create(&key, Bytes::from(key.clone())).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key} {rev}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Runs one child round, kills it after `acks` acknowledgements, returns every acked
/// (key, revision) it printed.
fn run_child(dir: &std::path::Path, round: usize, acks: usize) -> Vec<(String, i64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(ROUND_VAR, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, rev) = rest.rsplit_once(' ').unwrap();
            acked.push((key.to_string(), rev.parse().unwrap()));
        }
        if !killed && acked.len() >= acks {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    child.wait().unwrap();
    assert!(killed, "child exited before {acks} acks");
    acked
}

#[test]
fn kill_9_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..3 {
        all.extend(run_child(dir.path(), round, 300 + round * 200));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = EmbeddedStore::open(dir.path(), common::test_options())
                .await
                .unwrap();
            let current = store.current_revision().await.unwrap();
            for (key, rev) in &all {
                let kv = store
                    .get(key)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acked key {key} lost after kill -9"));
                assert_eq!(kv.mod_revision, *rev, "{key}");
                assert_eq!(kv.value, Bytes::from(key.clone()));
                assert!(current >= *rev);
            }
            // Revisions were never reused across crashes.
            let mut revs: Vec<i64> = all.iter().map(|(_, r)| *r).collect();
            revs.sort_unstable();
            revs.dedup();
            assert_eq!(revs.len(), all.len());
        });
    }
    assert!(all.len() >= 1200);
}
