//! Threat probes against the real Seatbelt sandbox (THREATS.md classes that apply to macOS).
//! The probes live in `macos/enforcement.rs` and only build on macOS; elsewhere one test says
//! why nothing ran, so a skip is never silent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_os = "macos")]
#[path = "macos/enforcement.rs"]
mod enforcement;

#[cfg(not(target_os = "macos"))]
#[test]
fn skipped_not_macos() {
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP macos_enforcement: needs macOS with /usr/bin/sandbox-exec; this host is {}",
            std::env::consts::OS
        );
    }
}
