//! Image reference normalization as container runtimes resolve Docker Hub short names
//! (`busybox` ≡ `docker.io/library/busybox:latest`), so that pod images and the names in
//! `node.status.images` meet (kube itself only appends `:latest`).

/// `busybox` → `docker.io/library/busybox:latest`, `foo/bar:1` → `docker.io/foo/bar:1`,
/// `host:5000/x` → `host:5000/x:latest`, `index.docker.io/x` → `docker.io/library/x:latest`;
/// a digest is kept (and no tag is added next to it).
pub fn normalize_image(reference: &str) -> String {
    let r = reference.trim();
    if r.is_empty() {
        return String::new();
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let rest = if domain == "docker.io" && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest
    };
    let tagged = rest
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let mut out = format!("{domain}/{rest}");
    if !tagged && digest.is_none() {
        out.push_str(":latest");
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}
