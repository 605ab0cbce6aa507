//! The node agent of `capstan server`: it starts its own containerd, imports images, registers
//! the Node (capacity, labels, addresses, nodeInfo from CRI) and renews its Lease; kubectl sees
//! it as Kubernetes shows a kubelet's node. Needs root and containerd (NOTICE otherwise).

mod common;

use common::{eventually, Server};
use serde_json::Value;
use std::process::Command;

#[test]
fn agent_registers_a_node_with_its_lease_and_images() {
    if !common::agent_prerequisites(&[]) {
        return;
    }
    let s = Server::start_with_agent("capstan-test-node");
    let node: Value = eventually(30, || {
        let o = s.kubectl(&["get", "node", "capstan-test-node", "-o", "json"]);
        (o.code == 0)
            .then(|| serde_json::from_str::<Value>(&o.stdout).unwrap())
            .filter(|n: &Value| n["status"]["nodeInfo"]["containerRuntimeVersion"].is_string())
    });
    assert!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"),
        "{node}"
    );
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        "capstan-test-node"
    );
    assert_eq!(
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    let first_24 = common::cluster_cidr().replace(".0.0/16", ".0.0/24");
    assert_eq!(node["spec"]["podCIDR"], first_24.as_str());
    assert_eq!(node["status"]["capacity"]["pods"], "110");
    let conds: Vec<&str> = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(
        conds,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    // With the CNI config written, containerd reports its network ready and the node is Ready.
    let ready: Value = eventually(30, || {
        let o = s.kubectl(&[
            "get",
            "node",
            "capstan-test-node",
            "-o",
            "jsonpath={.status.conditions[3]}",
        ]);
        serde_json::from_str::<Value>(&o.stdout)
            .ok()
            .filter(|c| c["status"] == "True")
    });
    assert_eq!(ready["reason"], "KubeletReady", "{ready}");
    let conflist =
        std::fs::read_to_string(s.dir.path().join("agent/cni/10-capstan.conflist")).unwrap();
    assert!(
        conflist.contains(&first_24) && conflist.contains("host-local"),
        "{conflist}"
    );
    let wide = s.kubectl(&["get", "nodes", "-o", "wide"]).ok();
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    assert!(
        wide.lines().any(|l| l.starts_with("capstan-test-node")
            && l.contains("control-plane")
            && l.contains("v1.32.4+capstan")),
        "{wide}"
    );
    let lease = s
        .kubectl(&[
            "get",
            "lease",
            "capstan-test-node",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .ok();
    assert_eq!(lease, "capstan-test-node");
    let describe = s.kubectl(&["describe", "node", "capstan-test-node"]).ok();
    assert!(
        describe.contains("Container Runtime Version:") && describe.contains("PodCIDR:"),
        "{describe}"
    );
    // Images: build the built-in ones and import them into this node's containerd.
    let images = s.dir.path().join("built-images");
    let out = Command::new(common::binary())
        .args(["images", "build-builtin", "--out"])
        .arg(&images)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::binary())
        .args(["images", "import", "-d"])
        .arg(s.dir.path())
        .arg(images.join("busybox.tar"))
        .arg(images.join("pause.tar"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::binary())
        .args(["images", "list", "-d"])
        .arg(s.dir.path())
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("docker.io/library/busybox") && list.contains("registry.k8s.io/pause"),
        "{list}"
    );
}
