//! The single writer thread: drains queued requests into a batch, validates them against
//! the index plus the batch's own earlier writes, appends the whole batch with one
//! write + fdatasync (group commit), applies it to the index, publishes the events to
//! watchers and only then acknowledges every request.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::log::{encode_compact, encode_event, Log};
use super::mvcc::Mvcc;
use super::{Options, Shared};
use crate::{Error, Event, EventType, KeyValue, Result};

/// Most requests committed in one batch.
const MAX_BATCH: usize = 4096;

/// A mutation queued for the writer.
#[derive(Debug)]
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
    Compact {
        revision: i64,
    },
}

/// A successful mutation's answer.
#[derive(Debug)]
pub(crate) enum Outcome {
    Revision(i64),
    Deleted(i64, KeyValue),
    Compacted,
}

/// One queued request and where to send its answer.
#[derive(Debug)]
pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome>>,
}

/// The writer thread's body; returns when every sender is gone.
pub(crate) fn run(
    mut log: Log,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    options: Options,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        commit(&mut log, &shared, &mut batch);
        let state = shared.read();
        if state.failed.is_none()
            && log.wants_rewrite(
                options.rewrite_min_bytes,
                options.rewrite_ratio,
                state.mvcc.live_bytes(),
            )
        {
            let before = log.len();
            match log.rewrite(&state.mvcc) {
                Ok(()) => tracing::info!(before, after = log.len(), "rewrote store log"),
                Err(e) => tracing::warn!(error = %e, "store log rewrite failed; keeping old log"),
            }
        }
    }
    // Closing: end every watch stream.
    shared.write().events = None;
}

fn lookup(overlay: &HashMap<String, Option<KeyValue>>, mvcc: &Mvcc, key: &str) -> Option<KeyValue> {
    match overlay.get(key) {
        Some(state) => state.clone(),
        None => mvcc.get(key).cloned(),
    }
}

/// Validates, persists, applies and acknowledges one batch.
fn commit(log: &mut Log, shared: &Shared, batch: &mut Vec<Request>) {
    let mut overlay: HashMap<String, Option<KeyValue>> = HashMap::new();
    let mut buf = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut compact_to: Option<i64> = None;
    let mut replies = Vec::with_capacity(batch.len());
    {
        let state = shared.read();
        if let Some(reason) = &state.failed {
            for req in batch.drain(..) {
                let _ = req.reply.send(Err(Error::Unavailable(reason.clone())));
            }
            return;
        }
        let mvcc = &state.mvcc;
        let mut rev = mvcc.revision();
        let mut compacted = mvcc.compact_revision();
        for req in batch.drain(..) {
            let result = match req.op {
                Op::Create { key, value } => match lookup(&overlay, mvcc, &key) {
                    Some(_) => Err(Error::KeyExists),
                    None => {
                        rev += 1;
                        let kv = KeyValue {
                            key: key.clone(),
                            value,
                            create_revision: rev,
                            mod_revision: rev,
                        };
                        let event = Event {
                            kind: EventType::Put,
                            kv: kv.clone(),
                            prev: None,
                        };
                        encode_event(&mut buf, &event);
                        events.push(event);
                        overlay.insert(key, Some(kv));
                        Ok(Outcome::Revision(rev))
                    }
                },
                Op::Update {
                    key,
                    value,
                    expected,
                } => match lookup(&overlay, mvcc, &key) {
                    None => Err(Error::NotFound),
                    Some(cur) if cur.mod_revision != expected => {
                        Err(Error::Conflict { current: Some(cur) })
                    }
                    Some(cur) => {
                        rev += 1;
                        let kv = KeyValue {
                            key: key.clone(),
                            value,
                            create_revision: cur.create_revision,
                            mod_revision: rev,
                        };
                        let event = Event {
                            kind: EventType::Put,
                            kv: kv.clone(),
                            prev: Some(cur),
                        };
                        encode_event(&mut buf, &event);
                        events.push(event);
                        overlay.insert(key, Some(kv));
                        Ok(Outcome::Revision(rev))
                    }
                },
                Op::Delete { key, expected } => match lookup(&overlay, mvcc, &key) {
                    None => Err(Error::NotFound),
                    Some(cur) if expected.is_some_and(|e| e != cur.mod_revision) => {
                        Err(Error::Conflict { current: Some(cur) })
                    }
                    Some(cur) => {
                        rev += 1;
                        let mut kv = cur.clone();
                        kv.mod_revision = rev;
                        let event = Event {
                            kind: EventType::Delete,
                            kv,
                            prev: Some(cur.clone()),
                        };
                        encode_event(&mut buf, &event);
                        events.push(event);
                        overlay.insert(key, None);
                        Ok(Outcome::Deleted(rev, cur))
                    }
                },
                Op::Compact { revision } => {
                    if revision > rev {
                        Err(Error::FutureRevision)
                    } else {
                        if revision > compacted {
                            compacted = revision;
                            compact_to = Some(revision);
                            encode_compact(&mut buf, revision);
                        }
                        Ok(Outcome::Compacted)
                    }
                }
            };
            replies.push((req.reply, result));
        }
    }
    if !buf.is_empty() {
        if let Err((e, recovered)) = log.append(&buf) {
            let reason = format!("store log write failed: {e}");
            tracing::error!(error = %e, recovered, "store log append failed");
            if !recovered {
                shared.write().failed = Some(reason.clone());
            }
            for (reply, result) in replies {
                let result = result.and(Err(Error::Unavailable(reason.clone())));
                let _ = reply.send(result);
            }
            return;
        }
        let mut state = shared.write();
        for event in &events {
            state.mvcc.apply(event.clone());
        }
        if let Some(revision) = compact_to {
            state.mvcc.compact(revision);
        }
        if !events.is_empty() {
            if let Some(tx) = &state.events {
                // No receivers is fine: nobody is watching.
                let _ = tx.send(Arc::new(events));
            }
        }
    }
    for (reply, result) in replies {
        let _ = reply.send(result);
    }
}
