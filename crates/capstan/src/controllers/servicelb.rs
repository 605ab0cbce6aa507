//! The service-lb controller's I/O edge (kube's service-lb-controller, named `service-lb`):
//! the shared service cache → one queue → capstan_controllers::servicelb's pool decision →
//! `services/NAME/status` merge patches (status.loadBalancer.ingress) and kube's events
//! (EnsuringLoadBalancer / EnsuredLoadBalancer, SyncLoadBalancerFailed while the pool is
//! exhausted, DeletedLoadBalancer when a type change gives the address back). The pool is
//! rebuilt from the cached services' status before the first sync; a released address
//! re-queues the services still waiting for one.

use super::cache::{key, object_path, resource, Caches};
use super::queue::{drive, Queue};
use super::writes;
use capstan_agent::api::Api;
use capstan_controllers::servicelb::{self as core, Action, Pool};
use capstan_validation::cidr::Cidr;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use core::DEFAULT_POOL;

const COMPONENT: &str = "service-controller";
const KIND: (&str, &str) = ("Service", "v1");

pub fn register(caches: &mut Caches) {
    caches.want(resource("", "v1", "services"));
}

pub async fn run(api: Api, caches: &Caches, pool_cidr: &str) {
    let cidr = match Cidr::parse(pool_cidr) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "service-lb: bad --ingress-ip-cidr; controller not started");
            return;
        }
    };
    let services = caches.get("services").expect("registered").clone();
    let queue = Queue::new();
    {
        let q = queue.clone();
        services.on_change(move |old, new| {
            if let Some(o) = new.or(old) {
                q.add(key(o));
            }
        });
    }
    services.wait_synced().await;
    let mut pool = Pool::new(cidr);
    pool.rebuild(&services.list(|_| true));
    tracing::info!(pool = %cidr, in_use = pool.in_use(), "service-lb: ingress IP pool rebuilt");
    let pool = Arc::new(Mutex::new(pool));
    let all = {
        let s = services.clone();
        move || s.keys()
    };
    let (q2, svcs2) = (queue.clone(), services.clone());
    drive(queue, Duration::from_secs(30), all, move |k| {
        let (api, pool, services, queue) = (api.clone(), pool.clone(), svcs2.clone(), q2.clone());
        async move {
            let svc = services.get(&k);
            let (action, released) = {
                let mut p = pool.lock().unwrap();
                let had = p.held(&k).is_some();
                let a = p.sync(&k, svc.as_ref());
                (a, had && p.held(&k).is_none())
            };
            if released {
                // Someone may be waiting for an address.
                for s in services.list(|s| core::managed(s) && s.pointer("/status/loadBalancer/ingress").is_none()) {
                    queue.add(key(&s));
                }
            }
            let svc = svc?;
            let path = format!(
                "{}/status",
                object_path(resource("", "v1", "services"), capstan_controllers::namespace(&svc), capstan_controllers::name(&svc))
            );
            match action {
                Action::Nothing => None,
                Action::Set { ip, new } => {
                    if new {
                        writes::event(&api, &svc, KIND, COMPONENT, false, "EnsuringLoadBalancer", "Ensuring load balancer").await;
                    }
                    let patch = json!({"metadata": {"uid": capstan_controllers::uid(&svc)}, "status": core::ingress_status(ip)});
                    if !writes::merge(&api, &path, &patch).await {
                        return Some(Duration::from_secs(1));
                    }
                    tracing::info!(service = %k, %ip, "service-lb: ingress IP assigned");
                    if new {
                        writes::event(&api, &svc, KIND, COMPONENT, false, "EnsuredLoadBalancer", "Ensured load balancer").await;
                    }
                    None
                }
                Action::Clear => {
                    let patch = json!({"metadata": {"uid": capstan_controllers::uid(&svc)}, "status": {"loadBalancer": {"ingress": null}}});
                    if !writes::merge(&api, &path, &patch).await {
                        return Some(Duration::from_secs(1));
                    }
                    writes::event(&api, &svc, KIND, COMPONENT, false, "DeletedLoadBalancer", "Deleted load balancer").await;
                    None
                }
                Action::Failed(msg) => {
                    tracing::warn!(service = %k, message = %msg, "service-lb");
                    writes::event(&api, &svc, KIND, COMPONENT, true, "SyncLoadBalancerFailed", &msg).await;
                    // Retried when an address is released, and on the resync.
                    None
                }
            }
        }
    })
    .await;
}
