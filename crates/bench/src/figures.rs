//! What one run measures: the backends, the sizes of each measurement, and the figures
//! collected for one backend.

use crate::stats::Summary;

/// The datastore a server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Etcd => "etcd",
        }
    }

    /// Parse `--backends`: comma-separated names, each at most once, at least one.
    pub fn parse_list(s: &str) -> Result<Vec<Backend>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let b = match name {
                "embedded" => Backend::Embedded,
                "etcd" => Backend::Etcd,
                other => return Err(format!("unknown backend {other:?} (embedded, etcd)")),
            };
            if out.contains(&b) {
                return Err(format!("backend {name:?} given twice"));
            }
            out.push(b);
        }
        if out.is_empty() {
            return Err("no backend given".into());
        }
        Ok(out)
    }
}

/// Client counts of the create measurement.
pub const CREATE_CLIENTS: [usize; 3] = [1, 16, 64];
/// Clients that store the pods for the LIST and RSS measurements.
pub const LOAD_CLIENTS: usize = 64;
/// Watch streams per HTTP/2 connection in the watch measurement.
pub const WATCHES_PER_CONN: usize = 100;
/// Pause between two writes in the watch measurement.
pub const WATCH_WRITE_GAP_MS: u64 = 5;

/// Counts for each measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub quick: bool,
    pub creates_per_level: usize,
    pub list_pods: usize,
    pub lists: usize,
    pub gets: usize,
    pub watchers_many: usize,
    pub watch_events: usize,
    pub rss_pods: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                creates_per_level: 200,
                list_pods: 1000,
                lists: 5,
                gets: 50,
                watchers_many: 100,
                watch_events: 30,
                rss_pods: 5000,
            }
        } else {
            Sizes {
                quick,
                creates_per_level: 3000,
                list_pods: 10_000,
                lists: 20,
                gets: 500,
                watchers_many: 1000,
                watch_events: 200,
                rss_pods: 100_000,
            }
        }
    }

    /// Pods stored before the RSS load phase: every create level, the LIST namespace and the
    /// two watch runs.
    pub fn stored_before_load(&self) -> usize {
        CREATE_CLIENTS.len() * self.creates_per_level + self.list_pods + 2 * self.watch_events
    }
}

/// Creates at one concurrency level.
#[derive(Clone, Debug, Default)]
pub struct CreateLevel {
    pub clients: usize,
    pub per_second: f64,
    pub latency: Summary,
    /// Server CPU use during the level, in cores.
    pub server_cores: f64,
    /// This process's CPU use during the level, in cores.
    pub client_cores: f64,
}

/// Watch delivery with one number of watchers.
#[derive(Clone, Debug, Default)]
pub struct WatchLevel {
    pub watchers: usize,
    pub connections: usize,
    pub latency: Summary,
    pub server_cores: f64,
    pub client_cores: f64,
}

/// Everything measured on one backend.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub creates: Vec<CreateLevel>,
    pub get: Summary,
    pub list: Summary,
    pub list_items: usize,
    pub list_bytes: usize,
    pub watch: Vec<WatchLevel>,
    pub rss_idle_kb: u64,
    pub rss_loaded_kb: u64,
    /// RSS of the etcd process at the same two moments, when on etcd.
    pub etcd_rss_idle_kb: Option<u64>,
    pub etcd_rss_loaded_kb: Option<u64>,
    /// Pods stored when `rss_loaded_kb` was read.
    pub stored_pods: usize,
    /// Pods created in the load phase, and how long that took.
    pub load_pods: usize,
    pub load_secs: f64,
}

impl Figures {
    pub fn creates_at(&self, clients: usize) -> Option<&CreateLevel> {
        self.creates.iter().find(|c| c.clients == clients)
    }

    pub fn watch_at(&self, watchers: usize) -> Option<&WatchLevel> {
        self.watch.iter().find(|w| w.watchers == watchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_lists() {
        use Backend::*;
        let cases: [(&str, Result<Vec<Backend>, ()>); 7] = [
            ("embedded,etcd", Ok(vec![Embedded, Etcd])),
            ("etcd", Ok(vec![Etcd])),
            (" etcd , embedded ", Ok(vec![Etcd, Embedded])),
            ("embedded,", Ok(vec![Embedded])),
            ("", Err(())),
            ("sqlite", Err(())),
            ("etcd,etcd", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(
                Backend::parse_list(input).map_err(|_| ()),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn sizes() {
        let full = Sizes::new(false);
        assert_eq!(full.stored_before_load(), 3 * 3000 + 10_000 + 400);
        assert!(full.rss_pods > full.stored_before_load());
        let quick = Sizes::new(true);
        assert!(quick.rss_pods > quick.stored_before_load());
    }
}
