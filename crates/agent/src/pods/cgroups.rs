//! The pod-level cgroups containerd leaves behind under the cgroupfs driver
//! (`/sys/fs/cgroup/<controller>/kubepods/<qos>/pod<uid>`): removed when the pod is gone.

use std::path::Path;

/// Remove the (empty) pod cgroup directories of `uid` under `root` in every hierarchy.
pub fn remove_pod_under(root: &Path, uid: &str) {
    let Ok(hierarchies) = std::fs::read_dir(root) else {
        return;
    };
    let name = format!("pod{uid}");
    for h in hierarchies.flatten() {
        for parent in ["kubepods", "kubepods/burstable", "kubepods/besteffort"] {
            let dir = h.path().join(parent).join(&name);
            if dir.is_dir() {
                // Container cgroups inside are removed by the runtime; a leftover empty one
                // would block the rmdir, so try children first.
                if let Ok(kids) = std::fs::read_dir(&dir) {
                    for k in kids.flatten().filter(|k| k.path().is_dir()) {
                        let _ = std::fs::remove_dir(k.path());
                    }
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

pub fn remove_pod(uid: &str) {
    remove_pod_under(Path::new("/sys/fs/cgroup"), uid);
}
