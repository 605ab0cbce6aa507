//! The EndpointSlice controller's I/O edge (kube's `endpointslice` controller): services,
//! pods, endpointslices and nodes (for zones) from the shared caches →
//! capstan_controllers::endpointslice::reconcile → slice creates (generateName), PUTs with the
//! cached resourceVersion, deletes with a uid precondition. A deleted service's slices go
//! with it through their ownerReferences (the garbage collector). Pod changes queue only
//! the services whose endpoints they change; a change to one of its slices queues the service.

use super::cache::{collection, key, object_path, resource, Cache, Caches};
use super::endpoints::watch_services_and_pods;
use super::queue::{drive, Queue};
use super::writes;
use super::written::Written;
use capstan_agent::api::Api;
use capstan_controllers::endpoints::{self, TriggerState};
use capstan_controllers::endpointslice::{self, MAX_ENDPOINTS_PER_SLICE};
use capstan_controllers::{name, namespace, uid};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ZONE: &str = "topology.kubernetes.io/zone";

pub struct Controller {
    api: Api,
    services: Arc<Cache>,
    pods: Arc<Cache>,
    slices: Arc<Cache>,
    nodes: Arc<Cache>,
    written: Written,
    triggers: Mutex<HashMap<String, TriggerState>>,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("discovery.k8s.io", "v1", "endpointslices")
}

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "services"));
    caches.want(resource("", "v1", "pods"));
    caches.want(resource("", "v1", "nodes"));
    caches.want(res());
}

pub async fn run(api: Api, caches: &Caches) {
    let services = caches.get("services").expect("registered").clone();
    let pods = caches.get("pods").expect("registered").clone();
    let slices = caches.get("endpointslices").expect("registered").clone();
    let nodes = caches.get("nodes").expect("registered").clone();
    let queue = Queue::new();
    watch_services_and_pods(&services, &pods, &queue);
    {
        let q = queue.clone();
        slices.on_change(move |old, new| {
            for s in [old, new].into_iter().flatten() {
                if let Some(k) = endpointslice::service_key(s) {
                    q.add(k);
                }
            }
        });
    }
    for c in [&services, &pods, &slices, &nodes] {
        c.wait_synced().await;
    }
    let c = Arc::new(Controller {
        api,
        services: services.clone(),
        pods,
        slices,
        nodes,
        written: Written::default(),
        triggers: Mutex::new(HashMap::new()),
    });
    for s in services.list(|_| true) {
        queue.add(key(&s));
    }
    let all = {
        let services = services.clone();
        move || services.keys()
    };
    drive(queue, Duration::from_secs(30), all, |k| {
        let c = c.clone();
        async move { c.sync(&k).await }
    })
    .await;
}

impl Controller {
    fn zone_of(&self, node: &str) -> Option<Option<String>> {
        let n = self.nodes.get_shared(&format!("/{node}"))?;
        Some(
            n.pointer("/metadata/labels")
                .and_then(|l| l.get(ZONE))
                .and_then(Value::as_str)
                .map(str::to_string),
        )
    }

    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(svc) = self.services.get_shared(k) else {
            self.triggers.lock().unwrap().remove(k);
            self.written.forget(k);
            return None;
        };
        if !endpoints::managed(&svc) {
            return None;
        }
        if !self.written.settled(k, &self.slices) {
            return Some(Duration::from_secs(1));
        }
        let ns = namespace(&svc);
        let pods = self.pods.in_namespace_shared(ns);
        let selected = endpoints::selected(&svc, &pods);
        let in_ns = self.slices.in_namespace_shared(ns);
        let mine = endpointslice::slices_of(&svc, &in_ns);
        let trigger = {
            let mut g = self.triggers.lock().unwrap();
            let (t, state) = endpoints::trigger_time(g.get(k), &svc, &selected);
            g.insert(k.to_string(), state);
            t
        };
        let plan = endpointslice::reconcile(
            &svc,
            &selected,
            &mine,
            &|n| self.zone_of(n),
            trigger,
            MAX_ENDPOINTS_PER_SLICE,
        );
        let mut again = plan.missing_node.then(|| Duration::from_secs(1));
        let mut fail = |a: Result<capstan_agent::api::Answer, _>, what: &str| match a {
            Ok(a) if a.code < 300 => Some(a.body),
            Ok(a) => {
                tracing::debug!(code = a.code, service = %k, body = %a.body, "endpointslice {what} refused");
                let d = if a.code == 409 { 200 } else { 1000 };
                again = Some(Duration::from_millis(d));
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, service = %k, "endpointslice {what}");
                again = Some(Duration::from_secs(1));
                None
            }
        };
        for s in &plan.create {
            let a = self
                .api
                .call("POST", &collection(res(), Some(ns)), Some(s))
                .await;
            if let Some(body) = fail(a, "create") {
                self.written.wrote(k, key(&body), &body);
            }
        }
        for s in &plan.update {
            let path = object_path(res(), ns, name(s));
            let a = self.api.call("PUT", &path, Some(s)).await;
            if let Some(body) = fail(a, "update") {
                self.written.wrote(k, key(&body), &body);
            }
        }
        for s in &plan.delete {
            let path = object_path(res(), ns, name(s));
            if writes::delete(&self.api, &path, uid(s), None).await {
                self.written.deleted(k, key(s), uid(s));
            } else {
                again = Some(Duration::from_secs(1));
            }
        }
        again
    }
}
