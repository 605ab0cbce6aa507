//! List+watch of one resource, sent to the scheduler thread as whole lists (after every
//! (re)list) and then as single changes; a watch that ends or fails is resumed from the last
//! resourceVersion seen, and after 410 Gone by a fresh list.

use capstan_agent::api::Api;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// One change of a watched resource.
pub enum Change<T> {
    /// The complete current set (after a list).
    Reset(Vec<T>),
    Upsert(T),
    Delete(T),
}

async fn list<T: DeserializeOwned>(api: &Api, path: &str) -> Option<(Vec<T>, String)> {
    let a = api
        .call("GET", path, None)
        .await
        .ok()
        .filter(|a| a.code == 200)?;
    let mut body = a.body;
    let rv = body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let items = match body["items"].take() {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    };
    Some((items, rv))
}

/// Inform `send` about `path` (a collection path) until `send` returns false.
pub async fn run<T: DeserializeOwned>(api: Api, path: &str, send: impl Fn(Change<T>) -> bool) {
    'relist: loop {
        let Some((items, mut rv)) = list::<T>(&api, path).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if !send(Change::Reset(items)) {
            return;
        }
        loop {
            let url = format!("{path}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}");
            let Ok(mut w) = api.watch(&url).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue 'relist;
            };
            loop {
                let ev = match w.next().await {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(_) => continue 'relist,
                };
                let mut ev = ev;
                let kind = ev["type"].as_str().unwrap_or_default().to_string();
                if let Some(v) = ev["object"]["metadata"]["resourceVersion"].as_str() {
                    rv = v.to_string();
                }
                match kind.as_str() {
                    "ERROR" => continue 'relist,
                    "BOOKMARK" => continue,
                    _ => {}
                }
                let Ok(obj) = serde_json::from_value::<T>(ev["object"].take()) else {
                    continue;
                };
                let change = if kind == "DELETED" {
                    Change::Delete(obj)
                } else {
                    Change::Upsert(obj)
                };
                if !send(change) {
                    return;
                }
            }
        }
    }
}
