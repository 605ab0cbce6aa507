//! WATCH: a chunked stream of `{"type": ..., "object": ...}` lines fed from the watch cache,
//! with selector transitions, bookmarks, Table objects and timeouts as kube-apiserver sends them.

use super::Req;
use crate::filter::Filter;
use crate::server::Body;
use crate::status::{ApiError, ApiResult};
use crate::watchcache::{CacheEvent, Change};
use crate::{convert, ApiServer};
use bytes::Bytes;
use capstan_api::resources::Resource;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

struct Encoder {
    res: &'static Resource,
    table: bool,
    include_object: String,
    first: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: Value) -> Bytes {
        let object = if self.table && kind != "BOOKMARK" && kind != "ERROR" {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            let mut t = capstan_printers::tables::table(
                self.res.kind,
                &[&obj],
                &self.include_object,
                json!({"resourceVersion": rv}),
                chrono::Utc::now(),
            );
            if !self.first {
                // kube-apiserver sends column definitions with the first event only.
                t["columnDefinitions"] = json!([]);
            }
            self.first = false;
            t
        } else {
            obj
        };
        let mut out =
            serde_json::to_vec(&json!({"type": kind, "object": object})).expect("serializes");
        out.push(b'\n');
        Bytes::from(out)
    }
}

fn error_event(e: &ApiError) -> Bytes {
    let mut out =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).expect("serializes");
    out.push(b'\n');
    Bytes::from(out)
}

pub async fn watch(api: &Arc<ApiServer>, req: &Req) -> ApiResult<Response<Body>> {
    let res = req.rr.resource;
    let storage = res.storage_resource();
    let mut filter = Filter::from_req(req)?;
    // A watch on one named object (GET .../pods/x?watch=true) is a watch with a name field selector.
    let prefix = match &req.rr.name {
        Some(name) => {
            filter = Filter::parse(
                storage.kind,
                req.param("labelSelector"),
                Some(&format!("metadata.name={name}")),
            )?;
            storage.key(req.namespace(), name)
        }
        None => storage.prefix(req.namespace()),
    };
    let rv = req.param("resourceVersion").unwrap_or("");
    let send_initial = req.param("sendInitialEvents").map(crate::request::is_true);
    let after = match (rv, send_initial) {
        (_, Some(true)) => None,
        ("", _) | ("0", _) => None,
        (n, _) => Some(
            n.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {n:?}")))?,
        ),
    };
    if let Some(a) = after {
        if a > api.cache.revision() && !api.cache.wait_for(a, Duration::from_secs(3)).await {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {a}, current: {}",
                api.cache.revision()
            )));
        }
    }
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_secs(1800 + rand::random::<u64>() % 1800));
    let bookmarks = req.flag("allowWatchBookmarks");
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(256);
    let mut enc = Encoder {
        res,
        table: req.wants_table(),
        include_object: req.param("includeObject").unwrap_or("Metadata").to_string(),
        first: true,
    };
    match api.cache.subscribe(&prefix, after) {
        Err(oldest) => {
            let e = ApiError::gone(format!(
                "too old resource version: {} ({oldest})",
                after.unwrap_or(0)
            ));
            let _ = tx.try_send(Ok(Frame::data(error_event(&e))));
        }
        Ok((initial, live, snapshot_rev)) => {
            let initial_only_state = after.is_none();
            tokio::spawn(async move {
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut last = snapshot_rev.min(after.unwrap_or(i64::MAX));
                if initial_only_state {
                    last = snapshot_rev;
                }
                for ev in initial {
                    if let Some(line) = encode_event(&mut enc, &filter, &ev, storage) {
                        if tx.send(Ok(Frame::data(line))).await.is_err() {
                            return;
                        }
                    }
                    last = last.max(ev.revision);
                }
                last = last.max(snapshot_rev);
                if send_initial == Some(true) && bookmarks {
                    let bm = json!({"kind": res.kind, "apiVersion": res.api_version(),
                        "metadata": {"resourceVersion": last.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                    if tx
                        .send(Ok(Frame::data(enc.line("BOOKMARK", bm))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                stream_live(
                    live,
                    tx,
                    enc,
                    filter,
                    storage,
                    &prefix,
                    last,
                    bookmarks,
                    &mut deadline,
                )
                .await;
            });
        }
    }
    let body = StreamBody::new(ReceiverStream::new(rx)).boxed();
    let content_type = "application/json";
    Ok(Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header("cache-control", "no-cache, private")
        .body(body)
        .expect("static headers"))
}

#[allow(clippy::too_many_arguments)]
async fn stream_live(
    mut live: broadcast::Receiver<Arc<CacheEvent>>,
    tx: mpsc::Sender<Result<Frame<Bytes>, Infallible>>,
    mut enc: Encoder,
    filter: Filter,
    storage: &'static Resource,
    prefix: &str,
    mut last: i64,
    bookmarks: bool,
    deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = deadline.as_mut() => return,
            _ = tx.closed() => return,
            _ = ticker.tick(), if bookmarks => {
                let bm = json!({"kind": enc.res.kind, "apiVersion": enc.res.api_version(), "metadata": {"resourceVersion": last.to_string()}});
                if tx.send(Ok(Frame::data(enc.line("BOOKMARK", bm)))).await.is_err() { return; }
            }
            ev = live.recv() => match ev {
                Ok(ev) => {
                    // Send what is already queued in one frame: under load this turns many
                    // small writes (and TLS records) into one.
                    let mut lines: Vec<Bytes> = Vec::new();
                    let mut next = Some(ev);
                    while let Some(ev) = next.take() {
                        if ev.revision > last && ev.key.starts_with(prefix) {
                            last = ev.revision;
                            if let Some(line) = encode_event(&mut enc, &filter, &ev, storage) {
                                lines.push(line);
                            }
                        }
                        if lines.len() < 64 {
                            match live.try_recv() {
                                Ok(more) => next = Some(more),
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    let e = ApiError::gone(format!("too old resource version: {last}"));
                                    lines.push(error_event(&e));
                                    let _ = tx.send(Ok(Frame::data(concat(lines)))).await;
                                    return;
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    if !lines.is_empty() && tx.send(Ok(Frame::data(concat(lines)))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let e = ApiError::gone(format!("too old resource version: {last}"));
                    let _ = tx.send(Ok(Frame::data(error_event(&e)))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn concat(mut lines: Vec<Bytes>) -> Bytes {
    if lines.len() == 1 {
        return lines.pop().expect("one line");
    }
    let mut out = Vec::with_capacity(lines.iter().map(Bytes::len).sum());
    for l in &lines {
        out.extend_from_slice(l);
    }
    Bytes::from(out)
}

/// The line for one event, applying selector transitions: an object that stops matching is
/// sent as DELETED, one that starts matching as ADDED.
fn encode_event(
    enc: &mut Encoder,
    filter: &Filter,
    ev: &CacheEvent,
    _storage: &'static Resource,
) -> Option<Bytes> {
    let now = filter.matches(&ev.object.selectable);
    let before = ev
        .prev
        .as_ref()
        .map(|p| filter.matches(&p.selectable))
        .unwrap_or(false);
    let kind = match ev.change {
        Change::Added if now => "ADDED",
        Change::Modified if now && before => "MODIFIED",
        Change::Modified if now => "ADDED",
        Change::Modified if before => "DELETED",
        Change::Deleted if before || now => "DELETED",
        _ => return None,
    };
    // Plain JSON watches of the storage version share one encoded line per event.
    if !enc.table && enc.res.storage_version {
        enc.first = false;
        return Some(ev.json_line(kind));
    }
    let obj = convert::from_storage(enc.res, ev.object.value());
    Some(enc.line(kind, obj))
}
