//! The embedded backend: a durable append-only log in the data directory and an
//! in-memory MVCC index.
//!
//! Writes go through one writer thread that group-commits them ([`writer`]); reads take
//! a short read lock on the index and never wait for an fsync; watches share one
//! broadcast channel ([`watch`]). A timer compacts history older than the retention
//! window, and the writer rewrites the log when it outgrows the live data ([`log`]).

mod log;
mod mvcc;
mod record;
mod watch;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{Error, Event, KeyValue, ListResult, Result, Store, WatchStream};
pub(crate) use mvcc::group_by_revision;
use mvcc::Mvcc;
use writer::{Op, Outcome, Request};

/// Tuning for the embedded store.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the auto-compaction timer runs; zero disables it.
    pub compaction_interval: Duration,
    /// History younger than this is always kept.
    pub retention: Duration,
    /// At least this many most recent revisions are always kept.
    pub retention_revisions: i64,
    /// The log is never rewritten while smaller than this.
    pub rewrite_min_bytes: u64,
    /// The log is rewritten when larger than this many times the live data.
    pub rewrite_ratio: u64,
    /// Committed batches buffered for watchers; a watcher further behind catches up
    /// from the retained history instead.
    pub watch_buffer: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compaction_interval: Duration::from_secs(60),
            retention: Duration::from_secs(300),
            retention_revisions: 10_000,
            rewrite_min_bytes: 64 << 20,
            rewrite_ratio: 4,
            watch_buffer: 4096,
        }
    }
}

/// Index state shared by the writer, readers and watchers.
#[derive(Debug)]
pub(crate) struct State {
    mvcc: Mvcc,
    /// Live event batches; None once the writer has stopped.
    events: Option<broadcast::Sender<Arc<Vec<Event>>>>,
    /// Set when the log can no longer be written.
    failed: Option<String>,
}

/// The lock around [`State`].
#[derive(Debug)]
pub(crate) struct Shared {
    state: RwLock<State>,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    tx: Option<mpsc::UnboundedSender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer after its current batch; joining releases
        // the directory lock before a reopen.
        self.tx.take();
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

/// The embedded store (see the module docs).
#[derive(Debug)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

fn io_error(dir: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("embedded store in {}: {e}", dir.display()))
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, replaying its log. Must be called within a
    /// tokio runtime when auto-compaction is enabled.
    pub async fn open(dir: &Path, options: Options) -> Result<EmbeddedStore> {
        let dir_owned = dir.to_path_buf();
        let (log, mvcc) = tokio::task::spawn_blocking(move || log::Log::open(&dir_owned))
            .await
            .map_err(|e| Error::Other(format!("open task failed: {e}")))?
            .map_err(|e| io_error(dir, e))?;
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                mvcc,
                events: Some(events),
                failed: None,
            }),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_shared = shared.clone();
        let writer_options = options.clone();
        let writer = std::thread::Builder::new()
            .name("capstan-store-writer".into())
            .spawn(move || writer::run(log, writer_shared, rx, writer_options))
            .map_err(|e| io_error(dir, e))?;
        let inner = Arc::new(Inner {
            shared,
            tx: Some(tx),
            writer: Some(writer),
            dir: dir.to_path_buf(),
        });
        if !options.compaction_interval.is_zero() {
            tokio::spawn(auto_compact(Arc::downgrade(&inner), options));
        }
        Ok(EmbeddedStore { inner })
    }

    /// The revision before which history has been discarded (0 = none).
    pub fn compact_revision(&self) -> i64 {
        self.inner.shared.read().mvcc.compact_revision()
    }

    async fn submit(&self, op: Op) -> Result<Outcome> {
        submit(&self.inner, op).await
    }
}

/// Rejects the empty key, as etcd does.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::Other("key must not be empty".into()));
    }
    Ok(())
}

async fn submit(inner: &Inner, op: Op) -> Result<Outcome> {
    let (reply, rx) = oneshot::channel();
    let closed = || Error::Unavailable(format!("store in {} is closed", inner.dir.display()));
    inner
        .tx
        .as_ref()
        .ok_or_else(closed)?
        .send(Request { op, reply })
        .map_err(|_| closed())?;
    rx.await.map_err(|_| closed())?
}

/// The revision to compact to, given (time, revision) samples oldest first: everything
/// both older than `retention` and more than `keep_revisions` behind `current`.
fn compaction_target(
    samples: &VecDeque<(tokio::time::Instant, i64)>,
    now: tokio::time::Instant,
    retention: Duration,
    keep_revisions: i64,
    current: i64,
) -> Option<i64> {
    let cutoff = now.checked_sub(retention)?;
    let by_time = samples.iter().rev().find(|(t, _)| *t <= cutoff)?.1;
    let target = by_time.min(current - keep_revisions);
    (target > 1).then_some(target)
}

async fn auto_compact(inner: Weak<Inner>, options: Options) {
    let mut samples: VecDeque<(tokio::time::Instant, i64)> = VecDeque::new();
    let mut ticker = tokio::time::interval(options.compaction_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = tokio::time::Instant::now();
        let (current, compacted) = {
            let state = inner.shared.read();
            (state.mvcc.revision(), state.mvcc.compact_revision())
        };
        samples.push_back((now, current));
        let target = compaction_target(
            &samples,
            now,
            options.retention,
            options.retention_revisions,
            current,
        );
        if let Some(target) = target.filter(|t| *t > compacted) {
            match submit(&inner, Op::Compact { revision: target }).await {
                Ok(_) => tracing::debug!(revision = target, "auto-compacted store"),
                Err(e) => tracing::warn!(error = %e, "auto-compaction failed"),
            }
        }
        // Keep only the newest sample at or before the retention cutoff, and later ones.
        if let Some(cutoff) = now.checked_sub(options.retention) {
            while samples.len() > 1 && samples[1].0 <= cutoff {
                samples.pop_front();
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.inner.shared.read().mvcc.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Option<i64>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        self.inner
            .shared
            .read()
            .mvcc
            .list(prefix, revision, start_after, limit)
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        Ok(self.inner.shared.read().mvcc.count(prefix))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        check_key(key)?;
        match self
            .submit(Op::Create {
                key: key.to_string(),
                value,
            })
            .await?
        {
            Outcome::Revision(rev) => Ok(rev),
            other => Err(unexpected(other)),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: i64) -> Result<i64> {
        check_key(key)?;
        match self
            .submit(Op::Update {
                key: key.to_string(),
                value,
                expected: expected_mod_revision,
            })
            .await?
        {
            Outcome::Revision(rev) => Ok(rev),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue)> {
        check_key(key)?;
        match self
            .submit(Op::Delete {
                key: key.to_string(),
                expected: expected_mod_revision,
            })
            .await?
        {
            Outcome::Deleted(rev, kv) => Ok((rev, kv)),
            other => Err(unexpected(other)),
        }
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.inner.shared.read().mvcc.revision())
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        Ok(watch::watch(&self.inner.shared, prefix, from_revision))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }

    async fn health(&self) -> Result<()> {
        let state = self.inner.shared.read();
        match (&state.failed, &state.events) {
            (Some(reason), _) => Err(Error::Unavailable(reason.clone())),
            (None, None) => Err(Error::Unavailable("store writer stopped".into())),
            (None, Some(_)) => Ok(()),
        }
    }
}

fn unexpected(outcome: Outcome) -> Error {
    Error::Other(format!("unexpected writer outcome {outcome:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn compaction_target_table() {
        let t0 = Instant::now();
        let min = Duration::from_secs(60);
        let samples: VecDeque<(Instant, i64)> =
            [(t0, 100), (t0 + min, 20_000), (t0 + 5 * min, 50_000)]
                .into_iter()
                .collect();
        let ret = Duration::from_secs(300);
        // (now, keep_revisions, current, want)
        let cases: Vec<(Instant, i64, i64, Option<i64>)> = vec![
            // Not yet 5 minutes of samples: nothing.
            (t0 + 4 * min, 10_000, 60_000, None),
            // At 5 min the first sample (rev 100) is old enough.
            (t0 + 5 * min, 10_000, 60_000, Some(100)),
            // At 6 min, rev 20_000 is old enough; revision floor is 50_000.
            (t0 + 6 * min, 10_000, 60_000, Some(20_000)),
            // Revision floor binds when history is short in revisions.
            (t0 + 6 * min, 10_000, 25_000, Some(15_000)),
            // Fewer than keep_revisions in total: nothing.
            (t0 + 6 * min, 10_000, 5_000, None),
        ];
        for (now, keep, current, want) in cases {
            let got = compaction_target(&samples, now, ret, keep, current);
            assert_eq!(
                got,
                want,
                "now+{:?} keep {keep} current {current}",
                now - t0
            );
        }
    }
}
