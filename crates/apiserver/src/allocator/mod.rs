//! Service cluster IP and node port allocation, as kube-apiserver's service REST does it: an
//! in-memory table of what is taken (one lock, no await under it), rebuilt from the stored
//! services when the server starts (kube's repair controller) and checked against them every
//! 3 minutes afterwards (an allocation no stored service holds is released after three
//! checks in a row, as kube's leak check does).
//!
//! A create or update reserves what it adds and gets a [`Ticket`]: committed after the store
//! write (releasing what the update freed), or dropped on any failure (releasing what it
//! reserved), so a failed or raced write never leaks and two services never share an IP or a
//! port. Deletes release the service's allocations ([`Allocator::release`]).

mod assign;
#[cfg(test)]
mod tests;

pub use assign::patch_allocated_values;
pub use capstan_validation::cidr::Cidr;

use crate::status::ApiResult;
use capstan_store::Store;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// One allocated thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    Ip(Ipv4Addr),
    Port(u16),
}

/// What a service holds: its cluster IPs, node ports and health-check node port.
pub fn items_of(svc: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    let mut ips: Vec<&str> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(svc.pointer("/spec/clusterIP").and_then(Value::as_str));
    }
    for ip in ips {
        if let Ok(ip) = ip.parse() {
            out.push(Item::Ip(ip));
        }
    }
    for p in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = p.get("nodePort").and_then(Value::as_u64).filter(|n| *n > 0) {
            out.push(Item::Port(n as u16));
        }
    }
    if let Some(n) = svc
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    {
        out.push(Item::Port(n as u16));
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) used: HashSet<Item>,
    /// Reserved by writes not yet finished (never released by the leak check).
    pending: HashMap<u64, Vec<Item>>,
    next: u64,
    /// Leak-check rounds an allocation has been seen without a stored service.
    leaks: HashMap<Item, u32>,
}

/// The allocation of one write, reserved until the write is done.
pub struct Ticket {
    table: Arc<Mutex<Table>>,
    id: u64,
    added: Vec<Item>,
    freed: Vec<Item>,
    done: bool,
}

impl Ticket {
    /// The write is stored: keep what it added, release what it freed.
    pub fn commit(mut self) {
        let mut t = self.table.lock().unwrap();
        t.pending.remove(&self.id);
        for f in &self.freed {
            t.used.remove(f);
        }
        self.done = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut t = self.table.lock().unwrap();
        t.pending.remove(&self.id);
        for a in &self.added {
            t.used.remove(a);
        }
    }
}

pub struct Allocator {
    pub service_cidr: Cidr,
    pub node_ports: (u16, u16),
    table: Arc<Mutex<Table>>,
}

/// kube's leak check releases an allocation seen unused this many times in a row.
const LEAK_ROUNDS: u32 = 3;

impl Allocator {
    pub fn new(service_cidr: Cidr, node_ports: (u16, u16)) -> Allocator {
        Allocator {
            service_cidr,
            node_ports,
            table: Arc::new(Mutex::new(Table::default())),
        }
    }

    fn reserve(&self, svc: &mut Value, old: Option<&Value>) -> ApiResult<Ticket> {
        let old_items: HashSet<Item> = old.map(items_of).unwrap_or_default().into_iter().collect();
        let mut t = self.table.lock().unwrap();
        let taken = |i: &Item| t.used.contains(i) && !old_items.contains(i);
        assign::assign(self, svc, old, &taken)?;
        let new_items = items_of(svc);
        let added: Vec<Item> = new_items
            .iter()
            .filter(|i| !old_items.contains(i))
            .copied()
            .collect();
        let freed: Vec<Item> = old_items
            .iter()
            .filter(|i| !new_items.contains(i))
            .copied()
            .collect();
        for a in &added {
            t.used.insert(*a);
        }
        t.next += 1;
        let id = t.next;
        t.pending.insert(id, added.clone());
        Ok(Ticket {
            table: self.table.clone(),
            id,
            added,
            freed,
            done: false,
        })
    }

    /// Fill spec.clusterIP(s), node ports and the health-check node port of a new service.
    pub fn allocate(&self, svc: &mut Value) -> ApiResult<Ticket> {
        self.reserve(svc, None)
    }

    /// An update: allocated values kept, what a type change needs allocated, what it no
    /// longer needs released on commit.
    pub fn update(&self, old: &Value, new: &mut Value) -> ApiResult<Ticket> {
        self.reserve(new, Some(old))
    }

    /// A service was deleted from the store.
    pub fn release(&self, svc: &Value) {
        let mut t = self.table.lock().unwrap();
        for i in items_of(svc) {
            t.used.remove(&i);
        }
    }

    /// Whether `item` is allocated now.
    pub fn is_used(&self, item: Item) -> bool {
        self.table.lock().unwrap().used.contains(&item)
    }

    /// Rebuild the table from the stored services (at start, before serving).
    pub async fn rebuild(&self, store: &Arc<dyn Store>) -> anyhow::Result<usize> {
        let stored = stored_items(store).await?;
        let mut t = self.table.lock().unwrap();
        t.used = stored.into_iter().collect();
        t.leaks.clear();
        Ok(t.used.len())
    }

    /// One periodic repair pass: allocations of stored services that are missing are added,
    /// allocations no stored service holds (and no write in flight) released after
    /// [`LEAK_ROUNDS`] passes in a row.
    pub async fn repair(&self, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let stored: HashSet<Item> = stored_items(store).await?.into_iter().collect();
        let mut t = self.table.lock().unwrap();
        let in_flight: HashSet<Item> = t.pending.values().flatten().copied().collect();
        for i in &stored {
            if t.used.insert(*i) {
                tracing::warn!(item = ?i, "service allocation repair: a stored service's allocation was missing");
            }
        }
        let unused: Vec<Item> = t
            .used
            .iter()
            .filter(|i| !stored.contains(i) && !in_flight.contains(i))
            .copied()
            .collect();
        let mut leaks = HashMap::new();
        for i in unused {
            let n = t.leaks.get(&i).copied().unwrap_or(0) + 1;
            if n >= LEAK_ROUNDS {
                tracing::warn!(item = ?i, "service allocation repair: released a leaked allocation");
                t.used.remove(&i);
            } else {
                leaks.insert(i, n);
            }
        }
        t.leaks = leaks;
        Ok(())
    }
}

async fn stored_items(store: &Arc<dyn Store>) -> anyhow::Result<Vec<Item>> {
    let svc = capstan_api::resources::find("", "v1", "services").expect("registered");
    let list = store.list(&svc.prefix(None), None, None, 0).await?;
    let mut out = Vec::new();
    for kv in list.kvs {
        let v: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        out.extend(items_of(&v));
    }
    Ok(out)
}
