//! Writing a docker-archive image tarball (the `docker save` layout that `ctr images import`
//! reads) from an in-memory root filesystem. Deterministic: entries sorted, mtime 0, uid/gid 0,
//! so the same inputs give the same digests.

use anyhow::Result;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;

/// One entry of a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

/// A root filesystem: path (relative, no leading '/') → entry.
pub type Rootfs = BTreeMap<String, Entry>;

/// What the image runs.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The uncompressed layer tar of a rootfs.
pub fn layer_tar(rootfs: &Rootfs) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, entry) in rootfs {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match entry {
            Entry::Dir { mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::File { mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Entry::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    Ok(b.into_inner()?)
}

/// The host architecture in OCI terms.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A docker-archive tarball with one layer and the given tags (fully qualified references).
/// Returns (tarball bytes, image id = config digest).
pub fn docker_archive(
    rootfs: &Rootfs,
    config: &ImageConfig,
    tags: &[&str],
) -> Result<(Vec<u8>, String)> {
    let layer = layer_tar(rootfs)?;
    let layer_id = sha256_hex(&layer);
    let mut cfg = json!({"Env": config.env});
    if let Some(e) = &config.entrypoint {
        cfg["Entrypoint"] = json!(e);
    }
    if let Some(c) = &config.cmd {
        cfg["Cmd"] = json!(c);
    }
    let image_config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_id}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "capstan images build-builtin"}],
    });
    let config_bytes = serde_json::to_vec(&image_config)?;
    let config_id = sha256_hex(&config_bytes);
    let manifest = json!([{
        "Config": format!("{config_id}.json"),
        "RepoTags": tags,
        "Layers": [format!("{layer_id}/layer.tar")],
    }]);
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, data)?;
        Ok(())
    };
    add(&format!("{layer_id}/layer.tar"), &layer)?;
    add(&format!("{config_id}.json"), &config_bytes)?;
    add("manifest.json", &serde_json::to_vec(&manifest)?)?;
    let mut bytes = out.into_inner()?;
    bytes.flush()?;
    Ok((bytes, format!("sha256:{config_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> Rootfs {
        let mut r = Rootfs::new();
        r.insert("bin".into(), Entry::Dir { mode: 0o755 });
        r.insert(
            "bin/hello".into(),
            Entry::File {
                mode: 0o755,
                data: b"#!/bin/sh\necho hi\n".to_vec(),
            },
        );
        r.insert(
            "bin/hi".into(),
            Entry::Symlink {
                target: "hello".into(),
            },
        );
        r
    }

    #[test]
    fn archives_are_deterministic_and_well_formed() {
        let cfg = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        };
        let (a, id_a) = docker_archive(&fs(), &cfg, &["example.com/x:1"]).unwrap();
        let (b, id_b) = docker_archive(&fs(), &cfg, &["example.com/x:1"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(id_a, id_b);
        let mut names = Vec::new();
        let mut manifest = None;
        for e in tar::Archive::new(a.as_slice()).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            if name == "manifest.json" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                manifest = Some(serde_json::from_str::<serde_json::Value>(&s).unwrap());
            }
            names.push(name);
        }
        let m = manifest.expect("manifest.json");
        assert_eq!(m[0]["RepoTags"][0], "example.com/x:1");
        assert!(names.contains(&m[0]["Config"].as_str().unwrap().to_string()));
        assert!(names.contains(&m[0]["Layers"][0].as_str().unwrap().to_string()));
        assert_eq!(
            format!(
                "sha256:{}",
                m[0]["Config"].as_str().unwrap().trim_end_matches(".json")
            ),
            id_a
        );
    }

    #[test]
    fn layer_holds_files_links_and_dirs() {
        let layer = layer_tar(&fs()).unwrap();
        let kinds: Vec<(String, tar::EntryType)> = tar::Archive::new(layer.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("bin/".to_string(), tar::EntryType::Directory),
                ("bin/hello".to_string(), tar::EntryType::Regular),
                ("bin/hi".to_string(), tar::EntryType::Symlink),
            ]
        );
    }
}
