//! Stale UDP conntrack entries. A UDP "connection" lives in conntrack as long as packets keep
//! coming, DNATed to the endpoint chosen for its first packet; when that endpoint goes away the
//! client keeps sending into the void, and a flow that began while a service had no endpoint
//! (or before its rules existed) keeps bypassing the DNAT. So, after the new rules are
//! applied, the proxy deletes (two [`State`]s → `conntrack` argument lists, as kube-proxy):
//! - for each endpoint a UDP service port lost (or the whole port went): the entries sent to
//!   each of its VIPs (and its node port) whose reply comes from that endpoint;
//! - for each UDP service port that had no endpoint (or did not exist) and has one now: every
//!   entry sent to its VIPs and node port, so the next packet is DNATed afresh.

use super::{State, UdpPort};
use std::collections::{BTreeMap, BTreeSet};

/// The `conntrack` argument lists (each run as `conntrack ARGS`; exit status 1 means nothing
/// matched) that flush what the change from `old` to `new` made stale; sorted, no duplicate.
pub fn udp_flushes(old: &State, new: &State) -> Vec<Vec<String>> {
    let olds: BTreeMap<&str, &UdpPort> = old.udp.iter().map(|u| (u.id.as_str(), u)).collect();
    let news: BTreeMap<&str, &UdpPort> = new.udp.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut out: BTreeSet<Vec<String>> = BTreeSet::new();
    let base = |extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ["-D", "-p", "udp"].map(String::from).to_vec();
        v.extend_from_slice(extra);
        v
    };
    for (id, o) in &olds {
        let kept = news.get(id).map(|n| &n.endpoints);
        for (ip, port) in &o.endpoints {
            if kept.is_some_and(|k| k.contains(&(*ip, *port))) {
                continue;
            }
            let reply = [
                "--reply-src".to_string(),
                ip.to_string(),
                "--reply-port-src".to_string(),
                port.to_string(),
            ];
            for vip in &o.vips {
                let mut a = vec![
                    "--orig-dst".to_string(),
                    vip.to_string(),
                    "--orig-port-dst".to_string(),
                    o.port.to_string(),
                ];
                a.extend(reply.iter().cloned());
                out.insert(base(&a));
            }
            if let Some(np) = o.node_port {
                let mut a = vec!["--orig-port-dst".to_string(), np.to_string()];
                a.extend(reply.iter().cloned());
                out.insert(base(&a));
            }
        }
    }
    for (id, n) in &news {
        let had = olds.get(id).is_some_and(|o| !o.endpoints.is_empty());
        if had || n.endpoints.is_empty() {
            continue;
        }
        for vip in &n.vips {
            out.insert(base(&[
                "--orig-dst".to_string(),
                vip.to_string(),
                "--orig-port-dst".to_string(),
                n.port.to_string(),
            ]));
        }
        if let Some(np) = n.node_port {
            out.insert(base(&["--orig-port-dst".to_string(), np.to_string()]));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn udp(id: &str, vips: &[&str], port: u16, np: Option<u16>, eps: &[(&str, u16)]) -> UdpPort {
        UdpPort {
            id: id.into(),
            vips: vips.iter().map(|v| v.parse().unwrap()).collect(),
            port,
            node_port: np,
            endpoints: eps
                .iter()
                .map(|(i, p)| (i.parse::<Ipv4Addr>().unwrap(), *p))
                .collect(),
        }
    }

    fn st(ports: Vec<UdpPort>) -> State {
        State {
            udp: ports,
            ..State::default()
        }
    }

    fn cmds(v: Vec<Vec<String>>) -> Vec<String> {
        v.into_iter().map(|a| a.join(" ")).collect()
    }

    #[test]
    fn flushes_for_each_change() {
        let dns =
            |eps: &[(&str, u16)]| udp("kube-system/dns/udp/dns", &["10.43.0.10"], 53, None, eps);
        let np = |eps: &[(&str, u16)]| {
            udp(
                "default/np/udp/9",
                &["10.43.0.20", "198.51.100.7"],
                9,
                Some(30009),
                eps,
            )
        };
        let cases: Vec<(&str, State, State, Vec<&str>)> = vec![
            ("nothing changed", st(vec![dns(&[("10.42.0.5", 53)])]), st(vec![dns(&[("10.42.0.5", 53)])]), vec![]),
            (
                "an endpoint removed, one kept",
                st(vec![dns(&[("10.42.0.5", 53), ("10.42.0.6", 53)])]),
                st(vec![dns(&[("10.42.0.6", 53)])]),
                vec!["-D -p udp --orig-dst 10.43.0.10 --orig-port-dst 53 --reply-src 10.42.0.5 --reply-port-src 53"],
            ),
            (
                "an endpoint's port changed",
                st(vec![dns(&[("10.42.0.5", 53)])]),
                st(vec![dns(&[("10.42.0.5", 5353)])]),
                vec!["-D -p udp --orig-dst 10.43.0.10 --orig-port-dst 53 --reply-src 10.42.0.5 --reply-port-src 53"],
            ),
            (
                "an endpoint added to a service that had one: nothing",
                st(vec![dns(&[("10.42.0.5", 53)])]),
                st(vec![dns(&[("10.42.0.5", 53), ("10.42.0.6", 53)])]),
                vec![],
            ),
            (
                "first endpoint: the VIP's un-NATed entries go",
                st(vec![dns(&[])]),
                st(vec![dns(&[("10.42.0.5", 53)])]),
                vec!["-D -p udp --orig-dst 10.43.0.10 --orig-port-dst 53"],
            ),
            (
                "a new service with endpoints (every VIP and the node port)",
                st(vec![]),
                st(vec![np(&[("10.42.0.7", 9)])]),
                vec![
                    "-D -p udp --orig-dst 10.43.0.20 --orig-port-dst 9",
                    "-D -p udp --orig-dst 198.51.100.7 --orig-port-dst 9",
                    "-D -p udp --orig-port-dst 30009",
                ],
            ),
            (
                "a new service without endpoints: nothing",
                st(vec![]),
                st(vec![dns(&[])]),
                vec![],
            ),
            (
                "the service deleted: its endpoint's entries on every VIP and the node port",
                st(vec![np(&[("10.42.0.7", 9)])]),
                st(vec![]),
                vec![
                    "-D -p udp --orig-dst 10.43.0.20 --orig-port-dst 9 --reply-src 10.42.0.7 --reply-port-src 9",
                    "-D -p udp --orig-dst 198.51.100.7 --orig-port-dst 9 --reply-src 10.42.0.7 --reply-port-src 9",
                    "-D -p udp --orig-port-dst 30009 --reply-src 10.42.0.7 --reply-port-src 9",
                ],
            ),
            (
                "all endpoints swapped",
                st(vec![dns(&[("10.42.0.5", 53)])]),
                st(vec![dns(&[("10.42.0.9", 53)])]),
                vec!["-D -p udp --orig-dst 10.43.0.10 --orig-port-dst 53 --reply-src 10.42.0.5 --reply-port-src 53"],
            ),
        ];
        for (what, old, new, want) in cases {
            assert_eq!(cmds(udp_flushes(&old, &new)), want, "{what}");
        }
    }

    #[test]
    fn only_udp_ports_are_in_the_state() {
        let svc = serde_json::json!({"metadata": {"namespace": "default", "name": "m"},
            "spec": {"clusterIP": "10.43.0.30", "ports": [
                {"name": "t", "port": 53, "protocol": "TCP"},
                {"name": "u", "port": 53, "protocol": "UDP"}]}});
        let sl = serde_json::json!({"metadata": {"namespace": "default", "name": "m-1",
                "labels": {"kubernetes.io/service-name": "m"}},
            "addressType": "IPv4",
            "ports": [{"name": "t", "port": 53, "protocol": "TCP"}, {"name": "u", "port": 5353, "protocol": "UDP"}],
            "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true}}]});
        let s = super::super::state("n1", &[], &[svc], &[sl]);
        assert_eq!(
            s.udp,
            vec![udp(
                "default/m/udp/u",
                &["10.43.0.30"],
                53,
                None,
                &[("10.42.0.5", 5353)]
            )]
        );
    }
}
