//! etcd watches as a [`WatchStream`]: events grouped by revision, compaction reported as
//! [`Error::Compacted`], and the underlying gRPC watch transparently re-established from
//! the next unseen revision when the connection drops (so no event is skipped).

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{WatchClient, WatchOptions, WatchResponse};

use super::{map_event, prefix_end, retry};
use crate::{Error, Result, WatchStream};

/// Reconnection attempts before the stream gives up with `Err(Unavailable)`.
const RECONNECT_ATTEMPTS: u32 = 8;

struct EtcdWatch {
    client: WatchClient,
    key: Vec<u8>,
    end: Vec<u8>,
    /// The first revision not yet delivered (0 until etcd tells us "now").
    next_rev: i64,
    stream: Option<etcd_client::WatchStream>,
    pending: VecDeque<Result<Vec<crate::Event>>>,
    done: bool,
}

impl EtcdWatch {
    async fn open(&mut self) -> Result<()> {
        let options = WatchOptions::new()
            .with_range(self.end.clone())
            .with_start_revision(self.next_rev)
            .with_prev_key();
        let key = &self.key;
        let stream = retry(&self.client, |mut client| {
            let options = options.clone();
            async move { client.watch(key.clone(), Some(options)).await }
        })
        .await?;
        self.stream = Some(stream);
        Ok(())
    }

    async fn reopen(&mut self) -> Result<()> {
        let mut delay = Duration::from_millis(100);
        let mut last = Error::Unavailable("etcd watch closed".into());
        for _ in 0..RECONNECT_ATTEMPTS {
            tokio::time::sleep(delay).await;
            match self.open().await {
                Ok(()) => return Ok(()),
                Err(e @ Error::Unavailable(_)) => last = e,
                Err(e) => return Err(e),
            }
            delay = (delay * 2).min(Duration::from_secs(3));
        }
        Err(last)
    }

    fn take(&mut self, resp: WatchResponse) {
        if self.next_rev <= 0 {
            if let Some(h) = resp.header() {
                self.next_rev = h.revision() + 1;
            }
        }
        if resp.compact_revision() > 0 {
            self.pending.push_back(Err(Error::Compacted {
                compact_revision: resp.compact_revision(),
            }));
            return;
        }
        if resp.canceled() {
            self.pending.push_back(Err(Error::Unavailable(format!(
                "etcd canceled the watch: {}",
                resp.cancel_reason()
            ))));
            return;
        }
        let events = match resp
            .events()
            .iter()
            .map(map_event)
            .collect::<Result<Vec<_>>>()
        {
            Ok(events) => events,
            Err(e) => {
                self.pending.push_back(Err(e));
                return;
            }
        };
        // After a reconnect etcd may resend nothing older than next_rev; filter anyway.
        let fresh = events.into_iter().filter(|e| e.revision() >= self.next_rev);
        for group in crate::embedded::group_by_revision(fresh) {
            self.next_rev = group[0].revision() + 1;
            self.pending.push_back(Ok(group));
        }
    }

    async fn next(&mut self) -> Option<Result<Vec<crate::Event>>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            if self.stream.is_none() {
                if let Err(e) = self.reopen().await {
                    self.pending.push_back(Err(e));
                    continue;
                }
            }
            let stream = self.stream.as_mut()?;
            match stream.message().await {
                Ok(Some(resp)) => self.take(resp),
                // A broken stream (etcd restarted, connection reset) is resumed from the
                // next undelivered revision; `reopen` gives up after a few attempts.
                Ok(None) | Err(_) => {
                    tracing::debug!(next_rev = self.next_rev, "etcd watch dropped; resuming");
                    self.stream = None;
                }
            }
        }
    }
}

/// Starts a watch of `prefix` from `from_revision`; the first request is made here so
/// an unreachable cluster fails the call itself.
pub(super) async fn watch(
    client: WatchClient,
    prefix: &str,
    from_revision: i64,
) -> Result<WatchStream> {
    let key = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    let mut w = EtcdWatch {
        client,
        key,
        end: prefix_end(prefix.as_bytes()),
        next_rev: from_revision,
        stream: None,
        pending: VecDeque::new(),
        done: false,
    };
    w.open().await?;
    Ok(Box::pin(futures::stream::unfold(w, |mut w| async move {
        w.next().await.map(|item| (item, w))
    })))
}
