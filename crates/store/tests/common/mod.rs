//! Test harness shared by the integration tests: backends on fresh state (a temp dir for
//! the embedded store, a private etcd process on loopback ports for the etcd backend).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capstan_store::embedded::{EmbeddedStore, Options};
use capstan_store::{Datastore, Store};

pub const ETCD_BIN: &str = "/usr/bin/etcd";

/// A store plus whatever keeps its backing state alive.
pub struct Backend {
    pub store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any + Send>,
}

/// Options for tests: no background compaction.
pub fn test_options() -> Options {
    Options {
        compaction_interval: Duration::ZERO,
        ..Options::default()
    }
}

pub async fn embedded() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), test_options())
        .await
        .unwrap();
    Some(Backend {
        store: Arc::new(store),
        _guard: Box::new(dir),
    })
}

pub async fn etcd() -> Option<Backend> {
    let server = EtcdServer::start()?;
    let ds = Datastore::parse(Some(&server.endpoint()), Path::new("/unused")).unwrap();
    let store = capstan_store::open(&ds).await.unwrap();
    server.wait_ready(&*store).await;
    Some(Backend {
        store,
        _guard: Box::new(server),
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private etcd process, killed (by PID) on drop.
pub struct EtcdServer {
    child: Child,
    pub client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd, or prints a notice and returns None when it is not installed.
    pub fn start() -> Option<EtcdServer> {
        if !Path::new(ETCD_BIN).exists() {
            eprintln!("NOTICE: {ETCD_BIN} not found; skipping etcd backend test");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let client_port = free_port();
        let peer_port = free_port();
        let child = spawn_etcd(dir.path(), client_port, peer_port);
        Some(EtcdServer {
            child,
            client_port,
            peer_port,
            dir,
        })
    }

    /// Kills etcd and starts it again on the same data directory and ports.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_etcd(self.dir.path(), self.client_port, self.peer_port);
    }

    pub fn endpoint(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// Waits until the store answers (etcd takes about a second to elect itself).
    pub async fn wait_ready(&self, store: &dyn Store) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match store.current_revision().await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!("etcd never became ready: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_etcd(dir: &Path, client_port: u16, peer_port: u16) -> Child {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let data: PathBuf = dir.join("data");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .unwrap();
    Command::new(ETCD_BIN)
        .arg("--name")
        .arg("capstan-test")
        .arg("--data-dir")
        .arg(&data)
        .arg("--listen-client-urls")
        .arg(&client)
        .arg("--advertise-client-urls")
        .arg(&client)
        .arg("--listen-peer-urls")
        .arg(&peer)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer)
        .arg("--initial-cluster")
        .arg(format!("capstan-test={peer}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd")
}
