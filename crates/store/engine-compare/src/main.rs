//! Durable create throughput and latency of three engines on this machine, each with a single
//! writer doing group commit (one durable commit per batch of queued creates), at 1, 16 and 64
//! concurrent writers: capstan-store's embedded log, SQLite (WAL, synchronous=FULL) and redb
//! (Durability::Immediate).

use bytes::Bytes;
use capstan_store::Store;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const PER_LEVEL: usize = 3000;
const VALUE: usize = 1200;

type Req = (String, Vec<u8>, oneshot::Sender<()>);

/// A group-commit writer thread over any "commit this batch durably" function.
fn writer<F: FnMut(&[(String, Vec<u8>)]) + Send + 'static>(mut commit: F) -> std_mpsc::Sender<Req> {
    let (tx, rx) = std_mpsc::channel::<Req>();
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
                if batch.len() >= 4096 {
                    break;
                }
            }
            let rows: Vec<(String, Vec<u8>)> = batch
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect();
            commit(&rows);
            for (_, _, done) in batch {
                let _ = done.send(());
            }
        }
    });
    tx
}

fn sqlite(dir: &std::path::Path) -> std_mpsc::Sender<Req> {
    let conn = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER);").unwrap();
    let mut rev: i64 = 1;
    let mut conn = conn;
    writer(move |rows| {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)",
                )
                .unwrap();
            for (k, v) in rows {
                rev += 1;
                stmt.execute(rusqlite::params![k, v, rev]).unwrap();
            }
        }
        tx.commit().unwrap();
    })
}

const TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("kv");

fn redb_engine(dir: &std::path::Path) -> std_mpsc::Sender<Req> {
    let db = redb::Database::create(dir.join("db.redb")).unwrap();
    writer(move |rows| {
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(TABLE).unwrap();
            for (k, v) in rows {
                t.insert(k.as_str(), v.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    })
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

async fn run_channel(tx: std_mpsc::Sender<Req>, clients: usize, tag: &str) -> (f64, f64, f64) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let tx = tx.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..PER_LEVEL / clients {
                let (done, wait) = oneshot::channel();
                let t = Instant::now();
                tx.send((
                    format!("/registry/pods/{tag}/p-{c}-{i}"),
                    vec![b'x'; VALUE],
                    done,
                ))
                .unwrap();
                wait.await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    (rate, pct(&mut all, 0.5), pct(&mut all, 0.99))
}

async fn run_store(store: Arc<dyn Store>, clients: usize, tag: &str) -> (f64, f64, f64) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = store.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..PER_LEVEL / clients {
                let t = Instant::now();
                store
                    .create(
                        &format!("/registry/pods/{tag}/p-{c}-{i}"),
                        Bytes::from(vec![b'x'; VALUE]),
                    )
                    .await
                    .unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    (rate, pct(&mut all, 0.5), pct(&mut all, 0.99))
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    println!(
        "{:<10} {:>8} {:>14} {:>14} {:>14}",
        "clients", "", "capstan log", "SQLite WAL", "redb"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2, d3) = (
        tmp.path().join("log"),
        tmp.path().join("sqlite"),
        tmp.path().join("redb"),
    );
    for d in [&d1, &d2, &d3] {
        std::fs::create_dir_all(d).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(
        capstan_store::embedded::EmbeddedStore::open(&d1, Default::default())
            .await
            .unwrap(),
    );
    let sq = sqlite(&d2);
    let rb = redb_engine(&d3);
    for clients in [1usize, 16, 64] {
        let tag = format!("c{clients}");
        let a = run_store(store.clone(), clients, &tag).await;
        let b = run_channel(sq.clone(), clients, &tag).await;
        let c = run_channel(rb.clone(), clients, &tag).await;
        println!(
            "{:<10} {:>8} {:>14.0} {:>14.0} {:>14.0}",
            clients, "create/s", a.0, b.0, c.0
        );
        println!(
            "{:<10} {:>8} {:>14} {:>14} {:>14}",
            "",
            "p50/p99",
            format!("{:.2}/{:.2}", a.1, a.2),
            format!("{:.2}/{:.2}", b.1, b.2),
            format!("{:.2}/{:.2}", c.1, c.2)
        );
    }
    println!(
        "{:<10} {:>8} {:>14} {:>14} {:>14}",
        "on disk",
        "KiB",
        dir_size(&d1) / 1024,
        dir_size(&d2) / 1024,
        dir_size(&d3) / 1024
    );
}
