#!/usr/bin/env python3
"""Generate crates/wire/src/generated/table.rs from k8s-pb's prost source.

k8s-pb (prost-generated structs for every Kubernetes kind) gives the field numbers and
wire types; k8s-openapi's serde impls give the exact JSON field names (prost snake_cases
them lossily: `pod_ip` for `podIP`).

Usage: python3 crates/wire/tools/gen_table.py [K8S_PB_SRC] [K8S_OPENAPI_SRC] > crates/wire/src/generated/table.rs
Defaults look in ~/.cargo/registry/src/*/k8s-pb-0.9.0/src and k8s-openapi-0.28.0/src.
"""
import glob
import os
import re
import sys
from collections import Counter, defaultdict

# Go package directory -> API group (only stable group versions are emitted).
GROUPS = {
    "api/core/v1": "",
    "api/apps/v1": "apps",
    "api/batch/v1": "batch",
    "api/autoscaling/v1": "autoscaling",
    "api/autoscaling/v2": "autoscaling",
    "api/policy/v1": "policy",
    "api/scheduling/v1": "scheduling.k8s.io",
    "api/coordination/v1": "coordination.k8s.io",
    "api/discovery/v1": "discovery.k8s.io",
    "api/events/v1": "events.k8s.io",
    "api/rbac/v1": "rbac.authorization.k8s.io",
    "api/networking/v1": "networking.k8s.io",
    "api/authorization/v1": "authorization.k8s.io",
    "api/authentication/v1": "authentication.k8s.io",
    "api/storage/v1": "storage.k8s.io",
    "api/certificates/v1": "certificates.k8s.io",
    "api/admissionregistration/v1": "admissionregistration.k8s.io",
    "api/node/v1": "node.k8s.io",
    "api/flowcontrol/v1": "flowcontrol.apiserver.k8s.io",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1": "apiextensions.k8s.io",
}
# Support packages (no kinds of their own except meta/v1's group-independent ones).
SUPPORT = [
    "apimachinery/pkg/apis/meta/v1",
    "apimachinery/pkg/runtime",
    "apimachinery/pkg/util/intstr",
    "apimachinery/pkg/api/resource",
]
# Messages encoded specially in JSON (see src/special.rs).
SPECIAL = {
    "apimachinery/pkg/apis/meta/v1.Time": "Time",
    "apimachinery/pkg/apis/meta/v1.MicroTime": "MicroTime",
    "apimachinery/pkg/apis/meta/v1.Duration": "Duration",
    "apimachinery/pkg/apis/meta/v1.FieldsV1": "RawJson",
    "apimachinery/pkg/apis/meta/v1.Verbs": "StringList",
    "apimachinery/pkg/runtime.RawExtension": "RawJson",
    "apimachinery/pkg/util/intstr.IntOrString": "IntOrString",
    "apimachinery/pkg/api/resource.Quantity": "Quantity",
    "api/authentication/v1.ExtraValue": "StringList",
    "api/authorization/v1.ExtraValue": "StringList",
    "api/certificates/v1.ExtraValue": "StringList",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.Json": "RawJson",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrArray": "OrArray",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrBool": "OrBool",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrStringArray": "OrArray",
}
# Kinds of meta/v1 that every group version serves.
META_KINDS = [
    "DeleteOptions", "Status", "ListOptions", "GetOptions", "CreateOptions", "UpdateOptions",
    "PatchOptions", "WatchEvent", "List", "APIVersions", "APIGroupList", "APIGroup",
    "APIResourceList", "PartialObjectMetadata", "PartialObjectMetadataList", "Table",
]

# JSON names of optional fields that are Go pointers (`*int32`, `*bool`, `*string`) wherever they appear:
# gogo-protobuf writes every non-pointer field even when zero, so a zero scalar of any other optional field
# is dropped (Go's `omitempty`), while these keep it (`replicas: 0`, `suspend: false`).
POINTERS = {
    "replicas", "minReplicas", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "parallelism",
    "completions", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "suspend", "startingDeadlineSeconds",
    "successfulJobsHistoryLimit", "failedJobsHistoryLimit", "terminationGracePeriodSeconds",
    "automountServiceAccountToken", "optional", "readOnlyRootFilesystem", "runAsNonRoot", "runAsUser",
    "runAsGroup", "fsGroup", "allowPrivilegeEscalation", "privileged", "enableServiceLinks",
    "shareProcessNamespace", "hostUsers", "setHostnameAsFQDN", "revisionHistoryLimit",
    "progressDeadlineSeconds", "targetCPUUtilizationPercentage", "averageUtilization",
    "stabilizationWindowSeconds", "defaultMode", "mode", "expirationSeconds", "gracePeriodSeconds",
    "orphanDependents", "priority", "deletionGracePeriodSeconds", "storageClassName", "ingressClassName",
    "volumeMode", "allocateLoadBalancerNodePorts", "ready", "serving",
    "terminating", "blockOwnerDeletion", "controller", "remainingItemCount", "leaseDurationSeconds",
    "leaseTransitions", "preemptionPolicy", "minDomains", "unhealthyPodEvictionPolicy",
    "podReplacementPolicy", "managedBy", "completionMode", "collisionCount", "holderIdentity",
}
# Status messages mostly hold non-pointer counters (`replicas,omitempty`); these are their pointer fields.
STATUS_POINTERS = {"collisionCount", "terminatingReplicas", "started", "ready", "allocatedResources"}
SCALARS = {"string": "Str", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64", "bytes": "Bytes"}


def registry(name):
    hits = sorted(glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{name}/src")))
    if not hits:
        sys.exit(f"cannot find {name} in ~/.cargo/registry")
    return hits[-1]


def norm(name):
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("r#", ""))


def json_names(openapi_src):
    """(package dir, struct) -> {normalized: json name}, plus a global fallback."""
    per, glob_counts = {}, defaultdict(Counter)
    for ver in ("v1_32", "v1_33", "v1_34", "v1_35", "v1_36"):
        root = os.path.join(openapi_src, ver)
        if not os.path.isdir(root):
            continue
        for path in glob.glob(f"{root}/**/*.rs", recursive=True):
            text = open(path).read()
            pkg = os.path.dirname(os.path.relpath(path, root))
            struct = None
            for chunk in re.split(r"impl<'de> crate::serde::Deserialize<'de> for ", text)[1:]:
                name = re.match(r"\w+", chunk).group(0)
                struct = struct if name == "Field" else name
                if struct is None:
                    continue
                pairs = re.findall(r'^\s*"([^"]+)" => Field::Key_(\w+),', chunk, re.M)
                m = per.setdefault((pkg, struct.lower()), {})
                decl = re.search(r"^pub struct " + struct + r" \{(.*?)^\}", text, re.M | re.S)
                optional = set(re.findall(r"^\s*pub (\w+): Option<", decl.group(1), re.M)) if decl else set()
                for n, rust in pairs:
                    m.setdefault(norm(n), (n, rust not in optional))
                    glob_counts[norm(n)][n] += 1
    return per, {k: c.most_common(1)[0][0] for k, c in glob_counts.items()}


def camel(snake):
    parts = snake.replace("r#", "").split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def resolve(pkg, ty):
    """A Rust type path as written in module `pkg` -> 'pkg.Struct'."""
    ty = ty.replace(" ", "").replace("\n", "")
    ty = re.sub(r"^::prost::alloc::boxed::Box<(.*)>$", r"\1", ty)
    parts = ty.split("::")
    base = pkg.split("/")
    i = 0
    while i < len(parts) and parts[i] == "super":
        base = base[:-1]
        i += 1
    if parts[0] == "crate":
        base, i = [], 1
    return "/".join(base + parts[i:-1]) + "." + parts[-1]


def inner_type(decl):
    """The message type name inside Option<..>/Vec<..>/BTreeMap<K, ..>."""
    d = decl.replace(" ", "").replace("\n", "")
    for pre in ("::core::option::Option<", "::prost::alloc::vec::Vec<"):
        if d.startswith(pre):
            return d[len(pre):-1]
    m = re.match(r"::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,(.*)>$", d)
    if m:
        return m.group(1)
    return d


def parse_pkg(pb_src, pkg):
    text = open(os.path.join(pb_src, pkg, "mod.rs")).read()
    msgs = {f"{pkg}.{n}": [] for n in re.findall(r"^pub struct (\w+) \{\}", text, re.M)}
    for m in re.finditer(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.M | re.S):
        name, body = m.group(1), m.group(2)
        fields = []
        for chunk in body.split("#[prost(")[1:]:
            attr, rest = chunk.split(")]", 1)
            rest = "\n".join(l for l in rest.splitlines() if not l.strip().startswith("///"))
            f = re.match(r"\s*pub (r#\w+|\w+):(.*)$", rest, re.S)
            fname = f.group(1)
            decl = re.sub(r"\s+", "", f.group(2)).rstrip(",").replace(",>", ">")
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            kind = attr.split(",")[0].strip()
            if kind.startswith("btree_map"):
                kv = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
                card = "Map"
                ty = ("Msg", resolve(pkg, inner_type(decl))) if kv == "message" else SCALARS[kv]
            else:
                card = "Many" if "repeated" in attr else "One"
                kw = kind.split("=")[0].strip()
                ty = ("Msg", resolve(pkg, inner_type(decl))) if kw == "message" else SCALARS[kw]
            fields.append((tag, fname, ty, card))
        msgs[f"{pkg}.{name}"] = sorted(fields)
    return msgs


def main():
    pb_src = sys.argv[1] if len(sys.argv) > 1 else registry("k8s-pb-0.9.0")
    oa_src = sys.argv[2] if len(sys.argv) > 2 else registry("k8s-openapi-0.28.0")
    per, glob_names = json_names(oa_src)
    msgs = {}
    for pkg in SUPPORT + list(GROUPS):
        msgs.update(parse_pkg(pb_src, pkg))
    # Keep only messages reachable from the packages' own messages (all of them here).
    order = sorted(msgs)
    index = {n: i for i, n in enumerate(order)}
    out = ["//! Generated by crates/wire/tools/gen_table.py from k8s-pb 0.9 and k8s-openapi 0.28: do not edit.",
           "//! One entry per protobuf message: fields (tag, JSON name, type, cardinality) sorted by tag.",
           "",
           "use crate::schema::{Card::*, Field as F, Msg, Special, Ty::*};",
           "",
           "pub(crate) static MESSAGES: &[Msg] = &["]
    fallback = []
    for name in order:
        pkg, struct = name.rsplit(".", 1)
        names = per.get((pkg, struct.lower()))
        special = SPECIAL.get(name, "None")
        fs = []
        for tag, fname, ty, card in msgs[name]:
            n = norm(fname)
            json, required = names.get(n, (None, False)) if names else (None, False)
            if json is None and names and isinstance(ty, tuple) and card == "One":
                # An embedded Go struct (`json:",inline"`): its fields sit in the parent's JSON object.
                json, card = "", "Inline"
                fallback.append(f"{name}.{fname} -> inline")
            elif json is None:
                json = glob_names.get(n) or camel(fname)
                fallback.append(f"{name}.{fname} -> {json}" + ("" if names else " (no openapi struct)"))
            pointer = json in POINTERS and (not struct.endswith("Status") or json in STATUS_POINTERS)
            if card == "One" and (required or pointer):
                card = "Keep"
            if isinstance(ty, tuple):
                if ty[1] not in index:
                    sys.exit(f"unresolved {ty[1]} in {name}")
                t = f"M({index[ty[1]]})"
            else:
                t = ty
            fs.append(f'F({tag}, "{json}", {t}, {card})')
        short = name.replace("apimachinery/pkg/apis/", "").replace("apimachinery/pkg/", "") \
            .replace("apiextensions_apiserver/pkg/apis/", "").replace("api/", "").replace("/", ".")
        out.append(f'    Msg("{short}", Special::{special}, &[{", ".join(fs)}]), // {index[name]}')
    out.append("];")
    out.append("")
    out.append("/// (apiVersion, kind, message index) for every top-level kind; \"*\" = any group version.")
    out.append("pub(crate) static KINDS: &[(&str, &str, u16)] = &[")
    kinds = []
    for pkg, group in GROUPS.items():
        version = pkg.rsplit("/", 1)[1]
        gv = f"{group}/{version}" if group else version
        for name in order:
            p, struct = name.rsplit(".", 1)
            if p != pkg or not msgs[name]:
                continue
            first = msgs[name][0]
            if first[0] == 1 and first[1] == "metadata" and isinstance(first[2], tuple) and \
                    first[2][1].endswith((".ObjectMeta", ".ListMeta")):
                kinds.append((gv, struct, index[name]))
    for k in META_KINDS:
        name = f"apimachinery/pkg/apis/meta/v1.{k}"
        if name in index:
            kinds.append(("*", k, index[name]))
    kinds.sort()
    for gv, k, i in kinds:
        out.append(f'    ("{gv}", "{k}", {i}),')
    out.append("];")
    print("\n".join(out))
    for f in fallback:
        print("fallback name:", f, file=sys.stderr)


if __name__ == "__main__":
    main()
