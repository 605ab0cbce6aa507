//! The service proxy. Both modes share `mirror.rs` (list+watch of Services and
//! EndpointSlices) and a rebuild debounced by [`DEBOUNCE`] after each change that applies an
//! `nft -f -` script only when its text changed (a failure is logged and retried), the table
//! deleted on a clean shutdown. nftables mode: `rules.rs` (pure) DNATs service traffic to the
//! endpoints in the kernel. Userspace mode (`userspace/`): the agent listens per service port
//! and its table only redirects service traffic to those listeners, which pick and dial the
//! endpoints. Nothing is applied before both resources have been listed, so a restarted agent
//! rebuilds from the API, never from an empty view.

pub(crate) mod mirror;
pub mod rules;
pub mod userspace;

use crate::api::Api;
use mirror::Mirrors;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a rebuild waits after a change for more changes.
pub const DEBOUNCE: Duration = Duration::from_millis(20);

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
    let mut applier = Applier::default();
    loop {
        next_pass(changed).await;
        let Some((svcs, sls)) = mirrors.snapshot() else {
            continue;
        };
        let ips = tokio::task::spawn_blocking(node_addresses)
            .await
            .unwrap_or_default();
        let script = rules::ruleset(table, node, &ips, &svcs, &sls);
        applier.apply(table, script, changed).await;
    }
}
