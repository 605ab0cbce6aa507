//! The Endpoints controller's I/O edge (kube's `endpoint` controller): services, pods and
//! endpoints from the shared caches → capstan_controllers::endpoints::reconcile → POST or
//! PUT (with the cached resourceVersion) of the service's Endpoints; a deleted service's
//! Endpoints are deleted, and at start Endpoints without a service (left over) too.
//! A pod change queues only the services whose endpoints it changes.

use super::cache::{key, object_path, resource, Cache, Caches};
use super::queue::{drive, Queue};
use super::writes;
use super::written::Written;
use capstan_agent::api::Api;
use capstan_controllers::endpoints::{self, TriggerState};
use capstan_controllers::{name, namespace, uid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Annotation of the Endpoints objects leader election used to write (never deleted).
const LEADER: &str = "control-plane.alpha.kubernetes.io/leader";

pub struct Controller {
    api: Api,
    services: Arc<Cache>,
    pods: Arc<Cache>,
    endpoints: Arc<Cache>,
    written: Written,
    triggers: Mutex<HashMap<String, TriggerState>>,
}

fn res() -> &'static capstan_api::resources::Resource {
    resource("", "v1", "endpoints")
}

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "services"));
    caches.want(resource("", "v1", "pods"));
    caches.want(res());
}

pub async fn run(api: Api, caches: &Caches) {
    let services = caches.get("services").expect("registered").clone();
    let pods = caches.get("pods").expect("registered").clone();
    let eps = caches.get("endpoints").expect("registered").clone();
    let queue = Queue::new();
    watch_services_and_pods(&services, &pods, &queue);
    {
        let (q, services) = (queue.clone(), services.clone());
        eps.on_change(move |old, new| match (old, new) {
            // Deleted: recreate it (or, without a service, nothing).
            (Some(o), None) => q.add(key(o)),
            // A write (ours, settling; or someone's) to a service's Endpoints.
            (_, Some(n)) if services.get_shared(&key(n)).is_some() => q.add(key(n)),
            _ => {}
        });
    }
    services.wait_synced().await;
    pods.wait_synced().await;
    eps.wait_synced().await;
    let c = Arc::new(Controller {
        api,
        services: services.clone(),
        pods,
        endpoints: eps.clone(),
        written: Written::default(),
        triggers: Mutex::new(HashMap::new()),
    });
    for s in services.list(|_| true) {
        queue.add(key(&s));
    }
    // kube's checkLeftoverEndpoints: Endpoints whose service is gone are deleted at start.
    for e in eps.list(|e| e["metadata"]["annotations"].get(LEADER).is_none()) {
        queue.add(key(&e));
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

/// Service changes queue the service; pod changes the services whose endpoints they change.
pub fn watch_services_and_pods(services: &Arc<Cache>, pods: &Arc<Cache>, queue: &Arc<Queue>) {
    {
        let q = queue.clone();
        services.on_change(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(key(s));
            }
        });
    }
    let (q, services) = (queue.clone(), services.clone());
    pods.on_change(move |old, new| {
        let Some(p) = new.or(old) else { return };
        let in_ns = services.in_namespace_shared(namespace(p));
        for k in endpoints::services_for_pod_change(&in_ns, old, new) {
            q.add(k);
        }
    });
}

impl Controller {
    async fn sync(&self, k: &str) -> Option<Duration> {
        let Some(svc) = self.services.get_shared(k) else {
            self.triggers.lock().unwrap().remove(k);
            self.written.forget(k);
            let ep = self.endpoints.get_shared(k)?;
            let path = object_path(res(), namespace(&ep), name(&ep));
            if !writes::delete(&self.api, &path, uid(&ep), None).await {
                return Some(Duration::from_secs(1));
            }
            return None;
        };
        if !endpoints::managed(&svc) {
            return None;
        }
        if !self.written.settled(k, &self.endpoints) {
            return Some(Duration::from_secs(1));
        }
        let pods = self.pods.in_namespace_shared(namespace(&svc));
        let selected = endpoints::selected(&svc, &pods);
        let trigger = {
            let mut g = self.triggers.lock().unwrap();
            let (t, state) = endpoints::trigger_time(g.get(k), &svc, &selected);
            g.insert(k.to_string(), state);
            t
        };
        let current = self.endpoints.get_shared(k);
        let obj = endpoints::reconcile(&svc, &selected, current.as_deref(), trigger)?;
        let ns = namespace(&svc);
        let answer = match current {
            None => {
                let path = format!("/api/v1/namespaces/{ns}/endpoints");
                self.api.call("POST", &path, Some(&obj)).await
            }
            Some(_) => {
                let path = object_path(res(), ns, name(&svc));
                self.api.call("PUT", &path, Some(&obj)).await
            }
        };
        match answer {
            Ok(a) if a.code < 300 => {
                self.written.wrote(k, k.to_string(), &a.body);
                None
            }
            // A cache behind someone else's write: it arrives shortly.
            Ok(a) if a.code == 409 => Some(Duration::from_millis(200)),
            Ok(a) => {
                tracing::debug!(code = a.code, service = %k, body = %a.body, "endpoints write refused");
                Some(Duration::from_secs(1))
            }
            Err(e) => {
                tracing::debug!(error = %e, service = %k, "endpoints write");
                Some(Duration::from_secs(1))
            }
        }
    }
}
