//! The etcd v3 backend: every [`Store`] operation is one etcd request, shaped like
//! kine's and the Kubernetes apiserver's (create = `Txn(mod_revision(key) == 0 → put,
//! else get)`, update/delete = `Txn(mod_revision(key) == expected → op, else get)`).
//! Watches live in [`watch`].

mod watch;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType as EtcdEventType,
    GetOptions, KvClient, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
};
use std::time::Duration;

use crate::{Error, Event, EventType, KeyValue, ListResult, Result, Store, WatchStream};

/// Largest gRPC message accepted from etcd (large ranges exceed tonic's 4 MiB default).
const MAX_DECODE: usize = 512 << 20;

/// A [`Store`] backed by an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    watch: WatchClient,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EtcdStore")
    }
}

/// Whether a gRPC status means the cluster could not be reached or the connection broke.
fn is_unavailable(status: &tonic::Status) -> bool {
    let broken_connection = status.code() == tonic::Code::Unknown
        && (status.message().contains("h2 protocol error")
            || status.message().contains("transport error"));
    broken_connection
        || matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        )
}

/// Maps an etcd client error onto the store's errors.
pub(crate) fn map_err(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => {
            let msg = status.message();
            if msg.contains("required revision has been compacted") {
                // The compaction point is not in the status; callers that need it
                // refine it with `compact_revision_hint`.
                Error::Compacted {
                    compact_revision: 0,
                }
            } else if msg.contains("future revision") {
                Error::FutureRevision
            } else if is_unavailable(&status) {
                Error::Unavailable(format!("etcd: {msg}"))
            } else {
                Error::Other(format!("etcd: {:?}: {msg}", status.code()))
            }
        }
        E::TransportError(e) => Error::Unavailable(format!("etcd transport: {e}")),
        E::IoError(e) => Error::Unavailable(format!("etcd i/o: {e}")),
        E::EndpointError(e) => Error::Unavailable(format!("etcd endpoint: {e}")),
        other => Error::Other(format!("etcd: {other}")),
    }
}

/// Attempts made when the chosen endpoint refuses the connection.
const CONNECT_ATTEMPTS: u32 = 10;

/// Whether the request provably never reached a server (safe to retry, even a write).
fn is_connect_error(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            status.code() == tonic::Code::Unavailable && status.message().contains("connect")
        }
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// Runs `op` on a clone of `client`, retrying while the balancer picked an endpoint
/// that refused the connection (with several endpoints, a dead one is chosen at random).
pub(crate) async fn retry<C, T, F, Fut>(client: &C, mut op: F) -> Result<T>
where
    C: Clone,
    F: FnMut(C) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let mut attempt = 1;
    loop {
        match op(client.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < CONNECT_ATTEMPTS && is_connect_error(&e) => {
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(map_err(e)),
        }
    }
}

/// The first key after every key with `prefix` (etcd's `range_end`); `[0]` (etcd's
/// "all keys from start") when no such key exists.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn to_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: kv
            .key_str()
            .map_err(|e| Error::Other(format!("non-UTF-8 key in etcd: {e}")))?
            .to_string(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(resp: &TxnResponse) -> Result<i64> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Other("etcd response without header".into()))
}

/// The key state returned by the `else get` branch of a failed transaction.
fn failed_get(resp: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(to_kv).transpose();
        }
    }
    Ok(None)
}

pub(crate) fn map_event(e: &etcd_client::Event) -> Result<Event> {
    let kv = e
        .kv()
        .ok_or_else(|| Error::Other("etcd watch event without kv".into()))?;
    let prev = e.prev_kv().map(to_kv).transpose()?;
    let mut kv = to_kv(kv)?;
    let kind = match e.event_type() {
        EtcdEventType::Put => EventType::Put,
        EtcdEventType::Delete => {
            if let Some(prev) = &prev {
                kv.value = prev.value.clone();
                kv.create_revision = prev.create_revision;
            }
            EventType::Delete
        }
    };
    Ok(Event { kind, kv, prev })
}

impl EtcdStore {
    /// Connects to `endpoints` (`http://host:port`). The connection is lazy: an
    /// unreachable cluster shows up as [`Error::Unavailable`] on the first request.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(map_err)?;
        let kv = client.kv_client().max_decoding_message_size(MAX_DECODE);
        let watch = client.watch_client().max_decoding_message_size(MAX_DECODE);
        Ok(EtcdStore { client, kv, watch })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        retry(&self.kv, |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
    }

    /// The cluster's compaction point, learnt by opening a watch at revision 1 (only
    /// called after etcd reported a compacted read, so the cancel comes promptly).
    async fn compact_revision_hint(&self) -> i64 {
        let probe = async {
            let mut stream = self
                .watch
                .clone()
                .watch(
                    "\u{0}capstan-compact-probe",
                    Some(WatchOptions::new().with_start_revision(1)),
                )
                .await
                .ok()?;
            while let Ok(Some(resp)) = stream.message().await {
                // etcd answers "created" first, then cancels with the compaction point.
                if resp.compact_revision() > 0 || resp.canceled() {
                    return Some(resp.compact_revision());
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    async fn refine(&self, e: Error) -> Error {
        match e {
            Error::Compacted { .. } => Error::Compacted {
                compact_revision: self.compact_revision_hint().await,
            },
            other => other,
        }
    }

    /// The key's state, or NotFound (for CAS guards with a non-positive expectation).
    async fn current_or_not_found(&self, key: &str) -> Result<KeyValue> {
        self.get(key).await?.ok_or(Error::NotFound)
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = retry(&self.kv, |mut kv| async move { kv.get(key, None).await }).await?;
        resp.kvs().first().map(to_kv).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Option<i64>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        let start = match start_after {
            Some(after) if after >= prefix => format!("{after}\u{0}"),
            _ => prefix.to_string(),
        };
        let start_key = if start.is_empty() {
            vec![0]
        } else {
            start.into_bytes()
        };
        let mut options = GetOptions::new().with_range(prefix_end(prefix.as_bytes()));
        let at = revision.filter(|r| *r > 0);
        if let Some(r) = at {
            options = options.with_revision(r);
        }
        if limit > 0 {
            options = options.with_limit(limit as i64);
        }
        let resp = match retry(&self.kv, |mut kv| {
            let (start_key, options) = (start_key.clone(), options.clone());
            async move { kv.get(start_key, Some(options)).await }
        })
        .await
        {
            Ok(resp) => resp,
            Err(e) => return Err(self.refine(e).await),
        };
        let read_at = match at {
            Some(r) => r,
            None => resp.header().map_or(0, |h| h.revision()),
        };
        let kvs = resp.kvs().iter().map(to_kv).collect::<Result<Vec<_>>>()?;
        Ok(ListResult {
            kvs,
            revision: read_at,
            more: resp.more(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let key = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let options = GetOptions::new()
            .with_range(prefix_end(prefix.as_bytes()))
            .with_count_only();
        let resp = retry(&self.kv, |mut kv| {
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })
        .await?;
        Ok(resp.count())
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            header_revision(&resp)
        } else {
            Err(Error::KeyExists)
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected_mod_revision: i64) -> Result<i64> {
        if expected_mod_revision <= 0 {
            let current = self.current_or_not_found(key).await?;
            return Err(Error::Conflict {
                current: Some(current),
            });
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected_mod_revision,
            )])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            return header_revision(&resp);
        }
        match failed_get(&resp)? {
            None => Err(Error::NotFound),
            current => Err(Error::Conflict { current }),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(i64, KeyValue)> {
        let compare = match expected_mod_revision {
            Some(expected) if expected <= 0 => {
                let current = self.current_or_not_found(key).await?;
                return Err(Error::Conflict {
                    current: Some(current),
                });
            }
            Some(expected) => Compare::mod_revision(key, CompareOp::Equal, expected),
            None => Compare::mod_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return match failed_get(&resp)? {
                None => Err(Error::NotFound),
                current => Err(Error::Conflict { current }),
            };
        }
        let revision = header_revision(&resp)?;
        for op in resp.op_responses() {
            if let TxnOpResponse::Delete(del) = op {
                if let Some(prev) = del.prev_kvs().first() {
                    return Ok((revision, to_kv(prev)?));
                }
            }
        }
        // Deleted concurrently between compare and delete cannot happen inside a txn.
        Err(Error::NotFound)
    }

    async fn current_revision(&self) -> Result<i64> {
        let resp = retry(&self.kv, |mut kv| async move {
            kv.get("\u{0}", Some(GetOptions::new().with_count_only()))
                .await
        })
        .await?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Other("etcd response without header".into()))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        watch::watch(self.watch.clone(), prefix, from_revision).await
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        match retry(&self.kv, |mut kv| async move {
            kv.compact(revision, None).await
        })
        .await
        {
            Ok(_) | Err(Error::Compacted { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn health(&self) -> Result<()> {
        let status = retry(
            &self.client,
            |mut client| async move { client.status().await },
        )
        .await?;
        if !status.errors().is_empty() {
            return Err(Error::Unavailable(format!(
                "etcd reports errors: {:?}",
                status.errors()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"/registry/pods/", b"/registry/pods0"),
            (b"a", b"b"),
            (b"a\xff", b"b"),
            (b"\xff\xff", b"\x00"),
            (b"", b"\x00"),
        ];
        for (prefix, want) in cases {
            assert_eq!(prefix_end(prefix), want.to_vec(), "prefix {prefix:?}");
        }
    }
}
