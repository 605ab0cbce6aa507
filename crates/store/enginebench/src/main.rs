//! Durable create throughput and latency of three embedded engines on this machine, at 1, 16
//! and 64 concurrent writers (3000 creates per level, 1.2 KB values, keys
//! `/registry/pods/ns/pod-N`). Every acknowledged create is durable:
//!
//! 1. capstan-store's `EmbeddedStore` (append-only log, group commit, in-memory index) through
//!    the `Store` trait, called from N tokio tasks;
//! 2. SQLite, WAL + `synchronous=FULL`, table `kv(key TEXT PRIMARY KEY, value BLOB,
//!    create_rev INTEGER, mod_rev INTEGER)`;
//! 3. redb, `Durability::Immediate` (the default).
//!
//! SQLite and redb sit behind one writer thread that takes everything queued (up to 4096) into
//! one transaction (group commit) and answers each request through a oneshot channel.
//! `cargo run --release [runs]` (default 1 run). Each engine gets its own temp dir, removed at
//! the end.

use bytes::Bytes;
use capstan_store::Store;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const PER_LEVEL: usize = 3000;
const VALUE: usize = 1200;
const LEVELS: [usize; 3] = [1, 16, 64];
const MAX_BATCH: usize = 4096;

struct Req {
    key: String,
    value: Bytes,
    done: oneshot::Sender<i64>,
}

/// Group-commit writer thread: `commit` durably writes a batch and returns the first revision.
fn writer<F>(mut commit: F) -> std_mpsc::Sender<Req>
where
    F: FnMut(&[Req]) -> i64 + Send + 'static,
{
    let (tx, rx) = std_mpsc::channel::<Req>();
    std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let first_rev = commit(&batch);
            for (i, r) in batch.drain(..).enumerate() {
                let _ = r.done.send(first_rev + i as i64);
            }
        }
    });
    tx
}

fn sqlite(dir: &Path) -> std_mpsc::Sender<Req> {
    let mut conn = rusqlite::Connection::open(dir.join("kv.sqlite")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER);",
    )
    .unwrap();
    let mut rev: i64 = 0;
    writer(move |batch| {
        let first = rev + 1;
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)",
                )
                .unwrap();
            for r in batch {
                rev += 1;
                stmt.execute(rusqlite::params![r.key, &r.value[..], rev])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        first
    })
}

/// key -> (create_rev, mod_rev, value), the same information as the SQLite row.
const TABLE: redb::TableDefinition<&str, (i64, i64, &[u8])> = redb::TableDefinition::new("kv");

fn redb_engine(dir: &Path) -> std_mpsc::Sender<Req> {
    let db = redb::Database::create(dir.join("kv.redb")).unwrap();
    let mut rev: i64 = 0;
    writer(move |batch| {
        let first = rev + 1;
        let tx = db.begin_write().unwrap(); // Durability::Immediate is the default
        {
            let mut t = tx.open_table(TABLE).unwrap();
            for r in batch {
                rev += 1;
                t.insert(r.key.as_str(), (rev, rev, &r.value[..])).unwrap();
            }
        }
        tx.commit().unwrap();
        first
    })
}

#[derive(Clone)]
enum Engine {
    Capstan(Arc<dyn Store>),
    Channel(std_mpsc::Sender<Req>),
}

impl Engine {
    async fn create(&self, key: String, value: Bytes) -> i64 {
        match self {
            Engine::Capstan(s) => s.create(&key, value).await.unwrap(),
            Engine::Channel(tx) => {
                let (done, wait) = oneshot::channel();
                tx.send(Req { key, value, done }).unwrap();
                wait.await.unwrap()
            }
        }
    }
}

struct Stats {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// `writers` tasks take the next pod number from a shared counter until the level's 3000
/// creates are done.
async fn level(engine: &Engine, writers: usize, next: &Arc<AtomicUsize>) -> Stats {
    let value = Bytes::from(vec![b'x'; VALUE]);
    let end = next.load(Ordering::SeqCst) + PER_LEVEL;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (engine, next, value) = (engine.clone(), next.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= end {
                    break;
                }
                let t = Instant::now();
                engine
                    .create(format!("/registry/pods/ns/pod-{n}"), value.clone())
                    .await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(PER_LEVEL);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    next.store(end, Ordering::SeqCst);
    assert_eq!(all.len(), PER_LEVEL);
    all.sort();
    Stats {
        rate: all.len() as f64 / elapsed,
        p50: pct(&all, 0.50),
        p99: pct(&all, 0.99),
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1);
    let names = ["capstan log", "SQLite WAL", "redb"];
    for run in 1..=runs {
        println!("run {run}: {PER_LEVEL} creates/level, {VALUE}-byte values");
        println!(
            "{:<8} {:>30} {:>30} {:>30}",
            "writers", names[0], names[1], names[2]
        );
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let engines = [
            Engine::Capstan(Arc::new(
                capstan_store::embedded::EmbeddedStore::open(dirs[0].path(), Default::default())
                    .await
                    .unwrap(),
            )),
            Engine::Channel(sqlite(dirs[1].path())),
            Engine::Channel(redb_engine(dirs[2].path())),
        ];
        let counters: Vec<Arc<AtomicUsize>> =
            (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        for writers in LEVELS {
            let mut cells = Vec::new();
            for (e, c) in engines.iter().zip(&counters) {
                let s = level(e, writers, c).await;
                cells.push(format!(
                    "{:>7.0}/s p50 {:.2} p99 {:.2} ms",
                    s.rate, s.p50, s.p99
                ));
            }
            println!(
                "{:<8} {:>30} {:>30} {:>30}",
                writers, cells[0], cells[1], cells[2]
            );
        }
        drop(engines);
        tokio::time::sleep(Duration::from_millis(200)).await; // let writer threads close files
        let sizes: Vec<String> = dirs
            .iter()
            .map(|d| format!("{:.1} MiB", dir_size(d.path()) as f64 / 1048576.0))
            .collect();
        println!(
            "{:<8} {:>30} {:>30} {:>30}",
            "on disk", sizes[0], sizes[1], sizes[2]
        );
        for d in dirs {
            d.close().unwrap();
        }
    }
}
