#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit tests, store conformance on both
# backends, end-to-end tests with the real kubectl and the Python client, crash tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then ./scripts/deps.sh; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads="${CAPSTAN_TEST_THREADS:-4}"
