//! The pod network across nodes on one L2 segment, with real containers: `capstan server` on
//! the host (node 1, bound to 0.0.0.0, `--node-ip` on the test link) and `capstan agent` under
//! `ip netns exec` in a network namespace of its own (node 2: its own address, bridge,
//! containerd, proxy table, routes), joined over a veth pair on a test-made /30
//! (10.250.x.0/30, never routed off the machine). Both nodes Ready with the addresses they are
//! reached at; host-gateway routes to each other's podCIDR (no VXLAN device); busybox httpd pods
//! pinned to each node reach each other by pod IP keeping their source address (no masquerade
//! inside the cluster CIDR), reach ClusterIP services whose only backend is on the other node,
//! node 2's pod reaches the kubernetes Service (the advertised address), traffic leaving the
//! cluster CIDR is masqueraded, and NodePorts answer from node 2's namespace at either node's
//! address and from the host at node 2's (a backend on node 1 reached through node 2 sees node
//! 2's address: masqueraded, so the reply comes back the way it went). A stopped agent leaves no route, device or table; a deleted
//! Node's route goes. Needs root, containerd, nft, ip and bridge (NOTICE and skip otherwise).

mod common;
#[path = "crossnode/scenario.rs"]
mod scenario;

#[test]
fn cross_node_pod_and_service_traffic_with_an_agent_in_a_network_namespace() {
    scenario::cross_node_traffic(scenario::Topology::Link);
}
