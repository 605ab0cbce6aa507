//! The scheduling queue, as kube-scheduler's: an active queue ordered by priority (higher
//! first) then by when the pod entered the queue, a backoff queue (1 s doubling to 10 s per
//! failed attempt) and the unschedulable pods, each remembering which cluster events could
//! make it schedulable (queueing hints). An event moves only the pods it may help; pods
//! that have waited 5 minutes are retried anyway. Pure: time is a parameter.

use std::cmp::Ordering;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// kube-scheduler's podMaxInUnschedulablePodsDuration.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

/// Cluster changes that can make a pending pod schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    NodeAdd,
    NodeUpdate,
    /// A pod bound to a node went away or finished (frees resources, ports, anti-affinity).
    AssignedPodDelete,
    /// A pod was bound or its labels changed (pod affinity, topology spread).
    AssignedPodAdd,
    PdbChange,
    NamespaceChange,
}

pub const ALL_EVENTS: &[Event] = &[
    Event::NodeAdd,
    Event::NodeUpdate,
    Event::AssignedPodDelete,
    Event::AssignedPodAdd,
    Event::PdbChange,
    Event::NamespaceChange,
];

/// The events that could help a pod that failed for `reason` (a kube-scheduler reason text),
/// as each plugin's EventsToRegister / queueing hints say.
pub fn hints_for(reason: &str) -> BTreeSet<Event> {
    use Event::*;
    let set: &[Event] = if reason.starts_with("Insufficient")
        || reason == "Too many pods"
        || reason.contains("free ports")
        || reason.contains("anti-affinity")
    {
        &[NodeAdd, NodeUpdate, AssignedPodDelete]
    } else if reason.contains("pod affinity rules") {
        &[NodeAdd, NodeUpdate, AssignedPodAdd, NamespaceChange]
    } else if reason.contains("topology spread") {
        &[NodeAdd, NodeUpdate, AssignedPodAdd, AssignedPodDelete]
    } else if reason.contains("node affinity/selector")
        || reason.contains("taint")
        || reason.contains("unschedulable")
        || reason.contains("node name")
        || reason.starts_with("no nodes")
    {
        &[NodeAdd, NodeUpdate]
    } else {
        ALL_EVENTS
    };
    set.iter().copied().collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ready {
    priority: i32,
    /// When the pod (re)entered the active queue, as a sequence number: FIFO within a priority.
    seq: u64,
    uid: String,
}

impl Ord for Ready {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Where {
    Active,
    Backoff,
    Unschedulable {
        since: Instant,
        hints: BTreeSet<Event>,
    },
    /// Popped and being scheduled or bound; `moved` records an event seen meanwhile.
    InFlight {
        moved: bool,
    },
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    priority: i32,
    attempts: u32,
    last_try: Option<Instant>,
    at: Where,
    /// Bumped on every move so stale heap entries are skipped.
    seq: u64,
}

/// Pending pods keyed by uid, carrying a `T` (the scheduler's per-pod info).
#[derive(Debug)]
pub struct Queue<T> {
    entries: HashMap<String, Entry<T>>,
    active: BinaryHeap<Ready>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    /// Unschedulable and in-flight pods, the ones an event may concern.
    waiting: HashSet<String>,
    seq: u64,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            waiting: HashSet::new(),
            seq: 0,
        }
    }
}

/// kube-scheduler's per-pod backoff: 1 s, doubling per failed attempt, at most 10 s.
pub fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(10);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

impl<T: Clone> Queue<T> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn activate(&mut self, uid: &str) {
        let seq = self.bump();
        self.waiting.remove(uid);
        if let Some(e) = self.entries.get_mut(uid) {
            e.at = Where::Active;
            e.seq = seq;
            self.active.push(Ready {
                priority: e.priority,
                seq,
                uid: uid.to_string(),
            });
        }
    }

    /// Back to the backoff queue if its backoff has not passed, else active.
    fn requeue(&mut self, uid: &str, now: Instant) {
        let Some(e) = self.entries.get(uid) else {
            return;
        };
        let until = e.last_try.map(|t| t + backoff(e.attempts));
        match until {
            Some(until) if until > now => {
                let seq = self.bump();
                self.waiting.remove(uid);
                let e = self.entries.get_mut(uid).expect("present");
                e.at = Where::Backoff;
                e.seq = seq;
                self.backoff.push(Reverse((until, seq, uid.to_string())));
            }
            _ => self.activate(uid),
        }
    }

    /// A pending pod seen (new or updated). New pods go to the active queue; an update of an
    /// unschedulable pod retries it (kube treats a pod update as a possible fix).
    pub fn upsert(&mut self, uid: &str, priority: i32, item: T, now: Instant) {
        let Some(e) = self.entries.get_mut(uid) else {
            self.entries.insert(
                uid.to_string(),
                Entry {
                    item,
                    priority,
                    attempts: 0,
                    last_try: None,
                    at: Where::Active,
                    seq: 0,
                },
            );
            self.activate(uid);
            return;
        };
        e.item = item;
        let prio_changed = e.priority != priority;
        e.priority = priority;
        match e.at {
            Where::Unschedulable { .. } => self.requeue(uid, now),
            Where::Active if prio_changed => self.activate(uid),
            Where::InFlight { .. } => e.at = Where::InFlight { moved: true },
            _ => {}
        }
    }

    pub fn remove(&mut self, uid: &str) -> Option<T> {
        self.waiting.remove(uid);
        self.entries.remove(uid).map(|e| e.item)
    }

    /// Passed backoffs → active; unschedulable pods that waited too long → active.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, _))) = self.backoff.peek() {
            if *until > now {
                break;
            }
            let seq = *seq;
            let Some(Reverse((_, _, uid))) = self.backoff.pop() else {
                break;
            };
            if self
                .entries
                .get(&uid)
                .is_some_and(|e| e.seq == seq && e.at == Where::Backoff)
            {
                self.activate(&uid);
            }
        }
    }

    /// Unschedulable pods waiting longer than [`MAX_UNSCHEDULABLE`] → active (run now and then).
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .waiting
            .iter()
            .filter(|u| {
                self.entries.get(*u).is_some_and(|e| {
                    matches!(&e.at, Where::Unschedulable { since, .. } if now.duration_since(*since) >= MAX_UNSCHEDULABLE)
                })
            })
            .cloned()
            .collect();
        for u in stale {
            self.activate(&u);
        }
    }

    /// The highest-priority ready pod, marked in flight.
    pub fn pop(&mut self, now: Instant) -> Option<(String, T)> {
        self.flush(now);
        while let Some(r) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&r.uid) else {
                continue;
            };
            if e.at != Where::Active || e.seq != r.seq {
                continue;
            }
            e.at = Where::InFlight { moved: false };
            e.attempts += 1;
            self.waiting.insert(r.uid.clone());
            return Some((r.uid, e.item.clone()));
        }
        None
    }

    /// The attempt failed: the pod waits for one of `hints` (or, if an event came while it was
    /// in flight, only for its backoff).
    pub fn unschedulable(&mut self, uid: &str, hints: BTreeSet<Event>, now: Instant) {
        let Some(e) = self.entries.get_mut(uid) else {
            return;
        };
        e.last_try = Some(now);
        if matches!(e.at, Where::InFlight { moved: true }) {
            self.requeue(uid, now);
        } else {
            e.at = Where::Unschedulable { since: now, hints };
            self.waiting.insert(uid.to_string());
        }
    }

    /// The attempt failed for a transient reason (a binding error): retry after the backoff.
    pub fn error(&mut self, uid: &str, now: Instant) {
        if let Some(e) = self.entries.get_mut(uid) {
            e.last_try = Some(now);
            self.requeue(uid, now);
        }
    }

    /// A cluster event: the unschedulable pods it may help move on; in-flight pods note it.
    pub fn on_event(&mut self, ev: Event, now: Instant) {
        let mut moved = Vec::new();
        for uid in &self.waiting {
            let Some(e) = self.entries.get_mut(uid) else {
                continue;
            };
            match &e.at {
                Where::Unschedulable { hints, .. } if hints.contains(&ev) => {
                    moved.push(uid.clone())
                }
                Where::InFlight { .. } => e.at = Where::InFlight { moved: true },
                _ => {}
            }
        }
        for u in moved {
            self.requeue(&u, now);
        }
    }

    /// When the next backoff ends (to sleep until then).
    pub fn next_due(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((t, _, _))| *t)
    }

    /// (active, backoff, unschedulable) counts, for logs and tests.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in self.entries.values() {
            match e.at {
                Where::Active => c.0 += 1,
                Where::Backoff => c.1 += 1,
                Where::Unschedulable { .. } => c.2 += 1,
                Where::InFlight { .. } => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pops(q: &mut Queue<()>, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| q.pop(now).map(|(u, _)| u)).collect()
    }

    #[test]
    fn priority_then_fifo() {
        let now = Instant::now();
        let mut q = Queue::default();
        for (uid, prio) in [("a", 0), ("b", 10), ("c", 0), ("d", 10), ("e", -5)] {
            q.upsert(uid, prio, (), now);
        }
        assert_eq!(pops(&mut q, now), ["b", "d", "a", "c", "e"]);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let table = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (40, 10)];
        for (attempts, secs) in table {
            assert_eq!(backoff(attempts), Duration::from_secs(secs), "{attempts}");
        }
    }

    #[test]
    fn unschedulable_pods_move_only_on_events_that_may_help() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("cpu", 0, (), t0);
        q.upsert("sel", 0, (), t0);
        assert_eq!(pops(&mut q, t0).len(), 2);
        q.unschedulable("cpu", hints_for("Insufficient cpu"), t0);
        q.unschedulable(
            "sel",
            hints_for("node(s) didn't match Pod's node affinity/selector"),
            t0,
        );
        assert_eq!(q.counts(), (0, 0, 2));
        // A deleted pod frees cpu, not labels; the backoff (1 s) has not passed yet.
        q.on_event(Event::AssignedPodDelete, t0);
        assert_eq!(q.counts(), (0, 1, 1));
        assert!(pops(&mut q, t0).is_empty());
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(pops(&mut q, t0 + Duration::from_secs(1)), ["cpu"]);
        // A node update may help both kinds; after the backoff it is active at once.
        q.on_event(Event::NodeUpdate, t0 + Duration::from_secs(5));
        assert_eq!(pops(&mut q, t0 + Duration::from_secs(5)), ["sel"]);
    }

    #[test]
    fn an_event_during_the_attempt_means_backoff_not_unschedulable() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("p", 0, (), t0);
        assert!(q.pop(t0).is_some());
        q.on_event(Event::NodeAdd, t0);
        q.unschedulable("p", hints_for("Insufficient cpu"), t0);
        assert_eq!(q.counts(), (0, 1, 0));
    }

    #[test]
    fn stale_unschedulable_pods_are_retried() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("p", 0, (), t0);
        q.pop(t0);
        q.unschedulable("p", hints_for("Insufficient cpu"), t0);
        q.flush_unschedulable(t0 + Duration::from_secs(299));
        assert_eq!(q.counts(), (0, 0, 1));
        q.flush_unschedulable(t0 + MAX_UNSCHEDULABLE);
        assert_eq!(pops(&mut q, t0 + MAX_UNSCHEDULABLE), ["p"]);
    }

    #[test]
    fn updates_retry_unschedulable_pods_and_removal_forgets() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("p", 0, (), t0);
        q.pop(t0);
        q.unschedulable("p", hints_for("Insufficient cpu"), t0);
        q.upsert("p", 0, (), t0 + Duration::from_secs(2));
        assert_eq!(pops(&mut q, t0 + Duration::from_secs(2)), ["p"]);
        q.remove("p");
        assert_eq!(q.len(), 0);
        q.on_event(Event::NodeAdd, t0);
        assert!(pops(&mut q, t0).is_empty());
    }

    #[test]
    fn hints_table() {
        use Event::*;
        let cases: &[(&str, &[Event])] = &[
            (
                "Insufficient memory",
                &[NodeAdd, NodeUpdate, AssignedPodDelete],
            ),
            ("Too many pods", &[NodeAdd, NodeUpdate, AssignedPodDelete]),
            (
                "node(s) didn't have free ports for the requested pod ports",
                &[NodeAdd, NodeUpdate, AssignedPodDelete],
            ),
            (
                "node(s) didn't match pod anti-affinity rules",
                &[NodeAdd, NodeUpdate, AssignedPodDelete],
            ),
            (
                "node(s) didn't match pod affinity rules",
                &[NodeAdd, NodeUpdate, AssignedPodAdd, NamespaceChange],
            ),
            (
                "node(s) had untolerated taint {a: b}",
                &[NodeAdd, NodeUpdate],
            ),
            ("node(s) were unschedulable", &[NodeAdd, NodeUpdate]),
        ];
        for (reason, want) in cases {
            let want: BTreeSet<Event> = want.iter().copied().collect();
            assert_eq!(hints_for(reason), want, "{reason}");
        }
    }
}
