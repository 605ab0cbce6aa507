//! The in-memory MVCC index: the latest state of every key plus the history of events
//! since the compaction point, from which reads at past revisions and watch replays are
//! answered. Pure data structure; the writer is its only mutator.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use crate::{Error, Event, KeyValue, ListResult, Result};

/// Latest key states and retained history.
#[derive(Debug)]
pub(crate) struct Mvcc {
    kvs: BTreeMap<String, KeyValue>,
    /// Events with revision >= `compact_revision`, strictly increasing.
    history: VecDeque<Event>,
    revision: i64,
    compact_revision: i64,
    live_bytes: u64,
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc {
            kvs: BTreeMap::new(),
            history: VecDeque::new(),
            // An empty etcd reports revision 1; the first write gets 2.
            revision: 1,
            compact_revision: 0,
            live_bytes: 0,
        }
    }
}

/// Approximate bytes a key state occupies in a snapshot.
pub(crate) fn kv_bytes(kv: &KeyValue) -> u64 {
    (kv.key.len() + kv.value.len() + 29) as u64
}

fn range_start<'a>(prefix: &'a str, start_after: Option<&'a str>) -> Bound<&'a str> {
    match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    }
}

fn page<'a>(
    iter: impl Iterator<Item = &'a KeyValue>,
    prefix: &str,
    limit: usize,
) -> (Vec<KeyValue>, bool) {
    let mut kvs = Vec::new();
    let mut iter = iter.take_while(|kv| kv.key.starts_with(prefix));
    for kv in iter.by_ref() {
        if limit != 0 && kvs.len() == limit {
            return (kvs, true);
        }
        kvs.push(kv.clone());
    }
    (kvs, false)
}

impl Mvcc {
    /// The current store revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The oldest revision still readable (0 when nothing was compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Approximate size of the live key states.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Number of retained history events.
    #[cfg(test)]
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Latest state of `key`.
    pub fn get(&self, key: &str) -> Option<&KeyValue> {
        self.kvs.get(key)
    }

    /// Number of live keys with `prefix`.
    pub fn count(&self, prefix: &str) -> i64 {
        self.kvs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count() as i64
    }

    /// Checks that `revision` can be read: not compacted and not in the future.
    fn check_revision(&self, revision: i64) -> Result<()> {
        if revision > self.revision {
            return Err(Error::FutureRevision);
        }
        if revision < self.compact_revision {
            return Err(Error::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        Ok(())
    }

    /// A page of keys with `prefix` at `revision` (None or <= 0 = latest).
    pub fn list(
        &self,
        prefix: &str,
        revision: Option<i64>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        let at = match revision {
            Some(r) if r > 0 => r,
            _ => self.revision,
        };
        self.check_revision(at)?;
        let start = range_start(prefix, start_after);
        let (kvs, more) = if at == self.revision {
            page(
                self.kvs
                    .range::<str, _>((start, Bound::Unbounded))
                    .map(|e| e.1),
                prefix,
                limit,
            )
        } else {
            let past = self.prefix_at(prefix, at);
            page(
                past.range::<str, _>((start, Bound::Unbounded)).map(|e| e.1),
                prefix,
                limit,
            )
        };
        Ok(ListResult {
            kvs,
            revision: at,
            more,
        })
    }

    /// The keys under `prefix` as they were at revision `at` (by undoing later events).
    fn prefix_at(&self, prefix: &str, at: i64) -> BTreeMap<String, KeyValue> {
        let mut map: BTreeMap<String, KeyValue> = self
            .kvs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for event in self.history.iter().rev() {
            if event.revision() <= at {
                break;
            }
            if event.kv.key.starts_with(prefix) {
                undo(&mut map, event);
            }
        }
        map
    }

    /// The whole key space as it was just before revision `before` (for log rewrites).
    pub fn snapshot_before(&self, before: i64) -> BTreeMap<String, KeyValue> {
        let mut map = self.kvs.clone();
        for event in self.history.iter().rev() {
            if event.revision() < before {
                break;
            }
            undo(&mut map, event);
        }
        map
    }

    /// Retained events with revision >= `from`.
    pub fn history_from(&self, from: i64) -> impl Iterator<Item = &Event> {
        let skip = self.history.partition_point(|e| e.revision() < from);
        self.history.iter().skip(skip)
    }

    /// Events under `prefix` with revision >= `from`, grouped by revision; Compacted if
    /// `from` is older than the compaction point.
    pub fn watch_backlog(&self, prefix: &str, from: i64) -> Result<Vec<Vec<Event>>> {
        if from < self.compact_revision {
            return Err(Error::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        Ok(group_by_revision(
            self.history_from(from)
                .filter(|e| e.kv.key.starts_with(prefix))
                .cloned(),
        ))
    }

    /// Applies one change (the writer has validated it); `event.revision()` must be the
    /// next revision.
    pub fn apply(&mut self, event: Event) {
        debug_assert!(event.revision() > self.revision);
        self.revision = event.revision();
        if let Some(prev) = &event.prev {
            self.live_bytes = self.live_bytes.saturating_sub(kv_bytes(prev));
        }
        match event.kind {
            crate::EventType::Put => {
                self.live_bytes += kv_bytes(&event.kv);
                self.kvs.insert(event.kv.key.clone(), event.kv.clone());
            }
            crate::EventType::Delete => {
                self.kvs.remove(&event.kv.key);
            }
        }
        self.history.push_back(event);
    }

    /// Loads a key state from a snapshot (no event).
    pub fn load_snapshot_kv(&mut self, kv: KeyValue) {
        self.live_bytes += kv_bytes(&kv);
        if let Some(old) = self.kvs.insert(kv.key.clone(), kv) {
            self.live_bytes = self.live_bytes.saturating_sub(kv_bytes(&old));
        }
    }

    /// Sets the revision and compaction point from snapshot metadata.
    pub fn load_meta(&mut self, revision: i64, compact_revision: i64) {
        self.revision = self.revision.max(revision);
        self.compact_revision = self.compact_revision.max(compact_revision);
    }

    /// Drops history before `revision`.
    pub fn compact(&mut self, revision: i64) {
        if revision <= self.compact_revision {
            return;
        }
        self.compact_revision = revision;
        while self
            .history
            .front()
            .is_some_and(|e| e.revision() < revision)
        {
            self.history.pop_front();
        }
    }
}

fn undo(map: &mut BTreeMap<String, KeyValue>, event: &Event) {
    match &event.prev {
        Some(prev) => {
            map.insert(prev.key.clone(), prev.clone());
        }
        None => {
            map.remove(&event.kv.key);
        }
    }
}

/// Splits an ordered event sequence into one Vec per revision.
pub(crate) fn group_by_revision(events: impl Iterator<Item = Event>) -> Vec<Vec<Event>> {
    let mut groups: Vec<Vec<Event>> = Vec::new();
    for event in events {
        match groups.last_mut() {
            Some(group) if group[0].revision() == event.revision() => group.push(event),
            _ => groups.push(vec![event]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;
    use bytes::Bytes;

    fn put(m: &mut Mvcc, key: &str, value: &str) -> i64 {
        let rev = m.revision() + 1;
        let prev = m.get(key).cloned();
        let kv = KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
        };
        m.apply(Event {
            kind: EventType::Put,
            kv,
            prev,
        });
        rev
    }

    fn del(m: &mut Mvcc, key: &str) -> i64 {
        let rev = m.revision() + 1;
        let prev = m.get(key).cloned().unwrap();
        let mut kv = prev.clone();
        kv.mod_revision = rev;
        m.apply(Event {
            kind: EventType::Delete,
            kv,
            prev: Some(prev),
        });
        rev
    }

    fn keys(r: &ListResult) -> Vec<String> {
        r.kvs
            .iter()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
            .collect()
    }

    #[test]
    fn list_at_past_revisions() {
        let mut m = Mvcc::default();
        let r_a1 = put(&mut m, "/p/a", "1"); // 2
        let r_b1 = put(&mut m, "/p/b", "1"); // 3
        put(&mut m, "/q/x", "1"); // 4
        let r_a2 = put(&mut m, "/p/a", "2"); // 5
        let r_del = del(&mut m, "/p/b"); // 6
        let cases: Vec<(Option<i64>, Vec<&str>)> = vec![
            (Some(1), vec![]),
            (Some(r_a1), vec!["/p/a=1"]),
            (Some(r_b1), vec!["/p/a=1", "/p/b=1"]),
            (Some(r_a2), vec!["/p/a=2", "/p/b=1"]),
            (Some(r_del), vec!["/p/a=2"]),
            (None, vec!["/p/a=2"]),
            (Some(0), vec!["/p/a=2"]),
        ];
        for (rev, want) in cases {
            let got = m.list("/p/", rev, None, 0).unwrap();
            assert_eq!(keys(&got), want, "rev {rev:?}");
        }
        assert!(matches!(
            m.list("/p/", Some(r_del + 1), None, 0),
            Err(Error::FutureRevision)
        ));
    }

    #[test]
    fn pagination() {
        let mut m = Mvcc::default();
        for k in ["/p/a", "/p/b", "/p/c", "/p/d", "/pz"] {
            put(&mut m, k, "v");
        }
        let cases: Vec<(Option<&str>, usize, Vec<&str>, bool)> = vec![
            (None, 0, vec!["/p/a", "/p/b", "/p/c", "/p/d"], false),
            (None, 2, vec!["/p/a", "/p/b"], true),
            (Some("/p/b"), 2, vec!["/p/c", "/p/d"], false),
            (Some("/p/b"), 1, vec!["/p/c"], true),
            (Some("/p/d"), 1, vec![], false),
            (Some("/a"), 4, vec!["/p/a", "/p/b", "/p/c", "/p/d"], false),
            (Some("/p/bb"), 0, vec!["/p/c", "/p/d"], false),
        ];
        for (after, limit, want, more) in cases {
            for rev in [None, Some(m.revision() - 1)] {
                let got = m.list("/p/", rev, after, limit).unwrap();
                let got_keys: Vec<&str> = got.kvs.iter().map(|kv| kv.key.as_str()).collect();
                assert_eq!(got_keys, want, "after {after:?} limit {limit} rev {rev:?}");
                assert_eq!(got.more, more, "after {after:?} limit {limit} rev {rev:?}");
            }
        }
        assert_eq!(m.count("/p/"), 4);
        assert_eq!(m.count("/p"), 5);
        assert_eq!(m.count(""), 5);
    }

    #[test]
    fn compaction_and_backlog() {
        let mut m = Mvcc::default();
        for i in 0..10 {
            put(&mut m, &format!("/k{}", i % 3), &i.to_string());
        }
        // revisions 2..=11
        m.compact(6);
        assert_eq!(m.history_len(), 6);
        assert!(matches!(
            m.list("/", Some(5), None, 0),
            Err(Error::Compacted {
                compact_revision: 6
            })
        ));
        assert!(m.list("/", Some(6), None, 0).is_ok());
        assert!(matches!(
            m.watch_backlog("/", 5),
            Err(Error::Compacted {
                compact_revision: 6
            })
        ));
        let backlog = m.watch_backlog("/k1", 6).unwrap();
        let revs: Vec<i64> = backlog.iter().map(|g| g[0].revision()).collect();
        assert_eq!(revs, vec![6, 9]);
        // Snapshot before 6 equals the state at 5.
        let snap = m.snapshot_before(6);
        let values: Vec<String> = snap
            .values()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
            .collect();
        assert_eq!(values, vec!["/k0=3", "/k1=1", "/k2=2"]);
        // Compacting backwards is a no-op.
        m.compact(3);
        assert_eq!(m.compact_revision(), 6);
    }

    #[test]
    fn live_bytes_tracks_state() {
        let mut m = Mvcc::default();
        put(&mut m, "/a", "12345");
        let one = m.live_bytes();
        put(&mut m, "/a", "54321");
        assert_eq!(m.live_bytes(), one);
        del(&mut m, "/a");
        assert_eq!(m.live_bytes(), 0);
    }
}
