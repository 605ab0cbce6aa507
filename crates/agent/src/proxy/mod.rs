//! The service proxy (nftables mode): `rules.rs` is the pure ruleset generator.

pub mod rules;
