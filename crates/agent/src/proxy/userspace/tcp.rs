//! A TCP listener of the userspace proxy: each accepted connection dials the balancer's
//! candidates in turn (each within [`super::CONNECT_TIMEOUT`]; refused, unreachable or slow →
//! the next), then copies both ways until both sides closed. When no endpoint answers, the
//! client connection is reset (linger 0), as a refused connection would be.

use super::Shared;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Copy buffers per direction (tokio's default of 8 KiB costs a syscall per 8 KiB).
const BUFFER: usize = 64 * 1024;

pub async fn serve(listener: TcpListener, balancer: Shared) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(handle(client, peer, balancer.clone()));
            }
            Err(e) => {
                // Out of file descriptors, say: wait, do not spin.
                tracing::warn!(error = %e, "proxy: accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn client_ip(peer: SocketAddr) -> Ipv4Addr {
    match peer.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

async fn handle(mut client: TcpStream, peer: SocketAddr, balancer: Shared) {
    let who = client_ip(peer);
    let candidates = balancer
        .lock()
        .expect("balancer")
        .candidates(who, Instant::now());
    for ep in candidates {
        match tokio::time::timeout(super::CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(mut upstream)) => {
                balancer
                    .lock()
                    .expect("balancer")
                    .record(who, ep, Instant::now());
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut upstream,
                    BUFFER,
                    BUFFER,
                )
                .await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(endpoint = %ep, error = %e, "proxy: endpoint failed"),
            Err(_) => tracing::debug!(endpoint = %ep, "proxy: endpoint timed out"),
        }
    }
    tracing::debug!(client = %peer, "proxy: no endpoint answered; resetting");
    let _ = client.set_zero_linger();
}
