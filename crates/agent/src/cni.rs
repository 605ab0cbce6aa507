//! The node's CNI configuration: a bridge with host-local IPAM on the node's podCIDR (gateway
//! `.1`, masquerade for traffic leaving the cluster, hairpin for pods reaching themselves
//! through a service) plus portmap for hostPort. containerd's CRI plugin reads it from
//! `<data-dir>/agent/cni` and runs Debian's plugins from /usr/lib/cni for every sandbox.

use serde_json::{json, Value};
use std::path::Path;

/// The bridge every pod of this node is attached to, unless `--cni-bridge` names another
/// (two nodes on one host need two bridges: the bridge plugin keeps one gateway per bridge).
pub const BRIDGE: &str = "capstan0";

/// The conflist for a node (pure).
pub fn conflist(pod_cidr: &str, ipam_dir: &Path, bridge: &str) -> Value {
    json!({
        "cniVersion": "0.4.0",
        "name": "capstan",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.to_string_lossy(),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
}

/// Write the conflist (atomically) and enable IPv4 forwarding for the pod network.
pub fn install(data_dir: &Path, pod_cidr: &str, bridge: &str) -> std::io::Result<()> {
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
    fn conflist_uses_the_node_pod_cidr() {
        let c = conflist("10.42.3.0/24", Path::new("/d/ipam"), BRIDGE);
        assert_eq!(c["plugins"][0]["type"], "bridge");
        assert_eq!(c["plugins"][0]["bridge"], BRIDGE);
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.3.0/24"
        );
        assert_eq!(c["plugins"][0]["ipam"]["dataDir"], "/d/ipam");
        assert_eq!(c["plugins"][1]["type"], "portmap");
    }
}
