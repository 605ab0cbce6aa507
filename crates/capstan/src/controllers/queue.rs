//! A work queue keyed by object (kube's workqueue): a key is queued at most once, a key
//! added while it is being processed is processed again afterwards, and every key is
//! re-queued on a resync period (level-triggered).

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Queue {
    inner: Mutex<(VecDeque<String>, HashSet<String>)>,
    notify: tokio::sync::Notify,
}

impl Queue {
    pub fn new() -> Arc<Queue> {
        Arc::new(Queue::default())
    }

    pub fn add(&self, key: String) {
        let mut g = self.inner.lock().unwrap();
        if g.1.insert(key.clone()) {
            g.0.push_back(key);
            drop(g);
            self.notify.notify_one();
        }
    }

    /// Add `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: String, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    pub async fn next(&self) -> String {
        loop {
            {
                let mut g = self.inner.lock().unwrap();
                if let Some(k) = g.0.pop_front() {
                    g.1.remove(&k);
                    return k;
                }
            }
            self.notify.notified().await;
        }
    }
}

/// Process keys one at a time with `sync` (which answers when to look again, if at all) and
/// re-queue `all()` every `resync`.
pub async fn drive<F, Fut>(
    queue: Arc<Queue>,
    resync: Duration,
    all: impl Fn() -> Vec<String> + Send + 'static,
    sync: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Option<Duration>>,
{
    let q = queue.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(resync).await;
            for k in all() {
                q.add(k);
            }
        }
    });
    loop {
        let key = queue.next().await;
        if let Some(again) = sync(key.clone()).await {
            queue.add_after(key, again);
        }
    }
}
