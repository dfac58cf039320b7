#!/usr/bin/env bash
# Installs what the Windows tests need on a Debian 12 CI machine and builds the
# bcryptprimitives.dll shim for Wine 8.0. Idempotent; safe to run on every CI run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${STOCKADE_WINE_DIR:-/tmp/stockade-wine}"

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine wine64)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1 || true

mkdir -p "$out"
x86_64-w64-mingw32-gcc -shared -O2 -o "$out/bcryptprimitives.dll" \
    "$here/bcryptprimitives.c" -ladvapi32 -Wl,--kill-at
export WINEPREFIX="$out/prefix" WINEDEBUG=-all WINEARCH=win64
if [ ! -d "$WINEPREFIX/drive_c" ]; then
    wineboot --init >/dev/null 2>&1 || true
    wineserver -w || true
fi
# Wine 8.13+ has its own bcryptprimitives.dll; only add the shim where it is missing.
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -e "$sys32/bcryptprimitives.dll" ] || ! wine --version | grep -qE 'wine-(9|[1-9][0-9])|wine-8\.(1[3-9]|2)'; then
    cp "$out/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
fi
echo "wine ready: $(wine --version) prefix $WINEPREFIX"
