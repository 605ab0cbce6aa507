//! The proxy's pass at 10,000 services: [`state`](super::state) recomputes every service's
//! chains from its JSON each time, which costs tens of milliseconds of allocation while one
//! endpoint changed. [`Memo`] keeps each service's [`Part`] with the `Arc`s of the objects it
//! was computed from (the service and its slices, as the mirror holds them): a service whose
//! objects are the same allocations as last pass reuses its part (and its chains' `Arc`s, so
//! the delta skips them by pointer). Holding the `Arc`s keeps the allocations alive, so an
//! address can never be reused by a newer object while an entry names it. The result equals
//! `state` of the same objects (table test below).

use super::{assemble, part, service_ports, Part, State};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

struct Entry {
    svc: Arc<Value>,
    slices: Vec<Arc<Value>>,
    part: Arc<Part>,
    /// `ns/name/`: every port id of the service starts with it, so sorting by it orders the
    /// parts as `state` orders the ports (by id).
    order: Arc<str>,
}

/// An object's key, computed once per allocation: JSON lookups of 10,000 objects (cache
/// misses, mostly) were most of a pass. The entry holds the `Arc`, so its address, the map's
/// key, cannot be reused by another object while the entry exists.
struct Keyed {
    _obj: Arc<Value>,
    key: Option<Arc<str>>,
}

type KeyCache = HashMap<usize, Keyed>;

/// The key of `obj` (from `old`, or `f` when this allocation is new), recorded in `new`.
fn key_of(
    old: &mut KeyCache,
    new: &mut KeyCache,
    obj: &Arc<Value>,
    f: impl Fn(&Value) -> Option<String>,
) -> Option<Arc<str>> {
    let p = Arc::as_ptr(obj) as usize;
    let k = old.remove(&p).unwrap_or_else(|| Keyed {
        _obj: obj.clone(),
        key: f(obj).map(Arc::from),
    });
    let key = k.key.clone();
    new.insert(p, k);
    key
}

/// `ns/name` of a service.
fn service_key(v: &Value) -> Option<String> {
    let md = &v["metadata"];
    Some(format!(
        "{}/{}",
        md["namespace"].as_str()?,
        md["name"].as_str()?
    ))
}

/// `ns/name` of the service a slice belongs to.
fn slice_service_key(v: &Value) -> Option<String> {
    let md = &v["metadata"];
    Some(format!(
        "{}/{}",
        md["namespace"].as_str()?,
        md["labels"]["kubernetes.io/service-name"].as_str()?
    ))
}

/// Each service's last part, by `namespace/name`.
#[derive(Default)]
pub struct Memo {
    node: String,
    entries: HashMap<Arc<str>, Entry>,
    services: KeyCache,
    slices: KeyCache,
}

fn same(a: &[Arc<Value>], b: &[&Arc<Value>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

impl Memo {
    /// [`state`](super::state) of these objects, recomputing only the services whose object or
    /// slices changed since the last call (all of them when `node` changed).
    pub fn state(
        &mut self,
        node: &str,
        node_ips: &[String],
        services: &[Arc<Value>],
        slices: &[Arc<Value>],
    ) -> State {
        if self.node != node {
            self.entries.clear();
            self.node = node.to_string();
        }
        let mut slice_keys = KeyCache::with_capacity(slices.len());
        let mut by_service: HashMap<Arc<str>, Vec<&Arc<Value>>> = HashMap::new();
        for sl in slices {
            if let Some(k) = key_of(&mut self.slices, &mut slice_keys, sl, slice_service_key) {
                by_service.entry(k).or_default().push(sl);
            }
        }
        self.slices = slice_keys;
        let mut svc_keys = KeyCache::with_capacity(services.len());
        let mut next: HashMap<Arc<str>, Entry> = HashMap::with_capacity(services.len());
        let mut parts: Vec<(Arc<str>, Arc<Part>)> = Vec::with_capacity(services.len());
        for svc in services {
            let Some(key) = key_of(&mut self.services, &mut svc_keys, svc, service_key) else {
                continue;
            };
            let mine: &[&Arc<Value>] = by_service.get(&key).map_or(&[], |v| v.as_slice());
            let entry = match self.entries.remove(&key) {
                Some(e) if Arc::ptr_eq(&e.svc, svc) && same(&e.slices, mine) => e,
                _ => {
                    let md = &svc["metadata"];
                    let ns = md["namespace"].as_str().unwrap_or_default();
                    let name = md["name"].as_str().unwrap_or_default();
                    let one: HashMap<(&str, &str), Vec<&Value>> =
                        HashMap::from([((ns, name), mine.iter().map(|a| a.as_ref()).collect())]);
                    let ports = service_ports(std::slice::from_ref(svc.as_ref()), &one, node);
                    Entry {
                        svc: svc.clone(),
                        slices: mine.iter().map(|a| Arc::clone(a)).collect(),
                        part: Arc::new(part(&ports)),
                        order: Arc::from(format!("{key}/")),
                    }
                }
            };
            parts.push((entry.order.clone(), entry.part.clone()));
            next.insert(key, entry);
        }
        self.services = svc_keys;
        self.entries = next;
        parts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        assemble(parts.iter().map(|(_, p)| p.as_ref()), node_ips)
    }
}

#[cfg(test)]
mod tests {
    use super::super::state;
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, ip: &str, extra: Value) -> Arc<Value> {
        let mut spec = json!({"clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        Arc::new(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec}))
    }

    fn slice(ns: &str, svc: &str, name: &str, ips: &[&str]) -> Arc<Value> {
        let eps: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "n1"}))
            .collect();
        Arc::new(json!({
            "metadata": {"namespace": ns, "name": name,
                "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps,
        }))
    }

    type Step = Box<dyn Fn(&mut Vec<Arc<Value>>, &mut Vec<Arc<Value>>)>;

    /// A sequence of changes; after each, the memo's state equals `state` of the same objects.
    #[test]
    fn equals_state_through_changes() {
        let ips = vec!["192.0.2.2".to_string()];
        let mut svcs = vec![
            svc("a", "b", "10.43.0.20", json!({})),
            // "b-c" sorts before "b" by port id, after it by key: the order must follow ids.
            svc("a", "b-c", "10.43.0.21", json!({"type": "NodePort"})),
            svc(
                "a",
                "d",
                "10.43.0.22",
                json!({"sessionAffinity": "ClientIP"}),
            ),
            // Claims b's cluster IP and port: b (first by id) keeps it.
            svc("a", "e", "10.43.0.20", json!({})),
        ];
        svcs[1] = {
            let mut v = (*svcs[1]).clone();
            v["spec"]["ports"][0]["nodePort"] = json!(30080);
            Arc::new(v)
        };
        let mut sls = vec![
            slice("a", "b", "b-1", &["10.42.0.5"]),
            slice("a", "b-c", "bc-1", &["10.42.0.6", "10.42.0.7"]),
            slice("a", "d", "d-1", &["10.42.0.8"]),
            slice("a", "e", "e-1", &["10.42.0.9"]),
        ];
        let mut memo = Memo::default();
        let steps: Vec<(&str, Step)> = vec![
            ("unchanged", Box::new(|_, _| {})),
            (
                "an endpoint swapped",
                Box::new(|_, sl| sl[0] = slice("a", "b", "b-1", &["10.42.0.50"])),
            ),
            (
                "a second slice for one service",
                Box::new(|_, sl| sl.push(slice("a", "d", "d-2", &["10.42.0.80"]))),
            ),
            (
                "a service's IP changed",
                Box::new(|s, _| s[3] = svc("a", "e", "10.43.0.23", json!({}))),
            ),
            (
                "a service gone",
                Box::new(|s, _| {
                    s.remove(0);
                }),
            ),
            ("all slices gone", Box::new(|_, sl| sl.clear())),
        ];
        for (name, step) in steps {
            step(&mut svcs, &mut sls);
            let got = memo.state("n1", &ips, &svcs, &sls);
            assert_eq!(got, state("n1", &ips, &svcs, &sls), "{name}");
        }
        let got = memo.state("n2", &ips, &svcs, &sls);
        assert_eq!(got, state("n2", &ips, &svcs, &sls), "another node");
    }

    #[test]
    fn unchanged_services_keep_their_chains() {
        let ips = vec!["192.0.2.2".to_string()];
        let svcs = vec![
            svc("a", "x", "10.43.0.30", json!({})),
            svc("a", "y", "10.43.0.31", json!({})),
        ];
        let mut sls = vec![
            slice("a", "x", "x-1", &["10.42.0.5"]),
            slice("a", "y", "y-1", &["10.42.0.6"]),
        ];
        let mut memo = Memo::default();
        let first = memo.state("n1", &ips, &svcs, &sls);
        sls[1] = slice("a", "y", "y-1", &["10.42.0.7"]);
        let second = memo.state("n1", &ips, &svcs, &sls);
        let chain = |st: &State, prefix: &str| {
            st.chains
                .iter()
                .find(|c| c.0.starts_with(prefix))
                .cloned()
                .unwrap()
        };
        assert!(Arc::ptr_eq(
            &chain(&first, "svc-a/x"),
            &chain(&second, "svc-a/x")
        ));
        assert!(!Arc::ptr_eq(
            &chain(&first, "svc-a/y"),
            &chain(&second, "svc-a/y")
        ));
    }
}
