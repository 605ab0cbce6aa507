//! [`NodeInfo`]: one node as the scheduler sees it (labels, taints, readiness, allocatable,
//! images) and the pods bound or assumed there, with what they take (requests, host ports),
//! kept incrementally by [`NodeInfo::add_pod`] / [`NodeInfo::remove_pod`].

use crate::image::normalize_image;
use crate::intern::PodKey;
use crate::podinfo::PodInfo;
use crate::resources::{qty, Amounts, Resources};
use k8s_openapi::api::core::v1::{Node, Taint};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One node as the scheduler sees it. The public fields are for reading: change a node only
/// through [`NodeInfo::from_node`], [`NodeInfo::add_pod`] and [`NodeInfo::remove_pod`] (or
/// the [`crate::Snapshot`] methods), which keep the private accounting in step.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    /// The Ready condition is True.
    pub ready: bool,
    pub allocatable: Resources,
    /// The sum of the requests of the pods here.
    pub requested: Resources,
    /// (protocol, hostPort, hostIP) taken by the pods here (0.0.0.0 when no hostIP).
    pub host_ports: Vec<(String, i32, String)>,
    pub pods: Vec<Arc<PodInfo>>,
    /// Every name in `status.images[].names` (normalized, see [`crate::normalize_image`]) →
    /// `sizeBytes`.
    pub images: BTreeMap<String, i64>,
    /// The Ready condition is Unknown (the node is unreachable).
    pub(crate) unreachable: bool,
    pub(crate) alloc: Amounts,
    pub(crate) alloc_pods: i64,
    pub(crate) req: Amounts,
    pub(crate) nonzero_cpu: i64,
    pub(crate) nonzero_mem: i64,
    /// How many pods here have terms InterPodAffinity's score reads / required anti-affinity.
    pub(crate) with_affinity: usize,
    pub(crate) with_required_anti: usize,
    /// The labels as interned ids (set by the snapshot).
    pub(crate) label_ids: Vec<(u32, u32)>,
    /// One per pod, in step with `pods` (interned by the snapshot).
    pub(crate) keys: Vec<PodKey>,
}

impl NodeInfo {
    pub fn from_node(n: &Node) -> NodeInfo {
        let mut info = NodeInfo::default();
        info.set_node(n);
        info
    }

    /// Replaces what comes from the Node object, keeping the pods.
    pub(crate) fn set_node(&mut self, n: &Node) {
        let spec = n.spec.as_ref();
        let status = n.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        self.name = n.metadata.name.clone().unwrap_or_default();
        self.labels = n.metadata.labels.clone().unwrap_or_default();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.ready = ready == Some("True");
        self.unreachable = ready == Some("Unknown");
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(|a| a.iter().map(|(k, q)| (k.clone(), qty(q, k))).collect())
            .unwrap_or_default();
        self.alloc = Amounts::from_resources(&self.allocatable);
        self.alloc_pods = self.allocatable.get("pods").copied().unwrap_or(0) as i64;
        self.images = BTreeMap::new();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                let name = normalize_image(name);
                if !name.is_empty() {
                    self.images.insert(name, img.size_bytes.unwrap_or(0));
                }
            }
        }
    }

    /// The taint the node lifecycle controller would put on a node that is not ready.
    pub(crate) fn condition_taint(&self) -> Option<&'static str> {
        match (self.ready, self.unreachable) {
            (true, _) => None,
            (false, true) => Some("node.kubernetes.io/unreachable"),
            (false, false) => Some("node.kubernetes.io/not-ready"),
        }
    }

    /// Accounts for a pod bound (or assumed) here.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.add_pod_keyed(p, PodKey::none());
    }

    pub(crate) fn add_pod_keyed(&mut self, p: Arc<PodInfo>, key: PodKey) {
        self.keys.push(key);
        for (k, v) in &p.requests {
            *self.requested.entry(k.clone()).or_default() += v;
        }
        self.req.add(&p.req, 1);
        self.nonzero_cpu += p.nonzero_cpu;
        self.nonzero_mem += p.nonzero_mem;
        self.host_ports.extend(p.host_ports.iter().cloned());
        self.with_affinity += p.has_scoring_affinity() as usize;
        self.with_required_anti += p.has_required_anti() as usize;
        self.pods.push(p);
    }

    /// Forgets the pod with this uid; false when it is not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        self.remove_pod_keyed(uid).is_some()
    }

    /// Removes the pod, returning its key.
    pub(crate) fn remove_pod_keyed(&mut self, uid: &str) -> Option<PodKey> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let p = self.pods.remove(i);
        let key = self.keys.remove(i);
        for (k, v) in &p.requests {
            if let Some(e) = self.requested.get_mut(k) {
                *e -= v;
                if *e == 0 {
                    self.requested.remove(k);
                }
            }
        }
        self.req.add(&p.req, -1);
        self.nonzero_cpu -= p.nonzero_cpu;
        self.nonzero_mem -= p.nonzero_mem;
        for hp in &p.host_ports {
            if let Some(j) = self.host_ports.iter().position(|x| x == hp) {
                self.host_ports.remove(j);
            }
        }
        self.with_affinity -= p.has_scoring_affinity() as usize;
        self.with_required_anti -= p.has_required_anti() as usize;
        Some(key)
    }
}
