//! What the Linux backend's integration tests share.

use std::io::Write as _;

/// Prints why a test skips, or fails it when `STOCKADE_TEST_REQUIRE` lists the missing
/// feature (CI sets it where the feature must exist, so a skip there is a failure).
pub fn skip(feature: &str, why: &str) {
    let required = std::env::var("STOCKADE_TEST_REQUIRE").unwrap_or_default();
    if required.split(',').any(|f| f.trim() == feature) {
        panic!("{feature} is required by STOCKADE_TEST_REQUIRE but unavailable: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {feature} unavailable: {why}");
}
