//! A UDP listener of the userspace proxy: the first datagram of a client (address and port)
//! opens a session — a socket connected to the endpoint the balancer names first — and
//! every later one goes through it; the endpoint's replies are sent back from the listener
//! socket (bound on the node's address, so conntrack maps them back to the VIP). A session
//! without a datagram either way for [`super::UDP_IDLE_TIMEOUT`] is dropped; all of them go
//! with the listener.

use super::Shared;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::UdpSocket;

struct Session {
    upstream: Arc<UdpSocket>,
    /// Milliseconds since `epoch` of the last datagram either way.
    last: Arc<AtomicU64>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

pub async fn serve(socket: UdpSocket, balancer: Shared) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Default::default();
    // Session tasks are aborted with this set when the listener goes.
    let mut tasks = tokio::task::JoinSet::new();
    let epoch = Instant::now();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // An ICMP error for an earlier reply, say: keep serving.
                tracing::debug!(error = %e, "proxy: udp recv");
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        let now_ms = epoch.elapsed().as_millis() as u64;
        let existing = sessions
            .lock()
            .expect("udp sessions")
            .get(&client)
            .map(|s| (s.upstream.clone(), s.last.clone()));
        let (upstream, last) = match existing {
            Some(s) => s,
            None => {
                let who = match client.ip() {
                    IpAddr::V4(ip) => ip,
                    IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                };
                let Some(ep) = balancer
                    .lock()
                    .expect("balancer")
                    .candidates(who, Instant::now())
                    .first()
                    .copied()
                else {
                    continue; // no endpoint: the datagram is dropped
                };
                let up = match UdpSocket::bind("0.0.0.0:0").await {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy: udp session socket");
                        continue;
                    }
                };
                if let Err(e) = up.connect(ep).await {
                    tracing::debug!(endpoint = %ep, error = %e, "proxy: udp connect");
                    continue;
                }
                balancer
                    .lock()
                    .expect("balancer")
                    .record(who, ep, Instant::now());
                let up = Arc::new(up);
                let last = Arc::new(AtomicU64::new(now_ms));
                sessions.lock().expect("udp sessions").insert(
                    client,
                    Session {
                        upstream: up.clone(),
                        last: last.clone(),
                    },
                );
                tasks.spawn(replies(
                    up.clone(),
                    socket.clone(),
                    client,
                    last.clone(),
                    epoch,
                    sessions.clone(),
                ));
                (up, last)
            }
        };
        last.store(now_ms, Ordering::Relaxed);
        if let Err(e) = upstream.send(&buf[..n]).await {
            tracing::debug!(error = %e, "proxy: udp send to endpoint");
        }
    }
}

/// Relay the endpoint's datagrams to `client` until the session is idle.
async fn replies(
    upstream: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<AtomicU64>,
    epoch: Instant,
    sessions: Sessions,
) {
    let idle = super::UDP_IDLE_TIMEOUT;
    let mut buf = vec![0u8; 65536];
    loop {
        let since =
            (epoch.elapsed().as_millis() as u64).saturating_sub(last.load(Ordering::Relaxed));
        let left = idle.saturating_sub(std::time::Duration::from_millis(since));
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                let _ = listener.send_to(&buf[..n], client).await;
            }
            // Refused (ICMP from the endpoint): keep the session until it idles out.
            Ok(Err(_)) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            Err(_) => {}
        }
    }
    sessions.lock().expect("udp sessions").remove(&client);
}
