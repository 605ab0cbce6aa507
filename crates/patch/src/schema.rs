//! Patch metadata for the built-in kinds: a compact, hand-written type graph carrying the
//! `patchStrategy`/`patchMergeKey` tags (strategic merge patch) and the
//! `listType`/`listMapKey`/`structType` markers (server-side apply) of k8s.io/api.
//!
//! Types not in the table (maps of strings, affinity, probes, …) are "untyped": their maps merge
//! recursively and their lists are atomic, which is what their tags say anyway.

/// How strategic merge patch treats a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpList {
    /// No `patchStrategy`: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"`: lists of maps merge by `patchMergeKey`, primitive lists as sets.
    Merge {
        /// `patchMergeKey`; `None` for primitive lists.
        key: Option<&'static str>,
    },
}

/// How server-side apply treats a list (`+listType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsaList {
    /// `+listType=atomic` (the default): owned and replaced as one value.
    Atomic,
    /// `+listType=set`: primitive items, each owned separately (`v:` path elements).
    Set,
    /// `+listType=map`: items identified by `+listMapKey` fields (`k:` path elements).
    Map(&'static [MapKey]),
}

/// One `+listMapKey` field, with the OpenAPI default used when an item omits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapKey {
    /// Field name of the key.
    pub name: &'static str,
    /// Value assumed when the item omits the field (`protocol` defaults to `"TCP"`).
    pub default: Option<&'static str>,
}

/// Everything known about one list-valued field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListMeta {
    /// Strategic-merge-patch treatment.
    pub smp: SmpList,
    /// Server-side-apply treatment.
    pub ssa: SsaList,
    /// Schema of the items (untyped for primitives and untabled types).
    pub item: PatchSchema,
}

impl ListMeta {
    const ATOMIC: ListMeta = ListMeta {
        smp: SmpList::Replace,
        ssa: SsaList::Atomic,
        item: PatchSchema::UNTYPED,
    };
}

#[derive(Debug)]
enum Field {
    Struct(&'static TypeDef),
    List(ListMeta),
}

/// One struct type of the graph.
#[derive(Debug)]
pub struct TypeDef {
    name: &'static str,
    /// `+structType=atomic`: server-side apply owns it as one value.
    atomic: bool,
    fields: &'static [(&'static str, Field)],
}

/// A position in the type graph; navigate with [`PatchSchema::field`] and [`PatchSchema::list`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSchema {
    ty: Option<&'static TypeDef>,
}

impl PartialEq for TypeDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for TypeDef {}

impl PatchSchema {
    /// No type information: maps merge, lists are atomic.
    pub const UNTYPED: PatchSchema = PatchSchema { ty: None };

    /// Name of the Kubernetes type at this position, if known.
    pub fn type_name(&self) -> Option<&'static str> {
        self.ty.map(|t| t.name)
    }

    /// Whether server-side apply treats this struct as a single value.
    pub fn is_atomic(&self) -> bool {
        self.ty.is_some_and(|t| t.atomic)
    }

    fn lookup(&self, name: &str) -> Option<&'static Field> {
        self.ty?
            .fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
    }

    /// Schema of a map/struct-valued field.
    pub fn field(&self, name: &str) -> PatchSchema {
        match self.lookup(name) {
            Some(Field::Struct(t)) => PatchSchema { ty: Some(t) },
            _ => PatchSchema::UNTYPED,
        }
    }

    /// Metadata of a list-valued field (atomic with untyped items when unknown).
    pub fn list(&self, name: &str) -> ListMeta {
        match self.lookup(name) {
            Some(Field::List(l)) => *l,
            _ => ListMeta::ATOMIC,
        }
    }
}

const fn key(name: &'static str) -> MapKey {
    MapKey {
        name,
        default: None,
    }
}
const TCP_PROTOCOL: MapKey = MapKey {
    name: "protocol",
    default: Some("TCP"),
};

/// List merged by `k` in both SMP and SSA, items of type `item`.
const fn keyed(k: &'static str, keys: &'static [MapKey], item: Option<&'static TypeDef>) -> Field {
    Field::List(ListMeta {
        smp: SmpList::Merge { key: Some(k) },
        ssa: SsaList::Map(keys),
        item: PatchSchema { ty: item },
    })
}
/// Primitive list merged as a set.
const SET: Field = Field::List(ListMeta {
    smp: SmpList::Merge { key: None },
    ssa: SsaList::Set,
    item: PatchSchema::UNTYPED,
});
/// `patchStrategy:"merge" patchMergeKey:"type"` conditions, `+listType=map +listMapKey=type`.
const CONDITIONS: Field = keyed("type", &[key("type")], None);
/// SMP-merged by `k`, but `+listType=atomic` for SSA.
const fn smp_only(k: &'static str) -> Field {
    Field::List(ListMeta {
        smp: SmpList::Merge { key: Some(k) },
        ssa: SsaList::Atomic,
        item: PatchSchema::UNTYPED,
    })
}
/// SSA map by `keys`, atomic for SMP (no patch tags).
const fn ssa_only(keys: &'static [MapKey]) -> Field {
    Field::List(ListMeta {
        smp: SmpList::Replace,
        ssa: SsaList::Map(keys),
        item: PatchSchema::UNTYPED,
    })
}

macro_rules! types {
    ($($id:ident $(($a:expr))? { $($f:literal => $v:expr),* $(,)? })*) => {
        $(#[allow(non_upper_case_globals)]
        static $id: TypeDef = TypeDef {
            name: stringify!($id),
            atomic: false $(|| $a)?,
            fields: &[$(($f, $v)),*],
        };)*
    };
}

types! {
    ObjectMeta {
        "ownerReferences" => keyed("uid", &[key("uid")], None),
        "finalizers" => SET,
    }
    LabelSelector (true) {}
    Container {
        "ports" => keyed("containerPort", &[key("containerPort"), TCP_PROTOCOL], None),
        "env" => keyed("name", &[key("name")], None),
        "volumeMounts" => keyed("mountPath", &[key("mountPath")], None),
        "volumeDevices" => keyed("devicePath", &[key("devicePath")], None),
        "resources" => Field::Struct(&ResourceRequirements),
    }
    ResourceRequirements {
        "claims" => ssa_only(&[key("name")]),
    }
    PodSpec {
        "volumes" => keyed("name", &[key("name")], None),
        "initContainers" => keyed("name", &[key("name")], Some(&Container)),
        "containers" => keyed("name", &[key("name")], Some(&Container)),
        "ephemeralContainers" => keyed("name", &[key("name")], Some(&Container)),
        "imagePullSecrets" => keyed("name", &[key("name")], None),
        "hostAliases" => keyed("ip", &[key("ip")], None),
        "topologySpreadConstraints" => keyed("topologyKey", &[key("topologyKey"), key("whenUnsatisfiable")], None),
        "resourceClaims" => keyed("name", &[key("name")], None),
        "schedulingGates" => keyed("name", &[key("name")], None),
    }
    PodStatus {
        "conditions" => CONDITIONS,
        "podIPs" => keyed("ip", &[key("ip")], None),
        "hostIPs" => keyed("ip", &[key("ip")], None),
        "resourceClaimStatuses" => keyed("name", &[key("name")], None),
    }
    Pod {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&PodSpec),
        "status" => Field::Struct(&PodStatus),
    }
    PodTemplateSpec {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&PodSpec),
    }
    PodTemplate {
        "metadata" => Field::Struct(&ObjectMeta),
        "template" => Field::Struct(&PodTemplateSpec),
    }
    ConditionsStatus {
        "conditions" => CONDITIONS,
    }
    WorkloadSpec {
        "selector" => Field::Struct(&LabelSelector),
        "template" => Field::Struct(&PodTemplateSpec),
    }
    Workload {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&WorkloadSpec),
        "status" => Field::Struct(&ConditionsStatus),
    }
    JobSpec {
        "selector" => Field::Struct(&LabelSelector),
        "template" => Field::Struct(&PodTemplateSpec),
    }
    JobStatus {
        "conditions" => Field::List(ListMeta { smp: SmpList::Merge { key: Some("type") }, ssa: SsaList::Atomic, item: PatchSchema::UNTYPED }),
    }
    Job {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&JobSpec),
        "status" => Field::Struct(&JobStatus),
    }
    JobTemplateSpec {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&JobSpec),
    }
    CronJobSpec {
        "jobTemplate" => Field::Struct(&JobTemplateSpec),
    }
    CronJob {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&CronJobSpec),
    }
    ServiceSpec {
        "ports" => keyed("port", &[key("port"), TCP_PROTOCOL], None),
    }
    Service {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&ServiceSpec),
        "status" => Field::Struct(&ConditionsStatus),
    }
    NodeSpec {
        "podCIDRs" => SET,
    }
    NodeStatus {
        "conditions" => CONDITIONS,
        "addresses" => smp_only("type"),
    }
    Node {
        "metadata" => Field::Struct(&ObjectMeta),
        "spec" => Field::Struct(&NodeSpec),
        "status" => Field::Struct(&NodeStatus),
    }
    ConditionsObject {
        "metadata" => Field::Struct(&ObjectMeta),
        "status" => Field::Struct(&ConditionsStatus),
    }
    Object {
        "metadata" => Field::Struct(&ObjectMeta),
    }
}

/// Patch metadata for a kind. Kinds without list tags of their own get `metadata` only.
pub fn schema_for(api_version: &str, kind: &str) -> PatchSchema {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let ty: &'static TypeDef = match (group, kind) {
        ("", "Pod") => &Pod,
        ("", "PodTemplate") => &PodTemplate,
        ("apps" | "extensions", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") => {
            &Workload
        }
        ("", "ReplicationController") => &Workload,
        ("batch", "Job") => &Job,
        ("batch", "CronJob") => &CronJob,
        ("", "Service") => &Service,
        ("", "Node") => &Node,
        ("", "Namespace" | "PersistentVolumeClaim" | "PersistentVolume") => &ConditionsObject,
        _ => &Object,
    };
    PatchSchema { ty: Some(ty) }
}

/// Schema of a Pod template (`PodTemplateSpec`), for callers that patch templates directly.
pub fn pod_template_schema() -> PatchSchema {
    PatchSchema {
        ty: Some(&PodTemplateSpec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigates_the_type_graph() {
        let cases: &[(&str, &str, &[&str], &str, SmpList)] = &[
            (
                "apps/v1",
                "Deployment",
                &["spec", "template", "spec"],
                "containers",
                SmpList::Merge { key: Some("name") },
            ),
            (
                "batch/v1",
                "CronJob",
                &["spec", "jobTemplate", "spec", "template", "spec"],
                "volumes",
                SmpList::Merge { key: Some("name") },
            ),
            ("v1", "Pod", &["spec"], "tolerations", SmpList::Replace),
            (
                "v1",
                "Pod",
                &["metadata"],
                "finalizers",
                SmpList::Merge { key: None },
            ),
            (
                "v1",
                "Service",
                &["spec"],
                "ports",
                SmpList::Merge { key: Some("port") },
            ),
            (
                "v1",
                "ConfigMap",
                &["metadata"],
                "ownerReferences",
                SmpList::Merge { key: Some("uid") },
            ),
            (
                "example.com/v1",
                "Widget",
                &["spec"],
                "items",
                SmpList::Replace,
            ),
        ];
        for (av, kind, path, list, want) in cases {
            let mut s = schema_for(av, kind);
            for p in *path {
                s = s.field(p);
            }
            assert_eq!(s.list(list).smp, *want, "{kind} {path:?} {list}");
        }
        let c = schema_for("v1", "Pod")
            .field("spec")
            .list("containers")
            .item;
        assert_eq!(
            c.list("ports").smp,
            SmpList::Merge {
                key: Some("containerPort")
            }
        );
        assert!(schema_for("apps/v1", "Deployment")
            .field("spec")
            .field("selector")
            .is_atomic());
    }
}
