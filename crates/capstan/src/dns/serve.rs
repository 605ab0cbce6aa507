//! The UDP and TCP servers: a query the index answers is replied to in the receiving task
//! (no allocation beyond the reply, no API call); forwarded and chased queries run in their
//! own tasks so a slow upstream holds up nothing else.

use super::Dns;
use capstan_dns::{encode, finish, plan, Answer, Plan, Transport};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a TCP connection may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);

pub async fn run(dns: Arc<Dns>, udp: UdpSocket, tcp: TcpListener) {
    // UDP on a thread of its own with a blocking socket, as a plain resolver serves: a query
    // the index answers never waits for the async runtime the API server also runs on (its
    // wake-ups were most of the p99); forwarded queries go to the runtime.
    match udp
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|_| s))
    {
        Ok(sock) => {
            let (dns, rt) = (dns.clone(), tokio::runtime::Handle::current());
            let spawned = std::thread::Builder::new()
                .name("cluster-dns-udp".into())
                .spawn(move || udp_thread(dns, Arc::new(sock), rt));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cluster DNS: cannot start the UDP thread");
            }
        }
        Err(e) => tracing::error!(error = %e, "cluster DNS: UDP socket"),
    }
    tcp_loop(dns, tcp).await;
}

fn plan_now(dns: &Dns, bytes: &[u8], t: Transport) -> Plan {
    let ix = dns.index.read().unwrap();
    plan(bytes, t, &ix, &dns.cfg)
}

/// SERVFAIL for a query the upstreams did not answer.
fn servfail(bytes: &[u8], t: Transport) -> Option<Vec<u8>> {
    let request = Message::from_vec(bytes).ok()?;
    let answer = Answer {
        rcode: ResponseCode::ServFail,
        ..Answer::default()
    };
    encode(&request, answer, t)
}

/// What the upstreams answer to a chased name (their answer section; none on failure).
async fn chase(dns: &Dns, query: hickory_proto::op::Query) -> Vec<hickory_proto::rr::Record> {
    let mut m = Message::new();
    m.set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true);
    m.add_query(query);
    let Ok(bytes) = m.to_vec() else {
        return Vec::new();
    };
    let mut reply = dns.upstreams.exchange(&bytes, false).await;
    if let Some(r) = reply.as_ref().and_then(|r| Message::from_vec(r).ok()) {
        if r.truncated() {
            reply = dns.upstreams.exchange(&bytes, true).await;
        }
    }
    reply
        .and_then(|r| Message::from_vec(&r).ok())
        .map(|mut r| r.take_answers())
        .unwrap_or_default()
}

/// The reply to a query the index did not answer alone.
async fn slow_path(dns: &Dns, bytes: &[u8], p: Plan, t: Transport) -> Option<Vec<u8>> {
    match p {
        Plan::Reply(b) => Some(b),
        Plan::Drop => None,
        Plan::Forward => match dns.upstreams.exchange(bytes, t == Transport::Tcp).await {
            Some(r) => Some(r),
            None => servfail(bytes, t),
        },
        Plan::Chase {
            request,
            answer,
            query,
        } => {
            let records = chase(dns, *query).await;
            match finish(&request, *answer, records, t) {
                Plan::Reply(b) => Some(b),
                _ => None,
            }
        }
    }
}

fn udp_thread(dns: Arc<Dns>, sock: Arc<std::net::UdpSocket>, rt: tokio::runtime::Handle) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems.
                tracing::debug!(error = %e, "cluster DNS: udp receive");
                continue;
            }
        };
        match plan_now(&dns, &buf[..n], Transport::Udp) {
            Plan::Reply(b) => {
                let _ = sock.send_to(&b, peer);
            }
            Plan::Drop => {}
            slow => {
                let (dns, sock, bytes) = (dns.clone(), sock.clone(), buf[..n].to_vec());
                rt.spawn(async move {
                    if let Some(b) = slow_path(&dns, &bytes, slow, Transport::Udp).await {
                        // A UDP send does not block for long (the socket buffer takes it).
                        let _ = sock.send_to(&b, peer);
                    }
                });
            }
        }
    }
}

async fn tcp_loop(dns: Arc<Dns>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                tokio::spawn(tcp_conn(dns.clone(), s, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster DNS: tcp accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Queries on one connection, answered in order (RFC 7766 allows either order).
async fn tcp_conn(dns: Arc<Dns>, mut s: TcpStream, _peer: SocketAddr) {
    let _ = s.set_nodelay(true);
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, s.read_u16()).await else {
            return;
        };
        let mut bytes = vec![0u8; len as usize];
        if s.read_exact(&mut bytes).await.is_err() {
            return;
        }
        let p = plan_now(&dns, &bytes, Transport::Tcp);
        let Some(reply) = slow_path(&dns, &bytes, p, Transport::Tcp).await else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}
