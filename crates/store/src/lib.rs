//! Storage layer with etcd v3 semantics: a global, strictly increasing revision,
//! compare-and-swap on a key's mod revision, reads at past revisions, watches that
//! replay history from a revision and then follow live changes, and compaction.
//!
//! Two backends implement [`Store`]: [`embedded::EmbeddedStore`] (an append-only,
//! checksummed log in the data directory plus an in-memory MVCC index) and
//! [`etcd::EtcdStore`] (a real etcd v3 cluster). [`open`] is the one place a backend
//! is chosen, from a [`Datastore`] parsed by [`Datastore::parse`].
//!
//! **Architecture Invariant:** callers see only the [`Store`] trait; nothing outside
//! this crate names a backend type except through [`Datastore`].
#![forbid(unsafe_code)]

mod crc;
mod datastore;
pub mod embedded;
pub mod etcd;

use std::pin::Pin;

pub use datastore::{open, Datastore};

/// A store revision (etcd's `header.revision` / `mod_revision`).
pub type Revision = i64;

/// One key's state at some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The stored bytes.
    pub value: bytes::Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: i64,
    /// Revision of the last modification.
    pub mod_revision: i64,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created or updated.
    Put,
    /// Deleted.
    Delete,
}

/// One change.
///
/// For Delete: kv.key = key, kv.mod_revision = the revision of the delete, kv.value = the
/// value before deletion, kv.create_revision = the deleted object's create revision.
#[derive(Clone, Debug)]
pub struct Event {
    /// Put or Delete.
    pub kind: EventType,
    /// The new state (for Put) or the deleted state stamped with the delete revision.
    pub kv: KeyValue,
    /// The key's state before this change, if it existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// A page of a prefix listing.
#[derive(Clone, Debug)]
pub struct ListResult {
    /// The keys, ascending.
    pub kvs: Vec<KeyValue>,
    /// The store revision the list was read at.
    pub revision: i64,
    /// Whether more keys remain after the last one returned.
    pub more: bool,
}

/// Store errors.
#[derive(thiserror::Error, Debug, Clone)]
pub enum Error {
    /// A create found the key already present.
    #[error("key already exists")]
    KeyExists,
    /// An update or delete found no such key.
    #[error("key not found")]
    NotFound,
    /// A compare-and-swap found a different mod revision; `current` is the key's state.
    #[error("conflict: the object has been modified")]
    Conflict {
        /// The key's current state (None if it no longer exists).
        current: Option<KeyValue>,
    },
    /// A read or watch asked for a revision older than the compaction point.
    #[error("required revision has been compacted (compact revision {compact_revision})")]
    Compacted {
        /// The oldest revision still readable.
        compact_revision: i64,
    },
    /// A read asked for a revision beyond the current one.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// The backend is unreachable or closed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else (bad argument, corrupt data, unexpected backend answer).
    #[error("store error: {0}")]
    Other(String),
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A watch: batches of events, one batch per revision, in revision order.
pub type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<Vec<Event>>> + Send>>;

/// The storage interface the API server is written against.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest state of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Keys with `prefix`, ascending; at `revision` (None = latest); starting strictly after
    /// `start_after` if given; at most `limit` (0 = no limit); `more` says whether more
    /// remain. `revision` in the result is the store revision the list was read at.
    async fn list(
        &self,
        prefix: &str,
        revision: Option<i64>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult>;
    /// Number of keys with `prefix` at the latest revision.
    async fn count(&self, prefix: &str) -> Result<i64>;
    /// Creates `key`; returns the new revision. [`Error::KeyExists`] if present.
    async fn create(&self, key: &str, value: bytes::Bytes) -> Result<i64>;
    /// Replaces `key` if its mod revision is `expected_mod_revision`; returns the new
    /// revision. [`Error::NotFound`] / [`Error::Conflict`].
    async fn update(
        &self,
        key: &str,
        value: bytes::Bytes,
        expected_mod_revision: i64,
    ) -> Result<i64>;
    /// Deletes `key` (if its mod revision matches, when given); returns the revision of the
    /// delete and the deleted state. [`Error::NotFound`] / [`Error::Conflict`].
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue)>;
    /// The current store revision.
    async fn current_revision(&self) -> Result<i64>;
    /// Every change under `prefix` with revision >= from_revision, in revision order, then
    /// live changes; the stream never skips events. A `from_revision` older than the
    /// compaction point makes the stream's first item `Err(Compacted)`. Events of one
    /// revision come in one Vec.
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream>;
    /// Discards history before `revision` (reads and watches at older revisions fail
    /// with [`Error::Compacted`] afterwards). Compacting to an already compacted
    /// revision is a no-op; a future revision is [`Error::FutureRevision`].
    async fn compact(&self, revision: i64) -> Result<()>;
    /// Ok when the backend is reachable and accepting writes.
    async fn health(&self) -> Result<()>;
}
