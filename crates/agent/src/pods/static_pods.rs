//! Static pods, as the kubelet runs them from `--pod-manifest-path`: each manifest file is one
//! pod, named `<name>-<node>`, identified by a hash of its content (the CRI uid), run by a
//! worker like any other pod; a mirror pod (annotation `kubernetes.io/config.mirror`) stands for
//! it in the API, gets its status, and is recreated when someone deletes it. Removing the file
//! stops the pod and deletes the mirror.

use super::{dispatch, Ctx, Workers};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// Set on the static pod handed to its worker: the uid of its current mirror, so a new mirror
/// gets the status reported afresh.
pub const MIRROR_UID: &str = "capstan.io/mirror-uid";

/// The static pod a manifest describes on `node` (pure): name suffixed with the node, default
/// namespace, bound to the node, uid and config annotations from the content hash.
pub fn from_manifest(text: &str, source: &str, node: &str) -> Result<Pod, String> {
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("{source}: {e}"))?;
    if v["kind"] != "Pod" {
        return Err(format!("{source}: kind {:?} is not Pod", v["kind"]));
    }
    let mut pod: Pod = serde_json::from_value(v).map_err(|e| format!("{source}: {e}"))?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{source}: metadata.name is required"))?;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (text, node, source).hash(&mut h);
    let hash = format!("{:016x}{:016x}", h.finish(), h.finish().rotate_left(17));
    let m = &mut pod.metadata;
    m.name = Some(format!("{name}-{node}"));
    m.namespace = Some(
        m.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
    );
    m.uid = Some(hash.clone());
    let ann = m.annotations.get_or_insert_with(Default::default);
    ann.insert("kubernetes.io/config.source".into(), "file".into());
    ann.insert("kubernetes.io/config.hash".into(), hash);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    let qos = super::spec::compute_qos(spec);
    pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
        qos_class: Some(qos.into()),
        ..Default::default()
    });
    Ok(pod)
}

fn read_dir(dir: &Path, node: &str) -> HashMap<String, Pod> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.')
            || !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match from_manifest(&text, &f.to_string_lossy(), node) {
            Ok(p) => {
                out.insert(p.metadata.uid.clone().unwrap_or_default(), p);
            }
            Err(e) => tracing::warn!(error = %e, "static pod manifest"),
        }
    }
    out
}

/// The mirror pod object for a static pod.
fn mirror(pod: &Pod, node_uid: &str, node: &str) -> Value {
    let mut v = serde_json::to_value(pod).unwrap_or_default();
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    let meta = v["metadata"].as_object_mut().expect("metadata");
    meta.remove("uid");
    meta.remove("resourceVersion");
    v["metadata"]["annotations"][MIRROR] = json!(hash);
    v["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid, "controller": true}]);
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Pod");
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// Make sure the mirror of `pod` exists (and is of this version of the manifest); its uid.
async fn ensure_mirror(ctx: &Ctx, pod: &Pod, node_uid: &str) -> Option<String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    if let Ok(a) = ctx.api.call("GET", &path, None).await {
        if a.code == 200 {
            if a.body["metadata"]["annotations"][MIRROR] == json!(hash)
                && a.body["metadata"]["deletionTimestamp"].is_null()
            {
                return a.body["metadata"]["uid"].as_str().map(String::from);
            }
            let uid = a.body["metadata"]["uid"].clone();
            let _ = ctx
                .api
                .call(
                    "DELETE",
                    &path,
                    Some(&json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})),
                )
                .await;
        }
    }
    let body = mirror(pod, node_uid, &ctx.node);
    match ctx
        .api
        .call(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            Some(&body),
        )
        .await
    {
        Ok(a) if a.code == 201 => a.body["metadata"]["uid"].as_str().map(String::from),
        Ok(a) if a.code == 409 => None,
        Ok(a) => {
            tracing::warn!(code = a.code, body = %a.body, pod = %name, "creating mirror pod");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "creating mirror pod");
            None
        }
    }
}

/// Watch the manifest dir and keep static pods and their mirrors in line with it.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    dir: PathBuf,
    workers: Workers,
    uids: Arc<Mutex<HashSet<String>>>,
) {
    let mut running: HashMap<String, Pod> = HashMap::new();
    let mut mirrors: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let want = read_dir(&dir, &ctx.node);
        *uids.lock().expect("static uids") = want.keys().cloned().collect();
        // Static pods run whether or not the API server is reachable.
        for (uid, pod) in &want {
            if !running.contains_key(uid) {
                dispatch(&ctx, &workers, Some(pod.clone()), uid);
            }
        }
        for (uid, pod) in &running {
            if !want.contains_key(uid) {
                dispatch(&ctx, &workers, None, uid);
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
                if let Ok(a) = ctx.api.call("GET", &path, None).await {
                    if a.code == 200 && a.body["metadata"]["annotations"][MIRROR] == json!(uid) {
                        let _ = ctx
                            .api
                            .call("DELETE", &path, Some(&json!({"gracePeriodSeconds": 0})))
                            .await;
                    }
                }
            }
        }
        let node_uid = match ctx
            .api
            .call("GET", &format!("/api/v1/nodes/{}", ctx.node), None)
            .await
        {
            Ok(a) if a.code == 200 => a.body["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            _ => {
                running = want;
                continue;
            }
        };
        for (uid, pod) in &want {
            let Some(mirror_uid) = ensure_mirror(&ctx, pod, &node_uid).await else {
                continue;
            };
            if mirrors.get(uid) != Some(&mirror_uid) {
                let mut p = pod.clone();
                p.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(MIRROR_UID.into(), mirror_uid.clone());
                dispatch(&ctx, &workers, Some(p), uid);
                mirrors.insert(uid.clone(), mirror_uid);
            }
        }
        mirrors.retain(|u, _| want.contains_key(u));
        running = want;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_static_pods() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox, resources: {limits: {cpu: 100m, memory: 10Mi}}}]\n";
        let p = from_manifest(text, "/etc/m/web.yaml", "n1").unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(p.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()["kubernetes.io/config.hash"],
            uid
        );
        assert_eq!(
            p.status.as_ref().unwrap().qos_class.as_deref(),
            Some("Guaranteed")
        );
        // The same content gives the same uid; a change gives another.
        assert_eq!(
            from_manifest(text, "/etc/m/web.yaml", "n1")
                .unwrap()
                .metadata
                .uid
                .unwrap(),
            uid
        );
        let changed = text.replace("busybox", "busybox:1.36");
        assert_ne!(
            from_manifest(&changed, "/etc/m/web.yaml", "n1")
                .unwrap()
                .metadata
                .uid
                .unwrap(),
            uid
        );
        let m = mirror(&p, "NODE-UID", "n1");
        assert_eq!(m["metadata"]["annotations"][MIRROR], json!(uid));
        assert!(m["metadata"]["uid"].is_null());
        assert_eq!(m["metadata"]["ownerReferences"][0]["kind"], "Node");
        for bad in [
            "kind: Service\nmetadata: {name: x}\n",
            "apiVersion: v1\nkind: Pod\nspec: {containers: []}\n",
            ": : :",
        ] {
            assert!(from_manifest(bad, "f", "n1").is_err(), "{bad}");
        }
    }
}
