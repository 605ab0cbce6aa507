//! Watch delivery latency: N concurrent `?watch=true` streams on the pods of one namespace,
//! multiplexed over HTTP/2 connections ([`WATCHES_PER_CONN`] streams each, as client-go's
//! shared transport does); then pods are created a few ms apart and, at every watcher, the
//! time from sending the create to reading its ADDED event is one sample.

use crate::client::{pod, Tls};
use crate::figures::{WatchLevel, WATCHES_PER_CONN, WATCH_WRITE_GAP_MS};
use crate::measure::CpuMeter;
use crate::procs::Server;
use crate::stats::Summary;
use anyhow::{Context, Result};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};

/// Run one watch measurement with `watchers` streams and `events` creates.
pub async fn measure(
    server: &Server,
    tls: &Tls,
    watchers: usize,
    events: usize,
) -> Result<WatchLevel> {
    let mut admin = tls.connect().await?;
    // Start every watch at the namespace's current revision, so only our creates arrive.
    let list = admin
        .call("GET", "/api/v1/namespaces/watch/pods?limit=1", None)
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("LIST without metadata.resourceVersion")?
        .to_string();
    let tag = format!("w{watchers}-");
    let path =
        format!("/api/v1/namespaces/watch/pods?watch=true&resourceVersion={rv}&timeoutSeconds=300");
    let connections = watchers.div_ceil(WATCHES_PER_CONN);
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(tls.connect_h2().await?);
    }
    let mut tasks = Vec::with_capacity(watchers);
    for w in 0..watchers {
        let mut conn = conns[w / WATCHES_PER_CONN].clone();
        let resp = conn.get(&path).await?;
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            // (index of the pod, when its ADDED event was read)
            let mut got: Vec<(usize, Instant)> = Vec::with_capacity(events);
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while got.len() < events {
                let Some(frame) = body.frame().await else {
                    anyhow::bail!("watch ended after {} of {events} events", got.len());
                };
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                let mut start = 0;
                while let Some(len) = buf[start..].iter().position(|b| *b == b'\n') {
                    if let Some(i) = added_index(&buf[start..start + len], &tag) {
                        got.push((i, now));
                    }
                    start += len + 1;
                }
                buf.drain(..start);
            }
            anyhow::Ok(got)
        }));
    }
    // Every stream is open (its response head arrived); give the server a moment more to
    // register every watcher before the first write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meter = CpuMeter::start(server);
    let mut sent = Vec::with_capacity(events);
    for i in 0..events {
        let body = pod(&format!("{tag}{i}"));
        sent.push(Instant::now());
        admin
            .call("POST", "/api/v1/namespaces/watch/pods", Some(body))
            .await?;
        tokio::time::sleep(Duration::from_millis(WATCH_WRITE_GAP_MS)).await;
    }
    let results = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(tasks))
        .await
        .context("watchers did not receive every event within 120 s")?;
    let (server_cores, client_cores) = meter.cores(server);
    let mut samples = Vec::with_capacity(watchers * events);
    for r in results {
        for (i, at) in r?? {
            let t0 = *sent.get(i).context("an event for a pod not created")?;
            samples.push(at.saturating_duration_since(t0));
        }
    }
    anyhow::ensure!(
        samples.len() == watchers * events,
        "watchers saw {} of {} events",
        samples.len(),
        watchers * events
    );
    Ok(WatchLevel {
        watchers,
        connections,
        latency: Summary::of(samples),
        server_cores,
        client_cores,
    })
}

/// For an ADDED event line of a pod named `<tag><index>`, the index. A cheap scan rather than
/// a full parse, so that the client's CPU does not dominate on a small machine.
fn added_index(line: &[u8], tag: &str) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let head = &text[..text.len().min(32)];
    if !head.contains(r#""type":"ADDED""#) {
        return None;
    }
    let needle = format!(r#""name":"{tag}"#);
    let at = text.find(&needle)? + needle.len();
    let end = text[at..].find('"')?;
    text[at..at + end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_events() {
        let cases = [
            (
                r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"w1-17","namespace":"watch"}}}"#,
                "w1-",
                Some(17),
            ),
            (
                r#"{"type":"ADDED","object":{"metadata":{"name":"w1000-0"}}}"#,
                "w1000-",
                Some(0),
            ),
            // Another run's pods, other event types, other names.
            (
                r#"{"type":"ADDED","object":{"metadata":{"name":"w1000-3"}}}"#,
                "w1-",
                None,
            ),
            (
                r#"{"type":"MODIFIED","object":{"metadata":{"name":"w1-3"}}}"#,
                "w1-",
                None,
            ),
            (
                r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#,
                "w1-",
                None,
            ),
            (
                r#"{"type":"ADDED","object":{"metadata":{"name":"w1-x"}}}"#,
                "w1-",
                None,
            ),
            ("", "w1-", None),
        ];
        for (line, tag, want) in cases {
            assert_eq!(added_index(line.as_bytes(), tag), want, "{line}");
        }
    }
}
