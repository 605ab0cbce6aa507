//! Objects every cluster has from its first start: the four system namespaces, the
//! `kubernetes` Service (first IP of the service CIDR), the built-in priority classes.
//! Creating them is idempotent, so later starts leave them alone — except the `kubernetes`
//! Endpoints and EndpointSlice, which each start sets to this server's advertised address
//! (kube-apiserver's endpoint reconciler).

/// Store `obj` under its key unless the stored one already has the same `field`.
async fn reconcile_object(
    api: &Arc<ApiServer>,
    plural: &str,
    group: &str,
    version: &str,
    obj: Value,
    field: &str,
) -> anyhow::Result<()> {
    let res = resources::find(group, version, plural).expect("registered");
    let key = res.key(meta::namespace(&obj), meta::name(&obj));
    let Some(kv) = api.store.get(&key).await? else {
        return ensure_object(api, plural, group, version, obj).await;
    };
    let mut old: Value = serde_json::from_slice(&kv.value)?;
    if old[field] == obj[field] {
        return Ok(());
    }
    old[field] = obj[field].clone();
    match api
        .store
        .update(&key, codec::encode_stored(&old), kv.mod_revision)
        .await
    {
        Ok(_) | Err(capstan_store::Error::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

use crate::{codec, meta, ApiServer};
use capstan_api::resources;
use serde_json::{json, Value};
use std::sync::Arc;

async fn ensure_object(
    api: &Arc<ApiServer>,
    plural: &str,
    group: &str,
    version: &str,
    obj: Value,
) -> anyhow::Result<()> {
    let res = resources::find(group, version, plural).expect("registered");
    let key = res.key(meta::namespace(&obj), meta::name(&obj));
    if api.store.get(&key).await?.is_some() {
        return Ok(());
    }
    let mut obj = obj;
    let m = meta::meta_mut(&mut obj);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    match api.store.create(&key, codec::encode_stored(&obj)).await {
        Ok(_) | Err(capstan_store::Error::KeyExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn ensure(api: &Arc<ApiServer>) -> anyhow::Result<()> {
    for ns in crate::admission::SYSTEM_NAMESPACES {
        ensure_object(
            api,
            "namespaces",
            "",
            "v1",
            json!({
                "kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            }),
        )
        .await?;
        ensure_object(
            api,
            "serviceaccounts",
            "",
            "v1",
            json!({
                "kind": "ServiceAccount", "apiVersion": "v1",
                "metadata": {"name": "default", "namespace": ns}
            }),
        )
        .await?;
    }
    let ip = api.config.service_cidr.nth(1).to_string();
    ensure_object(
        api,
        "services",
        "",
        "v1",
        json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster"
            },
            "status": {"loadBalancer": {}}
        }),
    )
    .await?;
    if let Some((ip, port)) = &api.config.advertise {
        let labels = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
        reconcile_object(
            api,
            "endpoints",
            "",
            "v1",
            json!({
                "kind": "Endpoints", "apiVersion": "v1",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                "subsets": [{"addresses": [{"ip": ip}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
            }),
            "subsets",
        )
        .await?;
        reconcile_object(
            api,
            "endpointslices",
            "discovery.k8s.io",
            "v1",
            json!({
                "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
            }),
            "endpoints",
        )
        .await?;
        reconcile_object(
            api,
            "endpointslices",
            "discovery.k8s.io",
            "v1",
            json!({
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
            }),
            "ports",
        )
        .await?;
    }
    for (name, value, desc) in [
        ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ] {
        ensure_object(api, "priorityclasses", "scheduling.k8s.io", "v1", json!({
            "kind": "PriorityClass", "apiVersion": "scheduling.k8s.io/v1",
            "metadata": {"name": name}, "value": value, "globalDefault": false,
            "description": desc, "preemptionPolicy": "PreemptLowerPriority"
        })).await?;
    }
    Ok(())
}
