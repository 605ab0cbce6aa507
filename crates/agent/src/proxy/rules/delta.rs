//! Incremental transactions: two [`State`]s of the table → one `nft -f` script that turns the
//! first into the second, touching only what differs (new chains and sets added, changed
//! chains flushed and refilled, map and set elements deleted/added, chains and sets that went
//! away flushed and deleted). Applying it to a table holding `old` leaves exactly what
//! [`full_script`](super::full_script) of `new` would (checked against the kernel in the
//! root-only test). The steps are ordered so every reference is valid at each point: objects
//! are created before anything refers to them and deleted after the last reference went.

use super::{addr_key, hairpin_element, port_key, Chain, State, REJECT};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

fn map_of_addr(verdict: &str) -> &'static str {
    if verdict == REJECT {
        "no-endpoint-services"
    } else {
        "service-ips"
    }
}

fn map_of_port(verdict: &str) -> &'static str {
    if verdict == REJECT {
        "no-endpoint-nodeports"
    } else {
        "service-nodeports"
    }
}

/// Element changes of one kind of map: (map, key text) to delete, (map, element text) to add.
fn element_changes<K: Ord>(
    old: &BTreeMap<K, String>,
    new: &BTreeMap<K, String>,
    key: impl Fn(&K) -> String,
    map: impl Fn(&str) -> &'static str,
    dels: &mut Vec<(&'static str, String)>,
    adds: &mut Vec<(&'static str, String)>,
) {
    for (k, v) in old {
        if new.get(k) != Some(v) {
            dels.push((map(v), key(k)));
        }
    }
    for (k, v) in new {
        if old.get(k) != Some(v) {
            adds.push((map(v), format!("{} : {v}", key(k))));
        }
    }
}

/// `delete element` for what left set `name`, then `add element` for what came (one
/// command each, none when nothing changed).
fn set_changes<T: Ord>(
    out: &mut String,
    t: &str,
    name: &str,
    old: &BTreeSet<T>,
    new: &BTreeSet<T>,
    show: impl Fn(&T) -> String,
) {
    for (verb, from, to) in [("delete", old, new), ("add", new, old)] {
        let els: Vec<String> = from.difference(to).map(&show).collect();
        if !els.is_empty() {
            let _ = writeln!(out, "{verb} element ip {t} {name} {{ {} }}", els.join(", "));
        }
    }
}

/// The script that turns table `ip <table>` holding `old` into `new`; empty when they are
/// equal. None when the change cannot be made in place (an affinity set's timeout changed):
/// the caller rebuilds the table with the full script.
pub fn delta_script(table: &str, old: &State, new: &State) -> Option<String> {
    let old_sets: BTreeMap<&str, u64> = old.sets.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let new_sets: BTreeMap<&str, u64> = new.sets.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    if new_sets
        .iter()
        .any(|(n, t)| old_sets.get(n).is_some_and(|o| o != t))
    {
        return None;
    }
    let old_chains: HashMap<&str, &Chain> = old.chains.iter().map(|c| (c.0.as_str(), c)).collect();
    let new_chains: HashSet<&str> = new.chains.iter().map(|c| c.0.as_str()).collect();
    let mut out = String::new();
    let t = table;
    // 1. New sets and (empty) chains: rules and elements below may refer to them.
    for (name, timeout) in &new.sets {
        if !old_sets.contains_key(name.as_str()) {
            let _ = writeln!(
                out,
                "add set ip {t} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
            );
        }
    }
    for c in &new.chains {
        let name = &c.0;
        if !old_chains.contains_key(name.as_str()) {
            let _ = writeln!(out, "add chain ip {t} {name}");
        }
    }
    // 2. Chains whose rules changed (or new ones) get their new rules.
    for c in &new.chains {
        let (name, rules) = (&c.0, &c.1);
        match old_chains.get(name.as_str()) {
            // The memo shares an unchanged service's chains: most compare by pointer.
            Some(o) if Arc::ptr_eq(o, c) || o.1 == *rules => continue,
            Some(_) => {
                let _ = writeln!(out, "flush chain ip {t} {name}");
            }
            None => {}
        }
        for r in rules {
            let _ = writeln!(out, "add rule ip {t} {name} {r}");
        }
    }
    // 3. Node addresses and hairpin pairs; 4. then map elements: a changed key is deleted
    // (from the map it was in), then added.
    let (oi, ni): (BTreeSet<_>, BTreeSet<_>) = (
        old.node_ips.iter().copied().collect(),
        new.node_ips.iter().copied().collect(),
    );
    set_changes(&mut out, t, "nodeport-ips", &oi, &ni, |i| i.to_string());
    set_changes(
        &mut out,
        t,
        "hairpin",
        &old.hairpin,
        &new.hairpin,
        hairpin_element,
    );
    let (mut dels, mut adds) = (Vec::new(), Vec::new());
    element_changes(
        &old.service_ips,
        &new.service_ips,
        addr_key,
        map_of_addr,
        &mut dels,
        &mut adds,
    );
    element_changes(
        &old.nodeports,
        &new.nodeports,
        port_key,
        map_of_port,
        &mut dels,
        &mut adds,
    );
    for (verb, list) in [("delete", &dels), ("add", &adds)] {
        let mut by_map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, e) in list {
            by_map.entry(m).or_default().push(e);
        }
        for (m, es) in by_map {
            let _ = writeln!(out, "{verb} element ip {t} {m} {{ {} }}", es.join(", "));
        }
    }
    // 5. Chains that went away: all emptied first (one may jump to another), then deleted;
    // then the sets only their rules used.
    let removed: Vec<&str> = old
        .chains
        .iter()
        .map(|c| c.0.as_str())
        .filter(|n| !new_chains.contains(n))
        .collect();
    for name in &removed {
        let _ = writeln!(out, "flush chain ip {t} {name}");
    }
    for name in &removed {
        let _ = writeln!(out, "delete chain ip {t} {name}");
    }
    for (name, _) in &old.sets {
        if !new_sets.contains_key(name.as_str()) {
            let _ = writeln!(out, "delete set ip {t} {name}");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
