//! Which endpoints a new connection tries, in order (pure; `now` is a parameter): round-robin
//! over the ready endpoints — each connection starts one further — and, with ClientIP
//! affinity, the endpoint a client last reached first while its entry is fresher than the
//! timeout. The caller dials the candidates in turn and [`Balancer::record`]s the one that
//! answered.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Balancer {
    endpoints: Vec<SocketAddrV4>,
    next: usize,
    affinity: Option<Duration>,
    /// client → (endpoint, last connection).
    sticky: HashMap<Ipv4Addr, (SocketAddrV4, Instant)>,
}

impl Balancer {
    /// Replace the endpoints and the affinity timeout (affinity entries for endpoints that
    /// are gone are dropped; with affinity off, all are).
    pub fn update(&mut self, endpoints: Vec<SocketAddrV4>, affinity: Option<Duration>) {
        self.sticky
            .retain(|_, (e, _)| affinity.is_some() && endpoints.contains(e));
        self.endpoints = endpoints;
        self.affinity = affinity;
    }

    /// The endpoints a connection from `client` tries, in order; each is listed once.
    pub fn candidates(&mut self, client: Ipv4Addr, now: Instant) -> Vec<SocketAddrV4> {
        let n = self.endpoints.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next % n;
        self.next = (start + 1) % n;
        let mut out: Vec<SocketAddrV4> = (0..n).map(|i| self.endpoints[(start + i) % n]).collect();
        if let (Some(timeout), Some((e, at))) = (self.affinity, self.sticky.get(&client)) {
            if now.saturating_duration_since(*at) < timeout {
                if let Some(i) = out.iter().position(|x| x == e) {
                    let e = out.remove(i);
                    out.insert(0, e);
                }
            }
        }
        out
    }

    /// `client` reached `endpoint` at `now` (remembered only with affinity). Entries older
    /// than the timeout are dropped here, so the map stays bounded by recent clients.
    pub fn record(&mut self, client: Ipv4Addr, endpoint: SocketAddrV4, now: Instant) {
        let Some(timeout) = self.affinity else {
            return;
        };
        if self.sticky.len() > 1024 {
            self.sticky
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
        }
        self.sticky.insert(client, (endpoint, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn round_robin_then_the_rest_in_order() {
        let (a, b, c) = (sa("10.0.0.1:80"), sa("10.0.0.2:80"), sa("10.0.0.3:80"));
        let mut bal = Balancer::default();
        let now = Instant::now();
        assert_eq!(bal.candidates(ip("1.1.1.1"), now), vec![]);
        bal.update(vec![a, b, c], None);
        let cases = [vec![a, b, c], vec![b, c, a], vec![c, a, b], vec![a, b, c]];
        for want in cases {
            assert_eq!(bal.candidates(ip("1.1.1.1"), now), want);
        }
        // Without affinity, recording does nothing.
        bal.record(ip("1.1.1.1"), c, now);
        assert_eq!(bal.candidates(ip("1.1.1.1"), now), vec![b, c, a]);
        // Fewer endpoints: the position wraps.
        bal.update(vec![a], None);
        assert_eq!(bal.candidates(ip("1.1.1.1"), now), vec![a]);
        assert_eq!(bal.candidates(ip("1.1.1.1"), now), vec![a]);
    }

    #[test]
    fn client_ip_affinity_until_the_timeout() {
        let (a, b, c) = (sa("10.0.0.1:80"), sa("10.0.0.2:80"), sa("10.0.0.3:80"));
        let t0 = Instant::now();
        let secs = |s: u64| t0 + Duration::from_secs(s);
        let mut bal = Balancer::default();
        bal.update(vec![a, b, c], Some(Duration::from_secs(10)));
        let (x, y) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(bal.candidates(x, t0), vec![a, b, c]);
        bal.record(x, b, t0); // a refused, b answered
                              // (client, at, want)
        let cases = [
            (x, secs(1), vec![b, c, a]),
            (y, secs(1), vec![c, a, b]),
            (x, secs(9), vec![b, a, c]),
            (x, secs(10), vec![b, c, a]),
        ];
        for (client, at, want) in cases {
            assert_eq!(bal.candidates(client, at), want, "{client} at {at:?}");
        }
        // A refreshed entry; then its endpoint goes away.
        bal.record(x, c, secs(10));
        assert_eq!(bal.candidates(y, secs(10)), vec![c, a, b]);
        assert_eq!(bal.candidates(x, secs(11)), vec![c, a, b]);
        bal.update(vec![a, b], Some(Duration::from_secs(10)));
        assert_eq!(bal.sticky.len(), 0);
        bal.record(x, b, secs(12));
        bal.update(vec![a, b], None);
        assert_eq!(bal.sticky.len(), 0, "affinity off forgets clients");
    }
}
