//! The enforcement suite: runs the built `stockade` binary with `sbx-probe` through the probe
//! classes of THREATS.md §3 (F, P, N, R, I), as root and as an unprivileged user, under both
//! Linux implementations, with negative controls and host-side checks. See `harness.rs`.
//!
//! Run: `cargo build -p stockade && cargo test -p stockade-probes` (as root for all tiers).
#![cfg(target_os = "linux")]
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod harness;
mod host;

mod cli;
mod fs;
mod info;
mod meta;
mod net;
mod process;
mod resources;
mod tools;
