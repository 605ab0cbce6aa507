//! The on-disk log: opening and replaying it (discarding a torn tail), appending a batch
//! with one write + fdatasync, and rewriting it as snapshot + retained history
//! (write a temporary file, fsync, rename, fsync the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::mvcc::Mvcc;
use super::record::{self, Op, Record, MAGIC};
use crate::{Event, EventType, KeyValue};

const LOG_NAME: &str = "store.log";
const TMP_NAME: &str = "store.log.tmp";
const LOCK_NAME: &str = "LOCK";

/// An open, exclusively locked log file positioned for appends.
#[derive(Debug)]
pub(crate) struct Log {
    dir: PathBuf,
    file: File,
    len: u64,
    /// Size right after the last rewrite (or the live data size at open).
    base_len: u64,
    _lock: File,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and replays it into a fresh index.
    pub fn open(dir: &Path) -> io::Result<(Log, Mvcc)> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_NAME))?;
        lock.try_lock().map_err(|e| {
            other(format!(
                "data directory {} is in use by another process: {e}",
                dir.display()
            ))
        })?;
        let _ = fs::remove_file(dir.join(TMP_NAME));
        let path = dir.join(LOG_NAME);
        let mut buf = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut buf)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let decoded =
            record::decode(&buf).map_err(|e| other(format!("{}: {e}", path.display())))?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut len = decoded.valid_len as u64;
        if decoded.valid_len < buf.len() {
            tracing::warn!(
                path = %path.display(),
                discarded = buf.len() - decoded.valid_len,
                "discarding torn tail of store log"
            );
            file.set_len(len)?;
            file.sync_all()?;
        }
        if len == 0 {
            file.write_all(MAGIC)?;
            file.sync_all()?;
            sync_dir(dir)?;
            len = MAGIC.len() as u64;
        }
        drop(file);
        let file = OpenOptions::new().append(true).open(&path)?;
        let mvcc = replay(decoded.records);
        let log = Log {
            dir: dir.to_path_buf(),
            file,
            len,
            base_len: mvcc.live_bytes(),
            _lock: lock,
        };
        Ok((log, mvcc))
    }

    /// Appends `buf` and fdatasyncs. On failure the file is cut back to its previous
    /// length; the error comes with whether that worked (if not, the log is unusable).
    pub fn append(&mut self, buf: &[u8]) -> Result<(), (io::Error, bool)> {
        let result = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let recovered = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_all())
                    .is_ok();
                Err((e, recovered))
            }
        }
    }

    /// Whether the log has grown enough past the live data to be worth rewriting.
    pub fn wants_rewrite(&self, min_bytes: u64, ratio: u64, live_bytes: u64) -> bool {
        self.len > min_bytes && self.len > ratio.saturating_mul(self.base_len.max(live_bytes))
    }

    /// Current size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Replaces the log with the index's snapshot at its compaction point plus the
    /// retained history, crash-safely.
    pub fn rewrite(&mut self, mvcc: &Mvcc) -> io::Result<()> {
        let compact = mvcc.compact_revision();
        let first_history = mvcc.history_from(compact).next().map(Event::revision);
        let base_revision = first_history.map_or(mvcc.revision(), |r| r - 1);
        let tmp_path = self.dir.join(TMP_NAME);
        let tmp = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp_path)?;
        let mut out = BufWriter::with_capacity(1 << 20, tmp);
        out.write_all(MAGIC)?;
        let mut scratch = Vec::with_capacity(4096);
        let flush = |out: &mut BufWriter<File>, scratch: &mut Vec<u8>| -> io::Result<()> {
            out.write_all(scratch)?;
            scratch.clear();
            Ok(())
        };
        Record {
            op: Op::Meta,
            revision: base_revision,
            create_revision: compact,
            key: String::new(),
            value: bytes::Bytes::new(),
        }
        .encode(&mut scratch);
        for kv in mvcc.snapshot_before(compact).values() {
            record::encode(
                &mut scratch,
                Op::Snapshot,
                kv.mod_revision,
                kv.create_revision,
                &kv.key,
                &kv.value,
            );
            if scratch.len() > 1 << 16 {
                flush(&mut out, &mut scratch)?;
            }
        }
        for event in mvcc.history_from(compact) {
            encode_event(&mut scratch, event);
            if scratch.len() > 1 << 16 {
                flush(&mut out, &mut scratch)?;
            }
        }
        flush(&mut out, &mut scratch)?;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.sync_all()?;
        let new_len = tmp.metadata()?.len();
        drop(tmp);
        let path = self.dir.join(LOG_NAME);
        fs::rename(&tmp_path, &path)?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        self.len = new_len;
        self.base_len = new_len;
        Ok(())
    }
}

/// Appends the log record for a change.
pub(crate) fn encode_event(out: &mut Vec<u8>, event: &Event) {
    let kv = &event.kv;
    match event.kind {
        EventType::Put => record::encode(
            out,
            Op::Put,
            kv.mod_revision,
            kv.create_revision,
            &kv.key,
            &kv.value,
        ),
        EventType::Delete => record::encode(out, Op::Delete, kv.mod_revision, 0, &kv.key, &[]),
    }
}

/// Appends the record for a compaction to `revision`.
pub(crate) fn encode_compact(out: &mut Vec<u8>, revision: i64) {
    record::encode(out, Op::Compact, revision, 0, "", &[]);
}

/// Rebuilds the index from decoded records.
fn replay(records: Vec<Record>) -> Mvcc {
    let mut mvcc = Mvcc::default();
    for rec in records {
        match rec.op {
            Op::Put | Op::Delete if rec.revision <= mvcc.revision() => {
                tracing::warn!(revision = rec.revision, "skipping out-of-order log record");
            }
            Op::Put => {
                let prev = mvcc.get(&rec.key).cloned();
                let kv = KeyValue {
                    key: rec.key,
                    value: rec.value,
                    create_revision: rec.create_revision,
                    mod_revision: rec.revision,
                };
                mvcc.apply(Event {
                    kind: EventType::Put,
                    kv,
                    prev,
                });
            }
            Op::Delete => {
                let Some(prev) = mvcc.get(&rec.key).cloned() else {
                    tracing::warn!(key = %rec.key, "skipping delete of a missing key in log");
                    continue;
                };
                let mut kv = prev.clone();
                kv.mod_revision = rec.revision;
                mvcc.apply(Event {
                    kind: EventType::Delete,
                    kv,
                    prev: Some(prev),
                });
            }
            Op::Snapshot => mvcc.load_snapshot_kv(KeyValue {
                key: rec.key,
                value: rec.value,
                create_revision: rec.create_revision,
                mod_revision: rec.revision,
            }),
            Op::Meta => mvcc.load_meta(rec.revision, rec.create_revision),
            Op::Compact => mvcc.compact(rec.revision),
        }
    }
    mvcc
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put_event(mvcc: &Mvcc, key: &str, value: &str) -> Event {
        let rev = mvcc.revision() + 1;
        let prev = mvcc.get(key).cloned();
        Event {
            kind: EventType::Put,
            kv: KeyValue {
                key: key.into(),
                value: Bytes::from(value.to_string()),
                create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                mod_revision: rev,
            },
            prev,
        }
    }

    fn append_put(log: &mut Log, mvcc: &mut Mvcc, key: &str, value: &str) {
        let ev = put_event(mvcc, key, value);
        let mut buf = Vec::new();
        encode_event(&mut buf, &ev);
        log.append(&buf).unwrap();
        mvcc.apply(ev);
    }

    #[test]
    fn reopen_replays_and_discards_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, mut mvcc) = Log::open(dir.path()).unwrap();
            append_put(&mut log, &mut mvcc, "/a", "1");
            append_put(&mut log, &mut mvcc, "/b", "2");
        }
        // Simulate a torn write: half a record at the tail.
        let path = dir.path().join(LOG_NAME);
        let mut half = Vec::new();
        record::encode(&mut half, Op::Put, 99, 99, "/torn", b"xxxxxxxx");
        half.truncate(half.len() / 2);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&half).unwrap();
        drop(f);
        let (mut log, mut mvcc) = Log::open(dir.path()).unwrap();
        assert_eq!(mvcc.revision(), 3);
        assert!(mvcc.get("/torn").is_none());
        assert_eq!(mvcc.get("/b").unwrap().value, Bytes::from("2"));
        // Appends after recovery land on a clean boundary.
        append_put(&mut log, &mut mvcc, "/c", "3");
        drop(log);
        let (_log, mvcc) = Log::open(dir.path()).unwrap();
        assert_eq!(mvcc.revision(), 4);
        assert_eq!(mvcc.count("/"), 3);
    }

    #[test]
    fn rewrite_keeps_state_history_and_compaction_point() {
        let dir = tempfile::tempdir().unwrap();
        let before_len;
        {
            let (mut log, mut mvcc) = Log::open(dir.path()).unwrap();
            for i in 0..50 {
                append_put(&mut log, &mut mvcc, &format!("/k{}", i % 5), &i.to_string());
            }
            mvcc.compact(40);
            let mut buf = Vec::new();
            encode_compact(&mut buf, 40);
            log.append(&buf).unwrap();
            before_len = log.len();
            log.rewrite(&mvcc).unwrap();
            assert!(log.len() < before_len);
            append_put(&mut log, &mut mvcc, "/k0", "after");
        }
        let (_log, mvcc) = Log::open(dir.path()).unwrap();
        assert_eq!(mvcc.revision(), 52);
        assert_eq!(mvcc.compact_revision(), 40);
        assert_eq!(mvcc.get("/k0").unwrap().value, Bytes::from("after"));
        assert_eq!(mvcc.get("/k0").unwrap().create_revision, 2);
        let at_40 = mvcc.list("/", Some(40), None, 0).unwrap();
        let values: Vec<&[u8]> = at_40.kvs.iter().map(|kv| kv.value.as_ref()).collect();
        assert_eq!(values, vec![&b"35"[..], b"36", b"37", b"38", b"34"]);
        assert_eq!(mvcc.watch_backlog("/", 40).unwrap().len(), 13);
        assert!(mvcc.watch_backlog("/", 39).is_err());
    }

    #[test]
    fn second_open_of_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, _) = Log::open(dir.path()).unwrap();
        let err = Log::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn rejects_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG_NAME), b"definitely not a log").unwrap();
        assert!(Log::open(dir.path()).is_err());
    }
}
