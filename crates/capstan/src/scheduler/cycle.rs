//! The scheduling thread: it owns the snapshot (kept incrementally from the informers'
//! changes) and the queue, takes one pod at a time, decides with capstan-scheduler, assumes
//! the pod on its node at once (so the next decision sees it) and hands the binding to a
//! task; a failed binding forgets the assumption and retries after the backoff. A pod that
//! fits nowhere may preempt (victims deleted gracefully, the pod nominated to the node),
//! then waits in the queue for an event that may help.

use super::actions;
use super::informer::Change;
use super::queue::{hints_for, Event, Queue};
use capstan_agent::api::Api;
use capstan_scheduler::{preempt, schedule, Pdb, PodInfo, Profile, Snapshot};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bindings (and other writes) in flight at once.
const IN_FLIGHT: usize = 128;

pub enum Msg {
    Pods(Box<Change<Pod>>),
    Nodes(Box<Change<Node>>),
    Namespaces(Box<Change<Namespace>>),
    Pdbs(Box<Change<PodDisruptionBudget>>),
    Bound { uid: String, ok: bool },
}

pub struct Scheduler {
    api: Api,
    rt: tokio::runtime::Handle,
    tx: Sender<Msg>,
    profiles: Vec<Profile>,
    snap: Snapshot,
    queue: Queue<Arc<PodInfo>>,
    /// Pods in the snapshot (bound or assumed): uid → node.
    placed: HashMap<String, String>,
    /// Assumed pods whose binding the watch has not shown yet.
    assumed: HashSet<String>,
    /// Pending pods with a nominated node: uid → (node, priority).
    nominated: HashMap<String, (String, i32)>,
    /// The Unschedulable message last reported per pod.
    reported: HashMap<String, String>,
    /// What of each node matters to decisions, to ignore heartbeats.
    node_marks: HashMap<String, String>,
    pdbs: BTreeMap<String, Pdb>,
    /// Round-robin start of the next node search.
    start: usize,
    slots: Arc<tokio::sync::Semaphore>,
    /// Informers that have delivered their first list (nodes, pods, namespaces, pdbs).
    synced: BTreeSet<&'static str>,
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn finished(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The parts of a Node the decision reads; heartbeats that change none of them are ignored.
fn node_mark(n: &Node) -> String {
    let spec = n.spec.as_ref();
    let status = n.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    serde_json::json!([
        n.metadata.labels,
        spec.and_then(|s| s.taints.clone()),
        spec.and_then(|s| s.unschedulable),
        status.and_then(|s| s.allocatable.clone()),
        ready,
        status.and_then(|s| s.images.as_ref()).map(Vec::len),
    ])
    .to_string()
}

impl Scheduler {
    pub fn new(
        api: Api,
        rt: tokio::runtime::Handle,
        tx: Sender<Msg>,
        profiles: Vec<Profile>,
    ) -> Scheduler {
        Scheduler {
            api,
            rt,
            tx,
            profiles,
            snap: Snapshot::new(),
            queue: Queue::default(),
            placed: HashMap::new(),
            assumed: HashSet::new(),
            nominated: HashMap::new(),
            reported: HashMap::new(),
            node_marks: HashMap::new(),
            pdbs: BTreeMap::new(),
            start: 0,
            slots: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
            synced: BTreeSet::new(),
        }
    }

    fn profile_index(&self, pod: &Pod) -> Option<usize> {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(super::DEFAULT_NAME);
        self.profiles.iter().position(|p| p.scheduler_name == name)
    }

    /// Run a write as a task, at most [`IN_FLIGHT`] at once.
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let slots = self.slots.clone();
        self.rt.spawn(async move {
            let _permit = slots.acquire_owned().await;
            f.await;
        });
    }

    /// Serve until every sender is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut last_flush = Instant::now();
        loop {
            while let Ok(m) = rx.try_recv() {
                self.handle(m);
            }
            let now = Instant::now();
            if now.duration_since(last_flush) > Duration::from_secs(30) {
                self.queue.flush_unschedulable(now);
                last_flush = now;
                let (active, backoff, unschedulable) = self.queue.counts();
                tracing::debug!(
                    pending = self.queue.len(),
                    active,
                    backoff,
                    unschedulable,
                    placed = self.placed.len(),
                    "scheduling queue"
                );
            }
            if self.synced.len() == 4 {
                if let Some((uid, info)) = self.queue.pop(now) {
                    self.schedule_one(uid, info);
                    continue;
                }
            }
            let wait = self
                .queue
                .next_due()
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            match rx.recv_timeout(wait) {
                Ok(m) => self.handle(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        let now = Instant::now();
        match m {
            Msg::Pods(c) => self.on_pods(*c, now),
            Msg::Nodes(c) => self.on_nodes(*c, now),
            Msg::Namespaces(c) => self.on_namespaces(*c, now),
            Msg::Pdbs(c) => self.on_pdbs(*c, now),
            Msg::Bound { uid, ok } => {
                if ok {
                    self.queue.remove(&uid);
                } else if self.assumed.remove(&uid) {
                    self.placed.remove(&uid);
                    self.snap.remove_pod(&uid);
                    self.queue.error(&uid, now);
                }
            }
        }
    }

    fn on_pods(&mut self, c: Change<Pod>, now: Instant) {
        match c {
            Change::Reset(pods) => {
                self.synced.insert("pods");
                let keep: HashSet<String> = pods.iter().map(uid).collect();
                let known: Vec<String> = self
                    .placed
                    .keys()
                    .chain(self.nominated.keys())
                    .cloned()
                    .collect();
                for u in known.into_iter().filter(|u| !keep.contains(u)) {
                    self.forget(&u, now);
                }
                for p in pods {
                    self.upsert_pod(p, now);
                }
            }
            Change::Upsert(p) => self.upsert_pod(p, now),
            Change::Delete(p) => self.forget(&uid(&p), now),
        }
    }

    fn on_nodes(&mut self, c: Change<Node>, now: Instant) {
        match c {
            Change::Reset(nodes) => {
                self.synced.insert("nodes");
                let keep: HashSet<String> = nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                let gone: Vec<String> = self
                    .node_marks
                    .keys()
                    .filter(|n| !keep.contains(*n))
                    .cloned()
                    .collect();
                for n in gone {
                    self.node_marks.remove(&n);
                    self.snap.remove_node(&n);
                }
                for n in nodes {
                    self.upsert_node(n, now);
                }
            }
            Change::Upsert(n) => self.upsert_node(n, now),
            Change::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                self.node_marks.remove(&name);
                self.snap.remove_node(&name);
            }
        }
    }

    fn on_namespaces(&mut self, c: Change<Namespace>, now: Instant) {
        {
            self.synced.insert("namespaces");
            let (set, del) = match c {
                Change::Reset(all) => (all, vec![]),
                Change::Upsert(n) => (vec![n], vec![]),
                Change::Delete(n) => (vec![], vec![n]),
            };
            for n in set {
                let name = n.metadata.name.clone().unwrap_or_default();
                self.snap
                    .set_namespace(&name, n.metadata.labels.clone().unwrap_or_default());
            }
            for n in del {
                self.snap
                    .remove_namespace(n.metadata.name.as_deref().unwrap_or_default());
            }
            self.queue.on_event(Event::NamespaceChange, now);
        }
    }

    fn on_pdbs(&mut self, c: Change<PodDisruptionBudget>, now: Instant) {
        {
            self.synced.insert("pdbs");
            let key = |p: &PodDisruptionBudget| {
                format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                    p.metadata.name.as_deref().unwrap_or_default()
                )
            };
            let pdb = |p: &PodDisruptionBudget| Pdb {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                name: p.metadata.name.clone().unwrap_or_default(),
                selector: p.spec.as_ref().and_then(|s| s.selector.clone()),
                disruptions_allowed: p
                    .status
                    .as_ref()
                    .map(|s| s.disruptions_allowed)
                    .unwrap_or(0),
            };
            match c {
                Change::Reset(all) => {
                    self.pdbs = all.iter().map(|p| (key(p), pdb(p))).collect();
                }
                Change::Upsert(p) => {
                    self.pdbs.insert(key(&p), pdb(&p));
                }
                Change::Delete(p) => {
                    self.pdbs.remove(&key(&p));
                }
            }
            self.snap.set_pdbs(self.pdbs.values().cloned().collect());
            self.queue.on_event(Event::PdbChange, now);
        }
    }

    fn upsert_node(&mut self, n: Node, now: Instant) {
        let name = n.metadata.name.clone().unwrap_or_default();
        let mark = node_mark(&n);
        let event = match self.node_marks.get(&name) {
            None => Event::NodeAdd,
            Some(m) if *m == mark => return,
            Some(_) => Event::NodeUpdate,
        };
        self.node_marks.insert(name, mark);
        self.snap.upsert_node(&n);
        self.queue.on_event(event, now);
    }

    fn unnominate(&mut self, uid: &str) {
        if self.nominated.remove(uid).is_some() {
            self.snap.unnominate(uid);
        }
    }

    /// A pod is gone: out of the queue, the snapshot and the nominations.
    fn forget(&mut self, uid: &str, now: Instant) {
        self.queue.remove(uid);
        self.assumed.remove(uid);
        self.reported.remove(uid);
        self.unnominate(uid);
        if self.placed.remove(uid).is_some() {
            self.snap.remove_pod(uid);
            self.queue.on_event(Event::AssignedPodDelete, now);
        }
    }

    fn upsert_pod(&mut self, pod: Pod, now: Instant) {
        let uid = uid(&pod);
        if let Some(node) = node_name(&pod).map(str::to_string) {
            self.assumed.remove(&uid);
            self.queue.remove(&uid);
            self.reported.remove(&uid);
            self.unnominate(&uid);
            if finished(&pod) {
                if self.placed.remove(&uid).is_some() {
                    self.snap.remove_pod(&uid);
                    self.queue.on_event(Event::AssignedPodDelete, now);
                }
                return;
            }
            let new = self.placed.get(&uid) != Some(&node);
            if self.placed.contains_key(&uid) {
                self.snap.remove_pod(&uid);
            }
            self.snap
                .add_pod(&node, Arc::new(PodInfo::new(Arc::new(pod))));
            self.placed.insert(uid, node);
            if new {
                self.queue.on_event(Event::AssignedPodAdd, now);
            }
            return;
        }
        if pod.metadata.deletion_timestamp.is_some()
            || finished(&pod)
            || self.profile_index(&pod).is_none()
        {
            self.queue.remove(&uid);
            self.unnominate(&uid);
            return;
        }
        if self.assumed.contains(&uid) {
            return;
        }
        let gated = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty());
        if gated {
            // Not queued until its gates are removed (an update brings it back).
            self.queue.remove(&uid);
            self.unnominate(&uid);
            const MSG: &str = "Scheduling is blocked due to non-empty scheduling gates";
            let reported = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated")
                    })
                });
            if !reported && self.reported.get(&uid).map(String::as_str) != Some(MSG) {
                self.reported.insert(uid, MSG.to_string());
                let api = self.api.clone();
                self.spawn(async move { actions::gated(&api, &pod, MSG).await });
            }
            return;
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let info = Arc::new(PodInfo::new(Arc::new(pod)));
        match nominated {
            Some(n) => {
                self.snap.nominate(info.clone(), &n);
                self.nominated.insert(uid.clone(), (n, info.priority));
            }
            None => self.unnominate(&uid),
        }
        self.queue.upsert(&uid, info.priority, info, now);
    }

    fn schedule_one(&mut self, uid: String, info: Arc<PodInfo>) {
        let Some(pi) = self.profile_index(&info.pod) else {
            self.queue.remove(&uid);
            return;
        };
        let profile = &self.profiles[pi];
        let component = profile.scheduler_name.clone();
        let now = Instant::now();
        match schedule(&info, &self.snap, profile, self.start) {
            Ok(d) => {
                self.start = (self.start + d.evaluated) % self.snap.len().max(1);
                self.unnominate(&uid);
                self.assumed.insert(uid.clone());
                self.placed.insert(uid.clone(), d.node.clone());
                self.snap.add_pod(&d.node, info.clone());
                let (api, tx) = (self.api.clone(), self.tx.clone());
                self.spawn(async move {
                    let ok = actions::bind(&api, &component, &info.pod, &d.node).await;
                    let _ = tx.send(Msg::Bound { uid, ok });
                });
            }
            Err(fit) => {
                let mut hints: BTreeSet<Event> =
                    fit.reasons.keys().flat_map(|r| hints_for(r)).collect();
                let mut nominate = None;
                let message = match preempt(&info, &self.snap, profile, &fit) {
                    Ok(p) => {
                        hints.insert(Event::AssignedPodDelete);
                        nominate = Some(p.node.clone());
                        self.execute_preemption(&info, &p.node, &p.victims, &component);
                        fit.message()
                    }
                    // Empty when preemption does not run (disabled).
                    Err(m) => fit.message_with_preemption(&m),
                };
                let changed = self.reported.get(&uid) != Some(&message) || nominate.is_some();
                if changed {
                    self.reported.insert(uid.clone(), message.clone());
                    let (api, pod) = (self.api.clone(), info.pod.clone());
                    self.spawn(async move {
                        actions::unschedulable(
                            &api,
                            &component,
                            &pod,
                            &message,
                            nominate.as_deref(),
                        )
                        .await;
                    });
                }
                self.queue.unschedulable(&uid, hints, now);
            }
        }
    }

    fn execute_preemption(
        &mut self,
        info: &Arc<PodInfo>,
        node: &str,
        victims: &[Arc<PodInfo>],
        component: &str,
    ) {
        tracing::info!(pod = %format!("{}/{}", info.namespace, info.name), node, victims = victims.len(), "preempting");
        for v in victims {
            let (api, victim, pod) = (self.api.clone(), v.pod.clone(), info.pod.clone());
            let (component, node) = (component.to_string(), node.to_string());
            self.spawn(async move {
                actions::preempt(&api, &component, &victim, &pod, &node).await;
            });
        }
        // Lower-priority pods nominated to this node may no longer fit there.
        let lower: Vec<String> = self
            .nominated
            .iter()
            .filter(|(u, (n, prio))| n == node && *prio < info.priority && **u != info.uid)
            .map(|(u, _)| u.clone())
            .collect();
        for u in lower {
            self.unnominate(&u);
            if let Some(pod) = self.queue.remove(&u) {
                let (api, p) = (self.api.clone(), pod.pod.clone());
                self.spawn(async move { actions::clear_nomination(&api, &p).await });
                let prio = pod.priority;
                self.queue.upsert(&u, prio, pod, Instant::now());
            }
        }
        self.unnominate(&info.uid);
        self.snap.nominate(info.clone(), node);
        self.nominated
            .insert(info.uid.clone(), (node.to_string(), info.priority));
    }
}
