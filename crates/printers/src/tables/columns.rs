//! Column definitions per kind, as kube-apiserver's `printers.go` `AddHandlers` (v1.32) declares them.

use super::descriptions as d;
use super::ColumnDefinition;

fn c(name: &str, ty: &str, format: &str, description: &str, priority: i32) -> ColumnDefinition {
    ColumnDefinition {
        name: name.to_string(),
        type_: ty.to_string(),
        format: format.to_string(),
        description: description.to_string(),
        priority,
    }
}

fn name() -> ColumnDefinition {
    c("Name", "string", "name", d::META_NAME, 0)
}

fn age() -> ColumnDefinition {
    c("Age", "string", "", d::META_CREATION_TIMESTAMP, 0)
}

const CONTAINERS: &str = "Names of each container in the template.";
const IMAGES: &str = "Images referenced by each container in the template.";

fn containers_images() -> [ColumnDefinition; 2] {
    [
        c("Containers", "string", "", CONTAINERS, 1),
        c("Images", "string", "", IMAGES, 1),
    ]
}

/// kube-apiserver's default table (`rest.NewDefaultTableConvertor`) for kinds without a printer.
pub(crate) fn default_columns() -> Vec<ColumnDefinition> {
    vec![
        name(),
        c("Created At", "date", "", d::META_CREATION_TIMESTAMP, 0),
    ]
}

/// Column definitions for `kind`; `None` when kube-apiserver has no printer for it.
pub(crate) fn for_kind(kind: &str) -> Option<Vec<ColumnDefinition>> {
    let mut cols = match kind {
        "Pod" => vec![
            name(),
            c("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
            c("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
            c("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
            age(),
            c("IP", "string", "", d::POD_STATUS_POD_IP, 1),
            c("Node", "string", "", d::POD_SPEC_NODE_NAME, 1),
            c("Nominated Node", "string", "", d::POD_STATUS_NOMINATED_NODE_NAME, 1),
            c("Readiness Gates", "string", "", d::POD_SPEC_READINESS_GATES, 1),
        ],
        "PodDisruptionBudget" => vec![
            name(),
            c("Min Available", "string", "", "The minimum number of pods that must be available.", 0),
            c("Max Unavailable", "string", "", "The maximum number of pods that may be unavailable.", 0),
            c("Allowed Disruptions", "integer", "", "Calculated number of pods that may be disrupted at this time.", 0),
            age(),
        ],
        "ReplicationController" => vec![
            name(),
            c("Desired", "integer", "", d::RC_SPEC_REPLICAS, 0),
            c("Current", "integer", "", d::RC_STATUS_REPLICAS, 0),
            c("Ready", "integer", "", d::RC_STATUS_READY_REPLICAS, 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::RC_SPEC_SELECTOR, 1),
        ],
        "ReplicaSet" => vec![
            name(),
            c("Desired", "integer", "", d::RS_SPEC_REPLICAS, 0),
            c("Current", "integer", "", d::RS_STATUS_REPLICAS, 0),
            c("Ready", "integer", "", d::RS_STATUS_READY_REPLICAS, 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::RS_SPEC_SELECTOR, 1),
        ],
        "DaemonSet" => vec![
            name(),
            c("Desired", "integer", "", d::DS_STATUS_DESIRED, 0),
            c("Current", "integer", "", d::DS_STATUS_CURRENT, 0),
            c("Ready", "integer", "", d::DS_STATUS_READY, 0),
            c("Up-to-date", "integer", "", d::DS_STATUS_UPDATED, 0),
            c("Available", "integer", "", d::DS_STATUS_AVAILABLE, 0),
            c("Node Selector", "string", "", d::POD_SPEC_NODE_SELECTOR, 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::DS_SPEC_SELECTOR, 1),
        ],
        "Job" => vec![
            name(),
            c("Status", "string", "", "Status of the job.", 0),
            c("Completions", "string", "", d::JOB_STATUS_SUCCEEDED, 0),
            c("Duration", "string", "", "Time required to complete the job.", 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::JOB_SPEC_SELECTOR, 1),
        ],
        "CronJob" => vec![
            name(),
            c("Schedule", "string", "", d::CRONJOB_SPEC_SCHEDULE, 0),
            c("Timezone", "string", "", d::CRONJOB_SPEC_TIME_ZONE, 0),
            c("Suspend", "boolean", "", d::CRONJOB_SPEC_SUSPEND, 0),
            c("Active", "integer", "", d::CRONJOB_STATUS_ACTIVE, 0),
            c("Last Schedule", "string", "", d::CRONJOB_STATUS_LAST_SCHEDULE, 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::JOB_SPEC_SELECTOR, 1),
        ],
        "Service" => vec![
            name(),
            c("Type", "string", "", d::SVC_SPEC_TYPE, 0),
            c("Cluster-IP", "string", "", d::SVC_SPEC_CLUSTER_IP, 0),
            c("External-IP", "string", "", d::SVC_SPEC_EXTERNAL_IPS, 0),
            c("Port(s)", "string", "", d::SVC_SPEC_PORTS, 0),
            age(),
            c("Selector", "string", "", d::SVC_SPEC_SELECTOR, 1),
        ],
        "Ingress" => vec![
            name(),
            c("Class", "string", "", "The name of the IngressClass resource that should be used for additional configuration", 0),
            c("Hosts", "string", "", "Hosts that incoming requests are matched against before the ingress rule", 0),
            c("Address", "string", "", "Address is a list containing ingress points for the load-balancer", 0),
            c("Ports", "string", "", "Ports of TLS configurations that open", 0),
            age(),
        ],
        "IngressClass" => vec![
            name(),
            c("Controller", "string", "", "Controller that is responsible for handling this class", 0),
            c("Parameters", "string", "", "A reference to a resource with additional parameters", 0),
            age(),
        ],
        "StatefulSet" => {
            let mut v = vec![
                name(),
                c("Ready", "string", "", "Number of the pod with ready state", 0),
                age(),
            ];
            v.extend(containers_images());
            v
        }
        "Endpoints" => vec![
            name(),
            c("Endpoints", "string", "", d::EP_SUBSETS, 0),
            age(),
        ],
        "Node" => vec![
            name(),
            c("Status", "string", "", "The status of the node", 0),
            c("Roles", "string", "", "The roles of the node", 0),
            age(),
            c("Version", "string", "", d::NODE_INFO_KUBELET, 0),
            c("Internal-IP", "string", "", d::NODE_STATUS_ADDRESSES, 1),
            c("External-IP", "string", "", d::NODE_STATUS_ADDRESSES, 1),
            c("OS-Image", "string", "", d::NODE_INFO_OS_IMAGE, 1),
            c("Kernel-Version", "string", "", d::NODE_INFO_KERNEL, 1),
            c("Container-Runtime", "string", "", d::NODE_INFO_RUNTIME, 1),
        ],
        "Event" => vec![
            c("Last Seen", "string", "", d::EVENT_LAST_TIMESTAMP, 0),
            c("Type", "string", "", d::EVENT_TYPE, 0),
            c("Reason", "string", "", d::EVENT_REASON, 0),
            c("Object", "string", "", d::EVENT_INVOLVED_OBJECT, 0),
            c("Subobject", "string", "", d::OBJREF_FIELD_PATH, 1),
            c("Source", "string", "", d::EVENT_SOURCE, 1),
            c("Message", "string", "", d::EVENT_MESSAGE, 0),
            c("First Seen", "string", "", d::EVENT_FIRST_TIMESTAMP, 1),
            c("Count", "string", "", d::EVENT_COUNT, 1),
            c("Name", "string", "name", d::META_NAME, 1),
        ],
        "Namespace" => vec![
            name(),
            c("Status", "string", "", "The status of the namespace", 0),
            age(),
        ],
        "Secret" => vec![
            name(),
            c("Type", "string", "", d::SECRET_TYPE, 0),
            c("Data", "string", "", d::SECRET_DATA, 0),
            age(),
        ],
        "ServiceAccount" => vec![
            name(),
            c("Secrets", "string", "", d::SA_SECRETS, 0),
            age(),
        ],
        "PersistentVolume" => vec![
            name(),
            c("Capacity", "string", "", d::PV_SPEC_CAPACITY, 0),
            c("Access Modes", "string", "", d::PV_SPEC_ACCESS_MODES, 0),
            c("Reclaim Policy", "string", "", d::PV_SPEC_RECLAIM, 0),
            c("Status", "string", "", d::PV_STATUS_PHASE, 0),
            c("Claim", "string", "", d::PV_SPEC_CLAIM_REF, 0),
            c("StorageClass", "string", "", "StorageClass of the pv", 0),
            c("VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pv", 0),
            c("Reason", "string", "", d::PV_STATUS_REASON, 0),
            age(),
            c("VolumeMode", "string", "", d::PV_SPEC_VOLUME_MODE, 1),
        ],
        "PersistentVolumeClaim" => vec![
            name(),
            c("Status", "string", "", d::PVC_STATUS_PHASE, 0),
            c("Volume", "string", "", d::PVC_SPEC_VOLUME_NAME, 0),
            c("Capacity", "string", "", d::PVC_STATUS_CAPACITY, 0),
            c("Access Modes", "string", "", d::PVC_STATUS_ACCESS_MODES, 0),
            c("StorageClass", "string", "", "StorageClass of the pvc", 0),
            c("VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pvc", 0),
            age(),
            c("VolumeMode", "string", "", d::PVC_SPEC_VOLUME_MODE, 1),
        ],
        "Deployment" => vec![
            name(),
            c("Ready", "string", "", "Number of the pod with ready state", 0),
            c("Up-to-date", "string", "", d::DEPLOY_STATUS_UPDATED, 0),
            c("Available", "string", "", d::DEPLOY_STATUS_AVAILABLE, 0),
            age(),
            c("Containers", "string", "", CONTAINERS, 1),
            c("Images", "string", "", IMAGES, 1),
            c("Selector", "string", "", d::DEPLOY_SPEC_SELECTOR, 1),
        ],
        "HorizontalPodAutoscaler" => vec![
            name(),
            c("Reference", "string", "", d::HPA_SPEC_SCALE_TARGET_REF, 0),
            c("Targets", "string", "", d::HPA_SPEC_METRICS, 0),
            c("MinPods", "string", "", d::HPA_SPEC_MIN_REPLICAS, 0),
            c("MaxPods", "string", "", d::HPA_SPEC_MAX_REPLICAS, 0),
            c("Replicas", "string", "", d::HPA_STATUS_CURRENT_REPLICAS, 0),
            age(),
        ],
        "ConfigMap" => vec![
            name(),
            c("Data", "string", "", d::CM_DATA, 0),
            age(),
        ],
        "NetworkPolicy" => vec![
            name(),
            c("Pod-Selector", "string", "", d::NETPOL_SPEC_POD_SELECTOR, 0),
            age(),
        ],
        "RoleBinding" => vec![
            name(),
            c("Role", "string", "", d::RB_ROLE_REF, 0),
            age(),
            c("Users", "string", "", "Users in the roleBinding", 1),
            c("Groups", "string", "", "Groups in the roleBinding", 1),
            c("ServiceAccounts", "string", "", "ServiceAccounts in the roleBinding", 1),
        ],
        "ClusterRoleBinding" => vec![
            name(),
            c("Role", "string", "", d::CRB_ROLE_REF, 0),
            age(),
            c("Users", "string", "", "Users in the clusterRoleBinding", 1),
            c("Groups", "string", "", "Groups in the clusterRoleBinding", 1),
            c("ServiceAccounts", "string", "", "ServiceAccounts in the clusterRoleBinding", 1),
        ],
        "Lease" => vec![
            name(),
            c("Holder", "string", "", d::LEASE_SPEC_HOLDER, 0),
            age(),
        ],
        "ControllerRevision" => vec![
            name(),
            c("Controller", "string", "", "Controller of the object", 0),
            c("Revision", "string", "", d::CR_REVISION, 0),
            age(),
        ],
        "ResourceQuota" => vec![
            name(),
            c("Request", "string", "", "Request represents a minimum amount of cpu/memory that a container may consume.", 0),
            c("Limit", "string", "", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.", 0),
            age(),
        ],
        "RuntimeClass" => vec![
            name(),
            c("Handler", "string", "", "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.", 0),
            age(),
        ],
        "PriorityClass" => vec![
            name(),
            c("Value", "integer", "", d::PC_VALUE, 0),
            c("Global-Default", "boolean", "", d::PC_GLOBAL_DEFAULT, 0),
            age(),
            c("PreemptionPolicy", "string", "", d::PC_PREEMPTION_POLICY, 0),
        ],
        "EndpointSlice" => vec![
            name(),
            c("AddressType", "string", "", d::ES_ADDRESS_TYPE, 0),
            c("Ports", "string", "", d::ES_PORTS, 0),
            c("Endpoints", "string", "", d::ES_ENDPOINTS, 0),
            age(),
        ],
        "Scale" => vec![
            c("Name", "string", "", d::META_NAME, 0),
            c("Desired", "integer", "", "desired number of instances for the scaled object.", 0),
            c("Available", "integer", "", "actual number of observed instances of the scaled object.", 0),
            age(),
        ],
        _ => return None,
    };
    cols.shrink_to_fit();
    Some(cols)
}
