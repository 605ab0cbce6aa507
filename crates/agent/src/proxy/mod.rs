//! The service proxy. Both modes share `mirror.rs` (list+watch of Services and
//! EndpointSlices, objects shared as `Arc`s) and a pass debounced by [`DEBOUNCE`] after each
//! change. nftables mode: `rules.rs` (pure) computes the table's [`rules::State`] (DNAT of
//! service traffic to the endpoints in the kernel) and the pass applies, with `nft -f -`, only
//! the difference from the state last applied ([`rules::delta`]: one transaction touching the
//! changed services' chains and map elements); the whole table is rebuilt
//! ([`rules::full_script`]) at start and after a failed apply (logged, retried with backoff);
//! after each apply the stale UDP conntrack entries the change left ([`rules::conntrack`]) are
//! deleted. Userspace mode (`userspace/`): the agent listens per service port and its table
//! only DNATs service traffic to those listeners, which pick and dial the endpoints. The table
//! is deleted on a clean shutdown. Nothing is applied before both resources have been listed,
//! so a restarted agent rebuilds from the API, never from an empty view.
pub(crate) mod mirror;
pub mod rules;
pub mod userspace;

use crate::api::Api;
use mirror::Mirrors;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a rebuild waits after a change for more changes.
pub const DEBOUNCE: Duration = Duration::from_millis(5);

/// The nftables table of the server's own node unless `--proxy-nft-table` says otherwise.
pub const DEFAULT_TABLE: &str = "capstan";

/// `--proxy-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Nftables,
    Userspace,
    None,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "nftables" => Ok(Mode::Nftables),
            "userspace" => Ok(Mode::Userspace),
            "none" => Ok(Mode::None),
            _ => Err(format!(
                "unknown proxy mode {s:?} (expected nftables, userspace or none)"
            )),
        }
    }
}

/// Whether `name` can be an nftables table name (letters, digits, `-`, `_`, at most 63).
pub fn valid_table(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The node's IPv4 addresses NodePorts answer on (global scope: not 127.0.0.1).
pub(crate) fn node_addresses() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .map(str::to_string)
        })
        .collect()
}

/// `nft -f -` with `script` on stdin; the error is nft's message.
pub async fn nft(script: &str) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("running nft: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(|e| format!("writing to nft: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("running nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Bridged pod-to-pod replies must pass the ip hooks (conntrack undoes the DNAT); this host's
/// kernel has br_netfilter built in with it on, so this only turns it on where it is off.
fn ensure_bridge_netfilter() {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "0") {
        if let Err(e) = std::fs::write(path, "1") {
            tracing::warn!(error = %e, "proxy: cannot enable net.bridge.bridge-nf-call-iptables; pod-to-service traffic on one bridge may fail");
        }
    }
}

/// Run the proxy of `mode` until `stop` resolves, then delete its table (and, in userspace
/// mode, close its listeners). `node_ip` is the node's advertised address (userspace mode's
/// listeners are bound on it).
pub async fn run(
    api: Api,
    mode: Mode,
    node: String,
    node_ip: String,
    table: String,
    stop: impl std::future::Future<Output = ()>,
) {
    ensure_bridge_netfilter();
    let changed = Arc::new(Notify::new());
    let mirrors = Mirrors::start(api, changed.clone());
    match mode {
        Mode::Nftables => {
            tracing::info!(table = %table, "service proxy started (nftables)");
            tokio::select! {
                _ = sync_nftables(&mirrors, &changed, &node, &table) => {}
                _ = stop => {}
            }
        }
        Mode::Userspace => {
            tracing::info!(table = %table, node_ip = %node_ip, "service proxy started (userspace)");
            let mut proxy = userspace::Proxy::new(&node, &node_ip, &table);
            tokio::select! {
                _ = proxy.sync(&mirrors, &changed) => {}
                _ = stop => {}
            }
            drop(mirrors);
            delete_table(&table).await;
            proxy.close();
            return;
        }
        Mode::None => return,
    }
    drop(mirrors);
    delete_table(&table).await;
}

async fn delete_table(table: &str) {
    match nft(&format!("table ip {table} {{}}\ndelete table ip {table}\n")).await {
        Ok(()) => tracing::info!(table = %table, "proxy: table deleted"),
        Err(e) => tracing::warn!(error = %e, table = %table, "proxy: deleting the table"),
    }
}

/// Wait for a change (or 10 s: node addresses change, a failed apply retries), then
/// [`DEBOUNCE`] for more.
pub(crate) async fn next_pass(changed: &Notify) {
    let _ = tokio::time::timeout(Duration::from_secs(10), changed.notified()).await;
    tokio::time::sleep(DEBOUNCE).await;
}

/// Applies `script` when it differs from the last one applied; after a failure waits (1 s,
/// doubling to 30 s: say, no nft on this host) and asks for another pass.
#[derive(Default)]
pub(crate) struct Applier {
    last: Option<String>,
    backoff: Option<Duration>,
}

impl Applier {
    /// Whether the table now holds `script`.
    pub(crate) async fn apply(&mut self, table: &str, script: String, changed: &Notify) -> bool {
        if self.last.as_deref() == Some(script.as_str()) {
            return true;
        }
        match nft(&script).await {
            Ok(()) => {
                tracing::info!(table = %table, "proxy: ruleset applied");
                self.last = Some(script);
                self.backoff = None;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, table = %table, "proxy: applying the ruleset failed");
                self.last = None;
                let b = self.backoff.unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(b).await;
                self.backoff = Some((b * 2).min(Duration::from_secs(30)));
                changed.notify_one();
                false
            }
        }
    }
}

async fn sync_nftables(mirrors: &Mirrors, changed: &Notify, node: &str, table: &str) {
    // The state the kernel holds (the last applied), and whether the next pass must rebuild
    // the whole table (at start; after a failed apply).
    let mut applied: Option<rules::State> = None;
    let mut rebuild = true;
    // After a failed apply: 1 s, doubling to 30 s (say, no nft on this host).
    let mut backoff = Duration::from_secs(1);
    // The node's addresses, read again on each periodic pass (running `ip` on every change
    // would cost each endpoint change milliseconds).
    let mut ips: Option<Vec<String>> = None;
    // Each service's part of the state, reused while its objects are unchanged.
    let mut memo = rules::memo::Memo::default();
    loop {
        // A change, or a periodic pass (node addresses change; a failed apply retries).
        let periodic = tokio::time::timeout(Duration::from_secs(10), changed.notified())
            .await
            .is_err();
        if periodic || ips.is_none() {
            ips = tokio::task::spawn_blocking(node_addresses).await.ok();
        }
        let ips2 = ips.clone().unwrap_or_default();
        tokio::time::sleep(DEBOUNCE).await;
        let started = std::time::Instant::now();
        let Some((svcs, sls)) = mirrors.snapshot() else {
            continue;
        };
        let (n_svcs, n_sls) = (svcs.len(), sls.len());
        let node2 = node.to_string();
        let mut m = std::mem::take(&mut memo);
        let Ok((m, new)) = tokio::task::spawn_blocking(move || {
            let st = m.state(&node2, &ips2, &svcs, &sls);
            (m, st)
        })
        .await
        else {
            continue;
        };
        memo = m;
        let computed = started.elapsed();
        let delta = match (&applied, rebuild) {
            (Some(old), false) => rules::delta::delta_script(table, old, &new),
            _ => None,
        };
        let full = delta.is_none();
        let script = delta.unwrap_or_else(|| rules::full_script(table, node, &new));
        if script.is_empty() {
            continue;
        }
        match nft(&script).await {
            Ok(()) => {
                tracing::info!(table = %table, services = n_svcs, slices = n_sls, full,
                    bytes = script.len(),
                    compute_ms = computed.as_secs_f64() * 1e3,
                    total_ms = started.elapsed().as_secs_f64() * 1e3,
                    "proxy: ruleset applied");
                // The first apply flushes against an empty state: flows that began before
                // the agent's rules existed (at start, or after it restarted) were never
                // DNATed and would keep bypassing the new rules.
                let empty = rules::State::default();
                let flushes =
                    rules::conntrack::udp_flushes(applied.as_ref().unwrap_or(&empty), &new);
                if !flushes.is_empty() {
                    tokio::spawn(flush_conntrack(flushes));
                }
                applied = Some(new);
                rebuild = false;
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                // The transaction failed as a whole: the kernel still holds `applied`.
                tracing::warn!(error = %e, table = %table, full, "proxy: applying the ruleset failed");
                rebuild = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                changed.notify_one();
            }
        }
    }
}

/// Run `conntrack ARGS` for each flush; exit status 1 (nothing matched) is no error.
async fn flush_conntrack(flushes: Vec<Vec<String>>) {
    for args in flushes {
        let out = tokio::process::Command::new("conntrack")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        match out {
            Ok(o) if o.status.success() || o.status.code() == Some(1) => {
                tracing::debug!(args = ?args, "proxy: stale UDP conntrack entries flushed");
            }
            Ok(o) => {
                tracing::warn!(args = ?args, error = %String::from_utf8_lossy(&o.stderr).trim(),
                "proxy: flushing UDP conntrack entries")
            }
            Err(e) => {
                tracing::warn!(error = %e, "proxy: running conntrack (stale UDP entries stay)");
                return;
            }
        }
    }
}
