//! Pod volumes on the host, under `<pod dir>/volumes/<plugin>/<name>` as the kubelet lays them
//! out: emptyDir (a directory, or tmpfs for medium Memory), secret, downwardAPI and projected
//! (tmpfs: never on disk), configMap (disk), hostPath (checked or created by type). Files of
//! the API-backed volumes are written atomically (a timestamped dir, `..data` symlink swap,
//! per-key symlinks), so updates are seen whole. Which files a volume holds is pure
//! ([`files`]); mounting, writing and tearing down are the I/O at the edge.

use super::env::{field_value, resource_value, Lookups, Runtime};
use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// One file of an API-backed volume: path relative to the volume, content, mode.
pub type File = (String, Vec<u8>, u32);

fn keyed(
    data: BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<KeyToPath>>,
    mode: u32,
    what: &str,
    optional: bool,
) -> Result<Vec<File>, String> {
    match items {
        None => Ok(data.into_iter().map(|(k, v)| (k, v, mode)).collect()),
        Some(items) => {
            let mut out = Vec::new();
            for it in items {
                match data.get(&it.key) {
                    Some(v) => out.push((
                        it.path.clone(),
                        v.clone(),
                        it.mode.map(|m| m as u32).unwrap_or(mode),
                    )),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            it.key
                        )
                        .replace("configmap", what))
                    }
                }
            }
            Ok(out)
        }
    }
}

fn secret_data(l: &Lookups, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    l.secrets.get(name).and_then(Option::as_ref).map(|s| {
        s.data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    })
}

fn config_map_data(l: &Lookups, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    l.config_maps.get(name).and_then(Option::as_ref).map(|c| {
        let mut d: BTreeMap<String, Vec<u8>> = c
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        d.extend(
            c.binary_data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        d
    })
}

fn downward_files(
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    mode: u32,
    rt: &Runtime,
) -> Result<Vec<File>, String> {
    let mut out = Vec::new();
    for it in items {
        let v = if let Some(f) = &it.field_ref {
            field_value(pod, &f.field_path, rt)?
        } else if let Some(r) = &it.resource_field_ref {
            let c = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                .ok_or_else(|| format!("container {:?} not found", r.container_name))?;
            resource_value(c, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()), rt)?
        } else {
            String::new()
        };
        out.push((
            it.path.clone(),
            v.into_bytes(),
            it.mode.map(|m| m as u32).unwrap_or(mode),
        ));
    }
    Ok(out)
}

/// The files of an API-backed volume (None for other kinds). An error is the FailedMount
/// message: a missing, non-optional secret or config map keeps the pod from starting.
pub fn files(
    pod: &Pod,
    v: &Volume,
    l: &Lookups,
    rt: &Runtime,
) -> Result<Option<Vec<File>>, String> {
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        let optional = s.optional.unwrap_or(false);
        return match secret_data(l, &name) {
            Some(d) => keyed(d, &s.items, mode, "secret", optional).map(Some),
            None if optional => Ok(Some(vec![])),
            None => Err(format!(
                "MountVolume.SetUp failed for volume \"{}\" : secret \"{name}\" not found",
                v.name
            )),
        };
    }
    if let Some(c) = &v.config_map {
        let mode = c.default_mode.unwrap_or(0o644) as u32;
        let optional = c.optional.unwrap_or(false);
        return match config_map_data(l, &c.name) {
            Some(d) => keyed(d, &c.items, mode, "configmap", optional).map(Some),
            None if optional => Ok(Some(vec![])),
            None => Err(format!(
                "MountVolume.SetUp failed for volume \"{}\" : configmap \"{}\" not found",
                v.name, c.name
            )),
        };
    }
    if let Some(d) = &v.downward_api {
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        return downward_files(pod, d.items.as_deref().unwrap_or_default(), mode, rt).map(Some);
    }
    if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        let mut out = Vec::new();
        for src in p.sources.iter().flatten() {
            if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                match secret_data(l, &s.name) {
                    Some(d) => out.extend(keyed(d, &s.items, mode, "secret", optional)?),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "MountVolume.SetUp failed for volume \"{}\" : secret \"{}\" not found",
                            v.name, s.name
                        ))
                    }
                }
            }
            if let Some(c) = &src.config_map {
                let optional = c.optional.unwrap_or(false);
                match config_map_data(l, &c.name) {
                    Some(d) => out.extend(keyed(d, &c.items, mode, "configmap", optional)?),
                    None if optional => {}
                    None => {
                        return Err(format!(
                        "MountVolume.SetUp failed for volume \"{}\" : configmap \"{}\" not found",
                        v.name, c.name
                    ))
                    }
                }
            }
            if let Some(d) = &src.downward_api {
                out.extend(downward_files(
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                    rt,
                )?);
            }
            if let Some(t) = &src.service_account_token {
                // Placeholder until service account tokens are issued (security issue).
                out.push((t.path.clone(), Vec::new(), mode));
            }
        }
        return Ok(Some(out));
    }
    Ok(None)
}

fn plugin_dir(v: &Volume) -> &'static str {
    if v.secret.is_some() {
        "kubernetes.io~secret"
    } else if v.config_map.is_some() {
        "kubernetes.io~configmap"
    } else if v.downward_api.is_some() {
        "kubernetes.io~downward-api"
    } else if v.projected.is_some() {
        "kubernetes.io~projected"
    } else {
        "kubernetes.io~empty-dir"
    }
}

fn mounted(path: &Path) -> bool {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(&p)))
        .unwrap_or(false)
}

fn mount_tmpfs(dir: &Path, size: Option<i128>) -> Result<(), String> {
    if mounted(dir) {
        return Ok(());
    }
    let mut opts = "mode=0755".to_string();
    if let Some(s) = size.filter(|s| *s > 0) {
        opts.push_str(&format!(",size={s}"));
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mount tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn read_tree(dir: &Path, rel: &str, out: &mut Vec<File>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let p = e.path();
        if p.is_dir() {
            read_tree(&p, &r, out);
        } else if let (Ok(b), Ok(md)) = (std::fs::read(&p), p.metadata()) {
            out.push((r, b, md.permissions().mode() & 0o7777));
        }
    }
}

/// Write `files` into `dir` the way the kubelet's atomic writer does. Returns whether anything
/// changed.
pub fn write_atomic(dir: &Path, files: &[File], gid: Option<u32>) -> std::io::Result<bool> {
    let mut want: Vec<File> = files.to_vec();
    want.sort();
    let mut have = Vec::new();
    let data = dir.join("..data");
    if data.exists() {
        read_tree(&data, "", &mut have);
        have.sort();
        if have == want {
            return Ok(false);
        }
    }
    let old = std::fs::read_link(&data).ok();
    let ts = format!("..{}", chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S.%f"));
    let tsdir = dir.join(&ts);
    std::fs::create_dir_all(&tsdir)?;
    for (rel, content, mode) in &want {
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            continue;
        }
        let p = tsdir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
        if let Some(g) = gid {
            std::os::unix::fs::chown(&p, None, Some(g))?;
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, &data)?;
    let tops: std::collections::BTreeSet<String> = want
        .iter()
        .filter_map(|(r, _, _)| r.split('/').next().map(String::from))
        .collect();
    for t in &tops {
        let link = dir.join(t);
        if link.symlink_metadata().is_err() {
            symlink(format!("..data/{t}"), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

fn host_path_check(path: &str, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let p = Path::new(path);
    let md = std::fs::metadata(p);
    let fail = |what: &str| {
        Err(format!(
            "hostPath type check failed: {path} is not a {what}"
        ))
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            std::fs::create_dir_all(p).map_err(|e| format!("hostPath {path}: {e}"))
        }
        "FileOrCreate" => {
            if md.is_err() {
                if let Some(parent) = p.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                std::fs::File::create(p).map_err(|e| format!("hostPath {path}: {e}"))?;
            }
            Ok(())
        }
        "Directory" => md
            .ok()
            .filter(|m| m.is_dir())
            .map(|_| ())
            .map_or_else(|| fail("directory"), Ok),
        "File" => md
            .ok()
            .filter(|m| m.is_file())
            .map(|_| ())
            .map_or_else(|| fail("file"), Ok),
        "Socket" => md
            .ok()
            .filter(|m| m.file_type().is_socket())
            .map(|_| ())
            .map_or_else(|| fail("socket"), Ok),
        "CharDevice" => md
            .ok()
            .filter(|m| m.file_type().is_char_device())
            .map(|_| ())
            .map_or_else(|| fail("character device"), Ok),
        "BlockDevice" => md
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|_| ())
            .map_or_else(|| fail("block device"), Ok),
        other => Err(format!("hostPath type {other:?} is not supported")),
    }
}

/// Set every volume of the pod up; returns volume name → host path. An error is the
/// FailedMount message (the worker retries).
pub fn prepare(
    pod_dir: &Path,
    pod: &Pod,
    l: &Lookups,
    rt: &Runtime,
) -> Result<HashMap<String, PathBuf>, String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let fs_group = spec
        .security_context
        .as_ref()
        .and_then(|s| s.fs_group)
        .map(|g| g as u32);
    let mut out = HashMap::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(hp) = &v.host_path {
            host_path_check(&hp.path, hp.type_.as_deref().unwrap_or(""))?;
            out.insert(v.name.clone(), PathBuf::from(&hp.path));
            continue;
        }
        let dir = pod_dir.join("volumes").join(plugin_dir(v)).join(&v.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let io =
            |e: std::io::Error| format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name);
        match files(pod, v, l, rt)? {
            Some(fs) => {
                if v.config_map.is_none() {
                    mount_tmpfs(&dir, None)?;
                }
                write_atomic(&dir, &fs, fs_group).map_err(io)?;
                if let Some(g) = fs_group {
                    std::os::unix::fs::chown(&dir, None, Some(g)).map_err(io)?;
                }
            }
            None => {
                if let Some(ed) = &v.empty_dir {
                    if ed.medium.as_deref() == Some("Memory") {
                        let size = ed
                            .size_limit
                            .as_ref()
                            .and_then(|q| capstan_validation::quantity::Quantity::parse(&q.0).ok())
                            .map(|q| q.milli_value() / 1000);
                        mount_tmpfs(&dir, size)?;
                    }
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                        .map_err(io)?;
                    if let Some(g) = fs_group {
                        std::os::unix::fs::chown(&dir, None, Some(g)).map_err(io)?;
                        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2777))
                            .map_err(io)?;
                    }
                }
                // Other volume kinds (persistent volumes, CSI, …) are not supported yet: an
                // empty directory stands in.
            }
        }
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// Unmount everything under the pod dir (deepest first) and remove it.
pub fn teardown(pod_dir: &Path) {
    let prefix = pod_dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = std::process::Command::new("umount").arg(&p).output();
    }
    if !mounted(pod_dir) {
        let _ = std::fs::remove_dir_all(pod_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookups() -> Lookups {
        let mut l = Lookups::default();
        l.secrets.insert(
            "s".into(),
            Some(
                serde_json::from_value(json!({"data": {"user": "YWRtaW4=", "pw": "eA=="}}))
                    .unwrap(),
            ),
        );
        l.config_maps.insert(
            "c".into(),
            Some(serde_json::from_value(json!({"data": {"a.conf": "x=1"}})).unwrap()),
        );
        l
    }

    fn rt() -> Runtime<'static> {
        Runtime {
            pod_ip: "10.42.0.9",
            host_ip: "h",
            node_cpu_milli: 1000,
            node_memory: 1 << 30,
        }
    }

    fn files_of(v: serde_json::Value) -> Result<Option<Vec<File>>, String> {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}})).unwrap();
        let v: Volume = serde_json::from_value(v).unwrap();
        files(&pod, &v, &lookups(), &rt())
    }

    #[test]
    fn volume_files_table() {
        let f = |p: &str, c: &str, m: u32| (p.to_string(), c.as_bytes().to_vec(), m);
        type Case = (
            &'static str,
            serde_json::Value,
            Result<Option<Vec<File>>, String>,
        );
        let cases: Vec<Case> = vec![
            (
                "secret, all keys",
                json!({"name": "v", "secret": {"secretName": "s"}}),
                Ok(Some(vec![f("pw", "x", 0o644), f("user", "admin", 0o644)])),
            ),
            (
                "secret items and modes",
                json!({"name": "v", "secret": {"secretName": "s", "defaultMode": 0o400, "items": [{"key": "user", "path": "u/name"}, {"key": "pw", "path": "p", "mode": 0o600}]}}),
                Ok(Some(vec![f("u/name", "admin", 0o400), f("p", "x", 0o600)])),
            ),
            (
                "missing secret",
                json!({"name": "v", "secret": {"secretName": "nope"}}),
                Err("MountVolume.SetUp failed for volume \"v\" : secret \"nope\" not found".into()),
            ),
            (
                "optional missing secret",
                json!({"name": "v", "secret": {"secretName": "nope", "optional": true}}),
                Ok(Some(vec![])),
            ),
            (
                "missing key",
                json!({"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "k"}]}}),
                Err("secret references non-existent config key: k".into()),
            ),
            (
                "configMap",
                json!({"name": "v", "configMap": {"name": "c"}}),
                Ok(Some(vec![f("a.conf", "x=1", 0o644)])),
            ),
            (
                "downwardAPI",
                json!({"name": "v", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}, {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}),
                Ok(Some(vec![
                    f("labels", "a=\"b\"", 0o644),
                    f("name", "p", 0o644),
                ])),
            ),
            (
                "projected",
                json!({"name": "v", "projected": {"sources": [{"secret": {"name": "s", "items": [{"key": "user", "path": "user"}]}}, {"configMap": {"name": "c"}}]}}),
                Ok(Some(vec![
                    f("user", "admin", 0o644),
                    f("a.conf", "x=1", 0o644),
                ])),
            ),
            (
                "emptyDir is not API-backed",
                json!({"name": "v", "emptyDir": {}}),
                Ok(None),
            ),
        ];
        for (name, v, want) in cases {
            assert_eq!(files_of(v), want, "{name}");
        }
    }

    #[test]
    fn atomic_writer_swaps_and_prunes() {
        let d = tempfile::tempdir().unwrap();
        let v1 = vec![
            ("a".to_string(), b"1".to_vec(), 0o644),
            ("sub/b".to_string(), b"2".to_vec(), 0o600),
        ];
        assert!(write_atomic(d.path(), &v1, None).unwrap());
        assert_eq!(std::fs::read_to_string(d.path().join("a")).unwrap(), "1");
        assert_eq!(
            std::fs::read_to_string(d.path().join("sub/b")).unwrap(),
            "2"
        );
        assert!(
            !write_atomic(d.path(), &v1, None).unwrap(),
            "unchanged content is not rewritten"
        );
        let v2 = vec![("a".to_string(), b"3".to_vec(), 0o644)];
        assert!(write_atomic(d.path(), &v2, None).unwrap());
        assert_eq!(std::fs::read_to_string(d.path().join("a")).unwrap(), "3");
        assert!(
            d.path().join("sub").symlink_metadata().is_err(),
            "removed key's link is gone"
        );
        let dirs = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .count();
        assert_eq!(dirs, 1, "old timestamped dir removed");
    }

    #[test]
    fn host_path_types() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("x/y");
        let p = dir.to_str().unwrap();
        assert!(host_path_check(p, "Directory").is_err());
        host_path_check(p, "DirectoryOrCreate").unwrap();
        host_path_check(p, "Directory").unwrap();
        assert_eq!(
            host_path_check(p, "File"),
            Err(format!("hostPath type check failed: {p} is not a file"))
        );
        let f = d.path().join("f");
        host_path_check(f.to_str().unwrap(), "FileOrCreate").unwrap();
        host_path_check(f.to_str().unwrap(), "File").unwrap();
    }
}
