//! What the CLI tests share.

use std::path::PathBuf;

/// The `stockade` binary under test: `$STOCKADE_BIN` when set (CI points it at the static musl
/// release build to run the same tests against it), else the one cargo built for these tests.
pub fn stockade_bin() -> PathBuf {
    std::env::var_os("STOCKADE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stockade")), PathBuf::from)
}
