//! Tables generated from k8s-pb's prost source by `tools/gen_table.py` (committed; regenerate, do not edit).

#[rustfmt::skip]
pub(crate) mod table;
