//! Watch streams over the embedded store: a replay of retained history followed by live
//! batches from one broadcast channel shared by all watchers. A watcher that falls
//! behind the channel catches up from the retained history, so no event is ever
//! skipped; if that history was compacted meanwhile it gets `Err(Compacted)`.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::mvcc::group_by_revision;
use super::Shared;
use crate::{Error, Event, Result, WatchStream};

struct WatchState {
    shared: Arc<Shared>,
    prefix: String,
    /// Every revision below this has been examined.
    next_rev: i64,
    pending: VecDeque<Vec<Event>>,
    rx: Option<broadcast::Receiver<Arc<Vec<Event>>>>,
}

impl WatchState {
    /// Queues the matching events of a live batch (contiguous revisions).
    fn take_batch(&mut self, batch: &[Event]) {
        let fresh = batch
            .iter()
            .filter(|e| e.revision() >= self.next_rev && e.kv.key.starts_with(&self.prefix))
            .cloned();
        self.pending.extend(group_by_revision(fresh));
        if let Some(last) = batch.last() {
            self.next_rev = self.next_rev.max(last.revision() + 1);
        }
    }

    /// Re-reads history after the channel dropped messages for this watcher.
    fn catch_up(&mut self) -> Result<()> {
        let state = self.shared.read();
        let groups = state.mvcc.watch_backlog(&self.prefix, self.next_rev)?;
        self.pending.extend(groups);
        self.next_rev = self.next_rev.max(state.mvcc.revision() + 1);
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Vec<Event>>> {
        loop {
            if let Some(group) = self.pending.pop_front() {
                return Some(Ok(group));
            }
            let rx = self.rx.as_mut()?;
            match rx.recv().await {
                Ok(batch) => self.take_batch(&batch),
                Err(RecvError::Lagged(_)) => {
                    if let Err(e) = self.catch_up() {
                        self.rx = None;
                        return Some(Err(e));
                    }
                }
                Err(RecvError::Closed) => {
                    self.rx = None;
                    return Some(Err(Error::Unavailable("store closed".into())));
                }
            }
        }
    }
}

/// Starts a watch of `prefix` from `from_revision`.
pub(crate) fn watch(shared: &Arc<Shared>, prefix: &str, from_revision: i64) -> WatchStream {
    let state = shared.read();
    let backlog = match state.mvcc.watch_backlog(prefix, from_revision) {
        Ok(backlog) => backlog,
        Err(e) => return Box::pin(futures::stream::once(async move { Err(e) })),
    };
    let Some(tx) = &state.events else {
        return Box::pin(futures::stream::once(async {
            Err(Error::Unavailable("store closed".into()))
        }));
    };
    // Subscribing under the read lock: every revision after `revision()` will arrive on
    // the channel, every one up to it is in the backlog.
    let rx = tx.subscribe();
    let watch = WatchState {
        shared: shared.clone(),
        prefix: prefix.to_string(),
        next_rev: from_revision.max(state.mvcc.revision() + 1),
        pending: backlog.into(),
        rx: Some(rx),
    };
    drop(state);
    Box::pin(futures::stream::unfold(watch, |mut w| async move {
        w.next().await.map(|item| (item, w))
    }))
}
