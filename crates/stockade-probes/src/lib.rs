//! # stockade-probes
//!
//! The escape-probe tool `sbx-probe` (one raw action per invocation, one JSON line of output)
//! and, under `tests/suite`, the enforcement suite that drives the built `stockade` binary
//! through the probe classes of THREATS.md §3. This library is empty on purpose: the crate
//! exists for its binary and its integration tests.
#![deny(missing_docs)]
