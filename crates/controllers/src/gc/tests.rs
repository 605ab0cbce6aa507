use super::*;
use serde_json::json;

fn obj(uid: &str, refs: &[(&str, bool)], fin: &[&str], deleting: bool) -> Value {
    let mut o = json!({"metadata": {"name": uid, "namespace": "d", "uid": uid}});
    if !refs.is_empty() {
        o["metadata"]["ownerReferences"] = refs
            .iter()
            .map(|(u, block)| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": u, "uid": u, "controller": true, "blockOwnerDeletion": block}))
            .collect();
    }
    if !fin.is_empty() {
        o["metadata"]["finalizers"] = json!(fin);
    }
    if deleting {
        o["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    }
    o
}

#[test]
fn classify_owner() {
    let r = json!({"uid": "o1"});
    assert_eq!(classify(None, &r), Owner::Absent);
    assert_eq!(
        classify(Some(&obj("o2", &[], &[], false)), &r),
        Owner::Absent
    );
    assert_eq!(
        classify(Some(&obj("o1", &[], &[], false)), &r),
        Owner::Solid
    );
    assert_eq!(
        classify(Some(&obj("o1", &[], &[ORPHAN], true)), &r),
        Owner::Solid
    );
    assert_eq!(
        classify(Some(&obj("o1", &[], &[FOREGROUND], true)), &r),
        Owner::Waiting
    );
}

#[test]
fn dependents() {
    use Owner::*;
    let cases: Vec<(&str, Value, Vec<Owner>, bool, Dependent)> = vec![
        (
            "no owners",
            obj("p", &[], &[], false),
            vec![],
            false,
            Dependent::Keep,
        ),
        (
            "owner exists",
            obj("p", &[("a", true)], &[], false),
            vec![Solid],
            false,
            Dependent::Keep,
        ),
        (
            "owner gone",
            obj("p", &[("a", true)], &[], false),
            vec![Absent],
            false,
            Dependent::Delete("Background"),
        ),
        (
            "one of two gone",
            obj("p", &[("a", true), ("b", false)], &[], false),
            vec![Absent, Solid],
            false,
            Dependent::RemoveRefs(vec!["a".into()]),
        ),
        (
            "owner waiting",
            obj("p", &[("a", true)], &[], false),
            vec![Waiting],
            false,
            Dependent::Delete("Background"),
        ),
        (
            "owner waiting, has children",
            obj("p", &[("a", true)], &[], false),
            vec![Waiting],
            true,
            Dependent::Delete("Foreground"),
        ),
        (
            "already deleting",
            obj("p", &[("a", true)], &[], true),
            vec![Absent],
            false,
            Dependent::Keep,
        ),
        (
            "own orphan finalizer",
            obj("p", &[("a", true)], &[ORPHAN], false),
            vec![Absent],
            false,
            Dependent::Delete("Orphan"),
        ),
    ];
    for (what, dep, owners, kids, want) in cases {
        assert_eq!(dependent(&dep, &owners, kids), want, "{what}");
    }
}

#[test]
fn owners_being_deleted() {
    let kids = vec![
        obj("p1", &[("o", true)], &[], false),
        obj("p2", &[("o", false)], &[], true),
        obj("x", &[("other", true)], &[], false),
    ];
    // Orphan: every dependent loses the reference, then the finalizer goes.
    let plan = owner(&obj("o", &[], &[ORPHAN], true), &kids);
    assert_eq!(plan.orphan.len(), 2);
    assert_eq!(plan.remove_finalizer, None);
    assert_eq!(
        owner(&obj("o", &[], &[ORPHAN], true), &kids[2..]).remove_finalizer,
        Some(ORPHAN)
    );
    // Foreground: delete dependents not yet deleting; wait while one blocks.
    let plan = owner(&obj("o", &[], &[FOREGROUND], true), &kids);
    assert_eq!(
        plan.delete.iter().map(crate::name).collect::<Vec<_>>(),
        vec!["p1"]
    );
    assert_eq!(plan.remove_finalizer, None);
    let plan = owner(&obj("o", &[], &[FOREGROUND], true), &kids[1..]);
    assert_eq!(
        plan.remove_finalizer,
        Some(FOREGROUND),
        "a non-blocking dependent does not hold the owner"
    );
    // Not deleting: nothing.
    assert_eq!(
        owner(&obj("o", &[], &[FOREGROUND], false), &kids),
        OwnerPlan::default()
    );
}
