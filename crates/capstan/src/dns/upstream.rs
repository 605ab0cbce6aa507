//! The resolvers names outside the cluster domain go to: the host's `nameserver`s, loopback
//! stubs (systemd-resolved's 127.0.0.53) replaced by the servers behind them
//! (/run/systemd/resolve/resolv.conf); a query is relayed as received, over the transport
//! it came on, to one server after the other (2 s each, 5 s in all).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PER_SERVER: Duration = Duration::from_secs(2);
const IN_ALL: Duration = Duration::from_secs(5);

pub struct Upstreams {
    servers: Vec<SocketAddr>,
}

/// The `nameserver` addresses of a resolv.conf.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()?.parse().ok())?
        })
        .collect()
}

/// The servers to use given the host's resolv.conf and systemd-resolved's: non-loopback
/// ones from the first, else from the second, else the loopback ones (they work from the
/// host, where this server runs); never `me`.
pub fn choose(etc: &str, systemd: Option<&str>, me: SocketAddr) -> Vec<SocketAddr> {
    let to_addrs = |ips: Vec<IpAddr>| -> Vec<SocketAddr> {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .filter(|a| *a != me)
            .collect()
    };
    let etc_all = nameservers(etc);
    let remote: Vec<IpAddr> = etc_all
        .iter()
        .copied()
        .filter(|ip| !ip.is_loopback())
        .collect();
    if !remote.is_empty() {
        return to_addrs(remote);
    }
    if let Some(s) = systemd {
        let remote: Vec<IpAddr> = nameservers(s)
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
        if !remote.is_empty() {
            return to_addrs(remote);
        }
    }
    to_addrs(etc_all)
}

impl Upstreams {
    pub fn new(servers: Vec<SocketAddr>) -> Upstreams {
        Upstreams { servers }
    }

    pub fn from_host(me: SocketAddr) -> Upstreams {
        let etc = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let systemd = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
        let servers = choose(&etc, systemd.as_deref(), me);
        if servers.is_empty() {
            tracing::warn!("no upstream resolvers: names outside the cluster get SERVFAIL");
        }
        Upstreams { servers }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The first reply (with the query's ID) any server gives to `query`.
    pub async fn exchange(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        if query.len() < 2 {
            return None;
        }
        let start = Instant::now();
        for server in &self.servers {
            let left = IN_ALL.saturating_sub(start.elapsed()).min(PER_SERVER);
            if left.is_zero() {
                break;
            }
            let once = async {
                if tcp {
                    exchange_tcp(*server, query).await
                } else {
                    exchange_udp(*server, query).await
                }
            };
            if let Ok(Some(reply)) = tokio::time::timeout(left, once).await {
                return Some(reply);
            }
        }
        None
    }
}

async fn exchange_udp(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = tokio::net::UdpSocket::bind(local).await.ok()?;
    sock.connect(server).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await.ok()?;
        // A stray datagram with another ID is not the reply.
        if n >= 12 && buf[..2] == query[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(server).await.ok()?;
    let len = u16::try_from(query.len()).ok()?;
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(query);
    s.write_all(&out).await.ok()?;
    let n = s.read_u16().await.ok()? as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.ok()?;
    (n >= 12 && buf[..2] == query[..2]).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_stubs_are_replaced_by_the_servers_behind_them() {
        let me: SocketAddr = "10.43.0.10:53".parse().unwrap();
        let stub = "# systemd\nnameserver 127.0.0.53\noptions edns0\n";
        let real = "nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch x\n";
        let s = |v: Vec<SocketAddr>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s(choose(stub, Some(real), me)),
            ["192.0.2.1:53", "[2001:db8::1]:53"]
        );
        assert_eq!(
            s(choose(real, Some(stub), me)),
            ["192.0.2.1:53", "[2001:db8::1]:53"]
        );
        assert_eq!(s(choose(stub, None, me)), ["127.0.0.53:53"]);
        assert_eq!(
            s(choose("nameserver 10.43.0.10\n", None, me)),
            Vec::<String>::new()
        );
        assert_eq!(
            s(choose("nameserver bogus\n", None, me)),
            Vec::<String>::new()
        );
    }
}
