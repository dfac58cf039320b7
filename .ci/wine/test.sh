#!/usr/bin/env bash
# Builds stockade-windows' tests for x86_64-pc-windows-gnu with mingw and runs them under
# Wine. Plumbing tests (SIDs, SDDL, ACLs in memory, command lines, environment blocks, pipes,
# job objects, processes) run for real; security assertions detect Wine and print why they
# skip. Run .ci/wine/setup.sh first.
set -euo pipefail
out="${STOCKADE_WINE_DIR:-/tmp/stockade-wine}"
export WINEPREFIX="$out/prefix" WINEDEBUG=-all WINEARCH=win64
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# Wine reads WINEPATH for DLLs next to the test binaries.
export WINEPATH="$out"
cargo test -p stockade-windows --target x86_64-pc-windows-gnu "$@" -- --test-threads=1 --nocapture
