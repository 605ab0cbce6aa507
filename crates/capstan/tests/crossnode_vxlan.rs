//! The pod network across nodes that share no L2 segment: as `tests/crossnode.rs`, but node 2's
//! namespace hangs behind a router namespace (host 10.251.x.1/30 ↔ router ↔ 10.251.x.6/30 node
//! 2; only those test /30s are routed, through the router). Neither node's InternalIP is on a
//! subnet the other has, so each makes a VXLAN device, publishes its MAC on its Node, and
//! routes the other's podCIDR through it; the same pod-to-pod (source kept), pod-to-service,
//! NodePort, masquerade and cleanup checks pass over the tunnel. Needs root, containerd, nft, ip and
//! bridge (NOTICE and skip otherwise).

mod common;
#[path = "crossnode/scenario.rs"]
mod scenario;

#[test]
fn cross_node_traffic_through_vxlan_when_nodes_share_no_subnet() {
    scenario::cross_node_traffic(scenario::Topology::Routed);
}
