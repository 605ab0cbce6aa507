//! The node's CNI configuration: a bridge with host-local IPAM on the node's podCIDR (gateway
//! `.1`, hairpin for pods reaching themselves through a service; no `ipMasq`: the plugin's
//! rule masquerades everything leaving the node's own /24, other nodes' pods included, so the
//! agent's `podnet` masquerades only traffic leaving the cluster CIDR), portmap for hostPort
//! and bandwidth for the pod annotations
//! `kubernetes.io/ingress-bandwidth` / `kubernetes.io/egress-bandwidth`. containerd's CRI
//! plugin reads it from `<data-dir>/agent/cni` and runs Debian's plugins from /usr/lib/cni for
//! every sandbox; it parses those two annotations of the PodSandboxConfig itself (as the
//! kubelet's bandwidth helper does: a quantity in bits/s, 1k to 1P) and hands them to the
//! bandwidth plugin's capability, so the agent only passes the pod's annotations through
//! (`pods/bandwidth.rs` refuses bad quantities first). containerd asks for a burst of 2^32-1
//! bits, which the plugin turns into a tbf bucket of about 20 MiB at 1 Mbit/s: as on
//! Kubernetes with containerd, the first ~20 MiB pass at line rate, the limit holds after.
//!
//! The agent, not the bridge plugin, puts the gateway address on the bridge (`isGateway`
//! off, the default route's gateway given explicitly): the plugin refuses a bridge that already
//! has another IPv4 address, and several nodes on one machine (tests) share `capstan0`, each
//! adding its own podCIDR's gateway.

use serde_json::{json, Value};
use std::path::Path;

/// The bridge every pod of this node is attached to, unless `--cni-bridge` names another.
pub const BRIDGE: &str = "capstan0";

/// The gateway of a podCIDR with its prefix (`10.42.3.0/24` → `10.42.3.1/24`); None when it
/// is not an IPv4 CIDR with room for one.
pub fn gateway(pod_cidr: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (net, prefix) = pod_cidr.split_once('/')?;
    let net: std::net::Ipv4Addr = net.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 30)?;
    let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
    Some((((u32::from(net) & mask) + 1).into(), prefix))
}

/// The conflist for a node (pure).
pub fn conflist(pod_cidr: &str, ipam_dir: &Path, bridge: &str) -> Value {
    let gw = gateway(pod_cidr)
        .map(|(ip, _)| ip.to_string())
        .unwrap_or_default();
    json!({
        "cniVersion": "0.4.0",
        "name": "capstan",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": false,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr, "gateway": gw}]],
                    "routes": [{"dst": "0.0.0.0/0", "gw": gw}],
                    "dataDir": ipam_dir.to_string_lossy(),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    })
}

fn ip(args: &[&str]) -> std::io::Result<std::process::Output> {
    std::process::Command::new("ip").args(args).output()
}

/// Make sure the bridge exists, is up and carries the podCIDR's gateway address (other
/// addresses on it, other nodes' gateways on this machine, are left alone).
pub fn ensure_bridge(pod_cidr: &str, bridge: &str) -> std::io::Result<()> {
    let Some((gw, prefix)) = gateway(pod_cidr) else {
        return Err(std::io::Error::other(format!("bad podCIDR {pod_cidr:?}")));
    };
    // `ip link show`, not /sys/class/net: under `nsenter --net` /sys shows another namespace.
    let exists = || ip(&["link", "show", "dev", bridge]).is_ok_and(|o| o.status.success());
    if !exists() {
        let out = ip(&["link", "add", bridge, "type", "bridge"])?;
        if !out.status.success() && !exists() {
            return Err(std::io::Error::other(format!(
                "ip link add {bridge}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    pin_mac(bridge)?;
    let _ = ip(&["link", "set", bridge, "up"])?;
    let addr = format!("{gw}/{prefix}");
    let shown = ip(&["-o", "-4", "addr", "show", "dev", bridge])?;
    let needle = format!("inet {addr} ");
    if !String::from_utf8_lossy(&shown.stdout).contains(&needle) {
        let out = ip(&["addr", "add", &addr, "dev", bridge])?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "ip addr add {addr} dev {bridge}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Set the bridge's MAC address explicitly (to the one it has). A bridge whose address was
/// never set takes the lowest of its ports' addresses, so it changed whenever the veth with
/// the lowest one left or a lower one joined, and every pod's neighbour entry for the gateway
/// went stale: replies to the node (host → ClusterIP → pod) were lost for seconds after a pod
/// on the node was deleted. An explicitly set address stays.
fn pin_mac(bridge: &str) -> std::io::Result<()> {
    let shown = ip(&["-o", "link", "show", "dev", bridge])?;
    let text = String::from_utf8_lossy(&shown.stdout);
    let Some(mac) = link_mac(&text) else {
        return Err(std::io::Error::other(format!(
            "no MAC address for {bridge} in {:?}",
            text.trim()
        )));
    };
    let out = ip(&["link", "set", "dev", bridge, "address", mac])?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "ip link set dev {bridge} address {mac}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The `link/ether` address in `ip -o link show` output.
fn link_mac(shown: &str) -> Option<&str> {
    let mut words = shown.split_whitespace();
    words.find(|w| *w == "link/ether")?;
    words
        .next()
        .filter(|m| m.len() == 17 && m.split(':').count() == 6)
}

/// Write the conflist (atomically), set up the bridge's gateway address and enable IPv4
/// forwarding for the pod network.
pub fn install(data_dir: &Path, pod_cidr: &str, bridge: &str) -> std::io::Result<()> {
    ensure_bridge(pod_cidr, bridge)?;
    let dir = data_dir.join("agent").join("cni");
    std::fs::create_dir_all(&dir)?;
    let cfg = conflist(pod_cidr, &data_dir.join("agent").join("cni-ipam"), bridge);
    let tmp = dir.join(".10-capstan.conflist.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&cfg).expect("serializes"))?;
    std::fs::rename(&tmp, dir.join("10-capstan.conflist"))?;
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
        tracing::warn!(error = %e, "cannot enable net.ipv4.ip_forward; pod traffic will not leave the node");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_mac_reads_the_ether_address() {
        let cases = [
            (
                "7: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 6a:16:98:de:0b:b2 brd ff:ff:ff:ff:ff:ff",
                Some("6a:16:98:de:0b:b2"),
            ),
            ("1: lo: <LOOPBACK,UP> mtu 65536\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00", None),
            ("7: cni0: link/ether", None),
            ("7: cni0: link/ether zz", None),
            ("", None),
        ];
        for (shown, want) in cases {
            assert_eq!(link_mac(shown), want, "{shown}");
        }
    }

    #[test]
    fn conflist_uses_the_node_pod_cidr() {
        let c = conflist("10.42.3.0/24", Path::new("/d/ipam"), BRIDGE);
        assert_eq!(c["plugins"][0]["type"], "bridge");
        assert_eq!(c["plugins"][0]["bridge"], BRIDGE);
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(c["plugins"][0]["ipam"]["dataDir"], "/d/ipam");
        assert_eq!(c["plugins"][0]["isGateway"], false);
        assert_eq!(c["plugins"][0]["ipMasq"], false);
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["gateway"],
            "10.42.3.1"
        );
        assert_eq!(c["plugins"][0]["ipam"]["routes"][0]["gw"], "10.42.3.1");
        assert_eq!(c["plugins"][1]["type"], "portmap");
        assert_eq!(c["plugins"][2]["type"], "bandwidth");
        assert_eq!(c["plugins"][2]["capabilities"]["bandwidth"], true);
    }

    #[test]
    fn gateways() {
        let cases: &[(&str, Option<(&str, u8)>)] = &[
            ("10.42.3.0/24", Some(("10.42.3.1", 24))),
            ("10.42.3.7/24", Some(("10.42.3.1", 24))),
            ("10.42.0.0/16", Some(("10.42.0.1", 16))),
            ("10.42.3.0/31", None),
            ("10.42.3.0", None),
            ("fd00::/64", None),
            ("", None),
        ];
        for (cidr, want) in cases {
            let got = gateway(cidr).map(|(ip, p)| (ip.to_string(), p));
            assert_eq!(got, want.map(|(ip, p)| (ip.to_string(), p)), "{cidr}");
        }
    }
}
