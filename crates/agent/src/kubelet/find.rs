//! Finding a pod's containers and sandbox in CRI by the labels the pod sync loop puts on them
//! (`io.kubernetes.pod.{name,namespace,uid}`, `io.kubernetes.container.name`; CRI metadata
//! `attempt` = restart count), and choosing the current or previous one (pure).

use super::paths::Target;
use crate::cri::Runtime;
use k8s_cri::v1 as cri;
use std::collections::HashMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// A container of the pod as CRI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub created_at: i64,
    pub running: bool,
}

/// The container name to use: the requested one, or the pod's only one.
pub fn pick_name(pod: &str, requested: &str, names: &[String]) -> Result<String, String> {
    if !requested.is_empty() {
        return Ok(requested.to_string());
    }
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!("a container name must be specified for pod {pod}")),
        many => Err(format!(
            "a container name must be specified for pod {pod}, choose one of: [{}]",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )),
    }
}

fn newest<'a>(it: impl Iterator<Item = &'a Candidate>) -> Option<&'a Candidate> {
    it.max_by_key(|c| (c.attempt, c.created_at))
}

/// The current container of `name`: the highest attempt (ties: the newest).
pub fn current<'a>(all: &'a [Candidate], name: &str) -> Option<&'a Candidate> {
    newest(all.iter().filter(|c| c.name == name))
}

/// The previous container of `name`: the newest one of a lower attempt than the current.
pub fn previous<'a>(all: &'a [Candidate], name: &str) -> Option<&'a Candidate> {
    let cur = current(all, name)?;
    newest(
        all.iter()
            .filter(|c| c.name == name && c.attempt < cur.attempt),
    )
}

fn selector(t: &Target) -> HashMap<String, String> {
    let mut m = HashMap::from([
        (POD_NAMESPACE.to_string(), t.namespace.clone()),
        (POD_NAME.to_string(), t.pod.clone()),
    ]);
    if let Some(uid) = &t.uid {
        m.insert(POD_UID.to_string(), uid.clone());
    }
    m
}

/// All containers CRI has for the pod.
pub async fn containers(rt: &mut Runtime, t: &Target) -> Result<Vec<Candidate>, tonic::Status> {
    let list = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                label_selector: selector(t),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let name = c.labels.get(CONTAINER_NAME)?.clone();
            Some(Candidate {
                attempt: c.metadata.as_ref().map_or(0, |m| m.attempt),
                running: c.state == cri::ContainerState::ContainerRunning as i32,
                id: c.id,
                name,
                created_at: c.created_at,
            })
        })
        .collect())
}

/// The newest ready sandbox of the pod.
pub async fn sandbox(rt: &mut Runtime, t: &Target) -> Result<Option<String>, tonic::Status> {
    let list = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: selector(t),
                state: Some(cri::PodSandboxStateValue {
                    state: cri::PodSandboxState::SandboxReady as i32,
                }),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .items;
    Ok(list.into_iter().max_by_key(|s| s.created_at).map(|s| s.id))
}

/// The `<pod>_<namespace>` name the kubelet uses in messages.
pub fn full_name(t: &Target) -> String {
    format!("{}_{}", t.pod, t.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str, attempt: u32, created_at: i64) -> Candidate {
        Candidate {
            id: id.into(),
            name: name.into(),
            attempt,
            created_at,
            running: false,
        }
    }

    #[test]
    fn picks_the_container_name() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: Vec<(&str, Vec<String>, Result<String, String>)> = vec![
            ("main", names(&["a", "b"]), Ok("main".into())),
            ("", names(&["a", "a"]), Ok("a".into())),
            (
                "",
                names(&["b", "a", "b"]),
                Err("a container name must be specified for pod web, choose one of: [a b]".into()),
            ),
            (
                "",
                vec![],
                Err("a container name must be specified for pod web".into()),
            ),
        ];
        for (req, names, want) in cases {
            assert_eq!(pick_name("web", req, &names), want, "{req} {names:?}");
        }
    }

    #[test]
    fn chooses_current_and_previous() {
        let all = vec![
            c("a0", "a", 0, 10),
            c("a1", "a", 1, 20),
            c("a1b", "a", 1, 15),
            c("b0", "b", 0, 5),
            c("c0", "c", 0, 1),
            c("c2", "c", 2, 3),
            c("c1", "c", 1, 2),
        ];
        // name, current id, previous id
        let cases = [
            ("a", Some("a1"), Some("a0")),
            ("b", Some("b0"), None),
            ("c", Some("c2"), Some("c1")),
            ("zz", None, None),
        ];
        for (name, cur, prev) in cases {
            assert_eq!(
                current(&all, name).map(|c| c.id.as_str()),
                cur,
                "current {name}"
            );
            assert_eq!(
                previous(&all, name).map(|c| c.id.as_str()),
                prev,
                "previous {name}"
            );
        }
    }
}
