//! The images every Capstan node has offline, built from this machine's own packages: the pod
//! sandbox (pause, compiled from `pause/pause.c` with `gcc -static`) and busybox (Debian's
//! busybox-static with a link per applet).

use crate::archive::{docker_archive, Entry, ImageConfig, Rootfs};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The sandbox image reference containerd is configured with.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Tags of the busybox image.
pub const BUSYBOX_TAGS: &[&str] = &[
    "docker.io/library/busybox:latest",
    "docker.io/library/busybox:1.36",
    "docker.io/library/busybox:stable",
];

const PAUSE_C: &str = include_str!("../pause/pause.c");
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn base_dirs(r: &mut Rootfs) {
    for (d, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o755),
        ("sys", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        r.insert(d.into(), Entry::Dir { mode });
    }
}

/// Compile pause.c statically and wrap it as an image. Returns the tarball.
pub fn pause_image(work: &Path) -> Result<Vec<u8>> {
    let src = work.join("pause.c");
    let bin = work.join("pause");
    std::fs::write(&src, PAUSE_C)?;
    let out = Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .context("running gcc (apt-get install gcc libc6-dev)")?;
    if !out.status.success() {
        bail!("gcc failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = Command::new("strip").arg(&bin).status();
    let mut r = Rootfs::new();
    base_dirs(&mut r);
    r.insert(
        "pause".into(),
        Entry::File {
            mode: 0o755,
            data: std::fs::read(&bin)?,
        },
    );
    let cfg = ImageConfig {
        entrypoint: Some(vec!["/pause".into()]),
        cmd: None,
        env: vec![PATH_ENV.into()],
    };
    Ok(docker_archive(&r, &cfg, &[PAUSE_IMAGE, "capstan.local/pause:3.10"])?.0)
}

/// Debian's static busybox with a link for every applet, /etc/passwd and /etc/group.
pub fn busybox_image(busybox: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(busybox).with_context(|| {
        format!(
            "reading {} (apt-get install busybox-static)",
            busybox.display()
        )
    })?;
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .context("running busybox --list-full")?;
    if !list.status.success() {
        bail!("{} --list-full failed", busybox.display());
    }
    let mut r = Rootfs::new();
    base_dirs(&mut r);
    for d in ["sbin", "usr", "usr/bin", "usr/sbin", "var", "home"] {
        r.insert(d.into(), Entry::Dir { mode: 0o755 });
    }
    r.insert("bin/busybox".into(), Entry::File { mode: 0o755, data });
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let path = applet.trim_start_matches('/').to_string();
        if path == "bin/busybox" || r.contains_key(&path) {
            continue;
        }
        if let Some((dir, _)) = path.rsplit_once('/') {
            r.entry(dir.to_string())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
        r.insert(
            path,
            Entry::Symlink {
                target: "/bin/busybox".into(),
            },
        );
    }
    r.insert(
        "etc/passwd".into(),
        Entry::File {
            mode: 0o644,
            data: b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
                .to_vec(),
        },
    );
    r.insert(
        "etc/group".into(),
        Entry::File {
            mode: 0o644,
            data: b"root:x:0:\nnobody:x:65534:\n".to_vec(),
        },
    );
    let cfg = ImageConfig {
        entrypoint: None,
        cmd: Some(vec!["sh".into()]),
        env: vec![PATH_ENV.into()],
    };
    Ok(docker_archive(&r, &cfg, BUSYBOX_TAGS)?.0)
}

/// Write `pause.tar` and `busybox.tar` into `out`.
pub fn build_builtin(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let work = out.join(".build");
    std::fs::create_dir_all(&work)?;
    std::fs::write(out.join("pause.tar"), pause_image(&work)?)?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .unwrap_or(Path::new("/bin/busybox"));
    std::fs::write(out.join("busybox.tar"), busybox_image(busybox)?)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
