//! Images for nodes without a registry: the built-in pause and busybox images, docker-archive
//! writing, Kubernetes image-reference normalisation, and import into / listing of a node's
//! containerd (through `ctr`, which ships with containerd).

pub mod archive;
pub mod builtin;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The containerd namespace the CRI plugin uses.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// The socket of the containerd a node agent runs for the data dir.
pub fn containerd_socket(data_dir: &Path) -> PathBuf {
    data_dir.join("containerd").join("containerd.sock")
}

/// Where tarballs wait to be imported at the agent's next start (k3s's air-gap directory).
pub fn pending_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

/// An image reference as Kubernetes resolves it: `busybox` → `docker.io/library/busybox:latest`,
/// `foo/bar:1` → `docker.io/foo/bar:1`, `host:5000/x` → `host:5000/x:latest`; digests kept.
pub fn normalize_image(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_host =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_host {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

fn ctr(socket: &Path) -> Command {
    let mut c = Command::new("ctr");
    c.arg("--address").arg(socket).args(["-n", CRI_NAMESPACE]);
    c
}

/// Import one tarball (docker-archive or OCI layout) into the containerd at `socket`.
pub fn import(socket: &Path, file: &Path) -> Result<String> {
    let out = ctr(socket)
        .args(["images", "import", "--all-platforms"])
        .arg(file)
        .output()
        .context("running ctr (apt-get install containerd)")?;
    if !out.status.success() {
        bail!(
            "importing {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Import every `*.tar` in `dir` (sorted); returns the files imported.
pub fn import_dir(socket: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    files.sort();
    for f in &files {
        import(socket, f)?;
    }
    Ok(files)
}

/// One image containerd has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub reference: String,
    pub digest: String,
    pub size: String,
}

/// Parse `ctr images ls` output (REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE is "4.2 MiB").
pub fn parse_ctr_list(text: &str) -> Vec<ImageInfo> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5).then(|| ImageInfo {
                reference: f[0].to_string(),
                digest: f[2].to_string(),
                size: format!("{} {}", f[3], f[4]),
            })
        })
        .filter(|i| !i.reference.starts_with("sha256:"))
        .collect()
}

pub fn list(socket: &Path) -> Result<Vec<ImageInfo>> {
    let out = ctr(socket)
        .args(["images", "ls"])
        .output()
        .context("running ctr")?;
    if !out.status.success() {
        bail!(
            "listing images: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(parse_ctr_list(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_kubernetes() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("foo/bar:2", "docker.io/foo/bar:2"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
            ("localhost/app", "localhost/app:latest"),
            ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_image(input), want, "{input}");
        }
    }

    #[test]
    fn parses_ctr_listing() {
        let text = "REF TYPE DIGEST SIZE PLATFORMS LABELS\n\
            docker.io/library/busybox:latest application/vnd.docker.distribution.manifest.v2+json sha256:aaa 1.2 MiB linux/amd64 io.cri-containerd.image=managed\n\
            sha256:bbb application/vnd.docker.distribution.manifest.v2+json sha256:aaa 1.2 MiB linux/amd64 -\n";
        let l = parse_ctr_list(text);
        assert_eq!(
            l,
            vec![ImageInfo {
                reference: "docker.io/library/busybox:latest".into(),
                digest: "sha256:aaa".into(),
                size: "1.2 MiB".into()
            }]
        );
    }
}
