//! The pod bandwidth annotations (`kubernetes.io/ingress-bandwidth`,
//! `kubernetes.io/egress-bandwidth`), checked before a sandbox is asked for. containerd's CRI
//! plugin parses them itself (as the kubelet's `ExtractPodBandwidthResources`: a quantity of
//! bits/s between 1k and 1P) and hands them to the CNI bandwidth plugin; a bad one makes it
//! fail RunPodSandbox *and* every later StopPodSandbox of that sandbox (the teardown parses
//! them again), so the sandbox could never be removed. The agent refuses such a pod's sandbox
//! itself, with a message naming the annotation, and creates nothing (host-network pods are
//! not checked: their sandboxes get no CNI call, so containerd never reads the annotations).

use capstan_validation::quantity::Quantity;
use std::collections::HashMap;

pub const INGRESS: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS: &str = "kubernetes.io/egress-bandwidth";

/// Why the pod's bandwidth annotations cannot be honoured (pure); Ok when absent or valid.
pub fn check(annotations: &HashMap<String, String>) -> Result<(), String> {
    for key in [INGRESS, EGRESS] {
        let Some(v) = annotations.get(key) else {
            continue;
        };
        let q = Quantity::parse(v).map_err(|e| format!("annotation {key}={v:?}: {e}"))?;
        // resource.Quantity.Value(): whole units, rounded up.
        let bits = (q.milli_value() + 999).div_euclid(1000);
        if bits < 1_000 {
            return Err(format!(
                "annotation {key}={v:?}: resource is unreasonably small (< 1kbit)"
            ));
        }
        if bits > 1_000_000_000_000_000 {
            return Err(format!(
                "annotation {key}={v:?}: resource is unreasonably large (> 1Pbit)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (
        &'static [(&'static str, &'static str)],
        Result<(), &'static str>,
    );

    #[test]
    fn bandwidth_annotations() {
        let cases: &[Case] = &[
            (&[], Ok(())),
            (&[("other", "10X")], Ok(())),
            (&[(EGRESS, "10M")], Ok(())),
            (&[(INGRESS, "1k"), (EGRESS, "1P")], Ok(())),
            (&[(INGRESS, "1.5M")], Ok(())),
            (&[(INGRESS, "999.5")], Ok(())), // rounds up to 1000
            (
                &[(EGRESS, "10X")],
                Err("annotation kubernetes.io/egress-bandwidth=\"10X\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
            ),
            (
                &[(INGRESS, "999")],
                Err("annotation kubernetes.io/ingress-bandwidth=\"999\": resource is unreasonably small (< 1kbit)"),
            ),
            (
                &[(INGRESS, "-10M")],
                Err("annotation kubernetes.io/ingress-bandwidth=\"-10M\": resource is unreasonably small (< 1kbit)"),
            ),
            (
                &[(EGRESS, "2P")],
                Err("annotation kubernetes.io/egress-bandwidth=\"2P\": resource is unreasonably large (> 1Pbit)"),
            ),
            (
                &[(INGRESS, ""), (EGRESS, "10M")],
                Err("annotation kubernetes.io/ingress-bandwidth=\"\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
            ),
        ];
        for (ann, want) in cases {
            let m = ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(check(&m), want.map_err(str::to_string), "{ann:?}");
        }
    }
}
