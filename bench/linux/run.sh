#!/usr/bin/env bash
# Side-by-side startup cost of `stockade run` (default policy, all layers) against bwrap,
# `unshare -Urmn` and firejail, over `/bin/true` and over `git status` in a repo of a few
# thousand files; plus the supervisor's peak RSS. Medians from hyperfine, all in one run
# (this machine is noisy: compare the ratio, not absolute numbers).
#
# Two stockade builds are measured: `stockade` is what `cargo build --release` gives (glibc,
# dynamically linked); `stockade-musl` is the static release build
# (`--target <arch>-unknown-linux-musl`), which starts without the dynamic loader and without
# glibc's CPU-feature probing (dozens of `cpuid` instructions, each a trap to the hypervisor
# on a virtual machine).
#
# Everything is measured twice: back to back (hyperfine's default) and with a pause of
# `--spacing` seconds (default 0.02) before each timed run, as commands arrive from an agent.
#
# `git status` itself varies from run to run far more than `/bin/true` here (an interquartile
# range of 1 to 2 ms, against about 0.15), so it gets `--git-runs` runs (default five times
# `--runs`). The speed of this machine also drifts within seconds, so the tools take turns in
# `--rounds` short rounds (default 15): each tool's median then spans the same stretch of time.
# Each ratio is printed with a 95% bootstrap interval (the tools' samples resampled 2,000
# times): how far the sampling alone could move it, so that one run's figure is not read as
# more precise than it is.
#
# stockade is timed as installed: each build is copied into the bench's scratch directory with
# `install` first, as `cargo install` or a package would place it, since bwrap, unshare and
# firejail run from files dpkg installed. A binary just written by the linker sits in the page
# cache mostly in single 4 KiB pages, a copy in 64 KiB folios, and the copy starts faster (see
# docs/linux-log.md, "A sixteenth session"). STOCKADE_BENCH_IN_PLACE=1 times the files where they are.
#
# Usage: bench/linux/run.sh [--runs N] [--git-runs N] [--rounds N] [--files N] [--spacing SECONDS]
# Env:   STOCKADE_BIN         a release `stockade` to use (default: build one with cargo)
#        STOCKADE_MUSL_BIN    a static musl one (default: build one; empty string: skip that row)
#        STOCKADE_BENCH_IN_PLACE  1: time those files where they are instead of installed copies
#        CARGO_TARGET_DIR     honoured when building
set -euo pipefail

RUNS=100
GIT_RUNS=
FILES=3000
ROUNDS=15
SPACING=0.02
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --git-runs) GIT_RUNS="$2"; shift 2 ;;
        --files) FILES="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --spacing) SPACING="$2"; shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

GIT_RUNS="${GIT_RUNS:-$(( RUNS * 5 ))}"

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

need() { command -v "$1" >/dev/null 2>&1; }

# Tools: install from Debian when root, otherwise they must be present.
missing=()
for t in bwrap firejail hyperfine unshare git python3; do need "$t" || missing+=("$t"); done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
        pkgs=()
        for t in "${missing[@]}"; do
            case "$t" in
                bwrap) pkgs+=(bubblewrap) ;; unshare) pkgs+=(util-linux) ;; *) pkgs+=("$t") ;;
            esac
        done
        echo "installing: ${pkgs[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
    else
        echo "run.sh: missing ${missing[*]} (apt-get install bubblewrap firejail hyperfine time)" >&2
        exit 1
    fi
fi

if [ -z "${STOCKADE_BIN:-}" ]; then
    (cd "$repo" && cargo build --release -q -p stockade)
    STOCKADE_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/stockade"
fi
[ -x "$STOCKADE_BIN" ] || { echo "run.sh: no stockade binary at $STOCKADE_BIN" >&2; exit 1; }
if [ -z "${STOCKADE_MUSL_BIN+set}" ]; then
    musl="$(uname -m)-unknown-linux-musl"
    if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then rustup target add "$musl" >&2; fi
    (cd "$repo" && cargo build --release -q -p stockade --target "$musl")
    STOCKADE_MUSL_BIN="${CARGO_TARGET_DIR:-$repo/target}/$musl/release/stockade"
fi

# A binary passed in through the environment may predate the sources (left over from an earlier
# build or experiment); its figures would not describe this checkout, so say so.
for b in "$STOCKADE_BIN" ${STOCKADE_MUSL_BIN:+"$STOCKADE_MUSL_BIN"}; do
    newer="$(find "$repo/crates" "$repo/Cargo.lock" -newer "$b" \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) -print -quit 2>/dev/null || true)"
    [ -z "$newer" ] || echo "run.sh: warning: $b is older than $newer: rebuild it, or these figures describe another version" >&2
done

# The workspace lives outside /tmp and /var/tmp (stockade gives the command private ones).
if [ "$(id -u)" = 0 ]; then
    mkdir -p /var/lib/stockade-bench
    base="$(mktemp -d /var/lib/stockade-bench/run.XXXXXX)"
else
    mkdir -p "${XDG_CACHE_HOME:-$HOME/.cache}"
    base="$(mktemp -d "${XDG_CACHE_HOME:-$HOME/.cache}/stockade-bench.XXXXXX")"
fi
trap 'rm -rf "$base"' EXIT

# Installed copies (see the header); the sources' age was checked above, on the originals.
if [ "${STOCKADE_BENCH_IN_PLACE:-}" != 1 ]; then
    mkdir -p "$base/bin"
    install -m 0755 "$STOCKADE_BIN" "$base/bin/stockade"
    STOCKADE_BIN="$base/bin/stockade"
    if [ -n "${STOCKADE_MUSL_BIN:-}" ]; then
        install -m 0755 "$STOCKADE_MUSL_BIN" "$base/bin/stockade-musl"
        STOCKADE_MUSL_BIN="$base/bin/stockade-musl"
    fi
    echo "timing installed copies: $STOCKADE_BIN${STOCKADE_MUSL_BIN:+ and $STOCKADE_MUSL_BIN}"
else
    echo "timing in place: $STOCKADE_BIN${STOCKADE_MUSL_BIN:+ and $STOCKADE_MUSL_BIN}"
fi
WS="$base/ws"
mkdir -p "$WS"
python3 - "$WS" "$FILES" <<'PY'
import os, sys
ws, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(ws, "src", f"m{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"file {i}\n" * 8)
PY
git -C "$WS" init -q
git -C "$WS" -c user.name=bench -c user.email=b@example.invalid add -A
git -C "$WS" -c user.name=bench -c user.email=b@example.invalid commit -q -m init
echo "workspace: $WS ($(git -C "$WS" ls-files | wc -l) tracked files)"
echo "builds: stockade = the default glibc build (cargo build --release); stockade-musl = the static musl build, the one to install on Linux"

# Sanity: every wrapper really runs the command.
"$STOCKADE_BIN" run -C "$WS" -- /bin/true || { echo "run.sh: \`stockade run -- /bin/true\` failed" >&2; exit 1; }

declare -A CMD
CMD[baseline]=""
CMD[stockade]="$STOCKADE_BIN run -C $WS --"
CMD[stockade-musl]="${STOCKADE_MUSL_BIN:+$STOCKADE_MUSL_BIN run -C $WS --}"
CMD[bwrap]="bwrap --ro-bind / / --bind $WS $WS --unshare-all --die-with-parent --new-session --proc /proc --dev /dev --chdir $WS"
CMD[unshare]="unshare -Urmn"
CMD[firejail]="firejail --noprofile --quiet"
ORDER=(baseline stockade stockade-musl bwrap unshare firejail)
[ -n "${STOCKADE_MUSL_BIN:-}" ] || ORDER=(baseline stockade bwrap unshare firejail)

# Median over every sample of every round of one tool.
median() { python3 -c 'import json,sys,statistics; t=[x for f in sys.argv[1:] for x in json.load(open(f))["results"][0]["times"]]; print("%.3f" % (statistics.median(t)*1000))' "$@"; }

# One measurement of every tool on both payloads. `$1` names the mode; `$2` is the pause before
# each timed run ("" for none): back to back, each run also pays for the namespace teardown
# the previous one left to the kernel (on two CPUs that competes with the next run); spaced,
# as an agent issues commands, that work is done by the time the next command starts.
measure() {
    local mode="$1" pause="$2" work payload per name round out cmd t g at ag
    local -a prep=()
    [ -z "$pause" ] || prep=(--prepare "sleep $pause")
    declare -A MED OK
    for work in true git; do
        case "$work" in
            true) payload="/bin/true" ;;
            git) payload="git -C $WS status --porcelain" ;;
        esac
        # Rounds interleave the tools so that load from other processes on this shared machine
        # hits all of them alike.
        per=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
        [ "$work" = true ] || per=$(( (GIT_RUNS + ROUNDS - 1) / ROUNDS ))
        OK=()
        for name in "${ORDER[@]}"; do
            cmd="${CMD[$name]} $payload"
            if (cd "$WS" && bash -c "$cmd" >/dev/null 2>&1); then OK[$name]=1; else echo "  $name: does not run here, skipped ($cmd)" >&2; fi
        done
        for round in $(seq 1 "$ROUNDS"); do
            for name in "${ORDER[@]}"; do
                [ -n "${OK[$name]:-}" ] || continue
                out="$base/$mode-$work-$name-$round.json"
                cmd="${CMD[$name]} $payload"
                (cd "$WS" && hyperfine -N ${prep[@]+"${prep[@]}"} --warmup 2 --runs "$per" --export-json "$out" "$cmd" >/dev/null 2>&1) \
                    || (cd "$WS" && hyperfine ${prep[@]+"${prep[@]}"} --warmup 2 --runs "$per" --export-json "$out" "$cmd" >/dev/null)
            done
        done
        for name in "${ORDER[@]}"; do
            [ -n "${OK[$name]:-}" ] || continue
            MED[$work-$name]="$(median "$base/$mode-$work-$name"-[0-9]*.json)"
        done
    done

    printf '\n%s: median wall time in ms over %s runs (git status: %s) in %s interleaved rounds (added = minus the bare command)\n' \
        "$mode" "$(( (RUNS + ROUNDS - 1) / ROUNDS * ROUNDS ))" "$(( (GIT_RUNS + ROUNDS - 1) / ROUNDS * ROUNDS ))" "$ROUNDS"
    printf '%-16s %12s %10s %12s %10s\n' tool "/bin/true" added "git status" added
    for name in "${ORDER[@]}"; do
        t="${MED[true-$name]:-}"; g="${MED[git-$name]:-}"
        [ -n "$t" ] && [ -n "$g" ] || continue
        at="$(python3 -c "print('%.3f' % ($t - ${MED[true-baseline]}))")"
        ag="$(python3 -c "print('%.3f' % ($g - ${MED[git-baseline]}))")"
        printf '%-16s %12s %10s %12s %10s\n' "$name" "$t" "$at" "$g" "$ag"
    done
    if [ -n "${MED[true-bwrap]:-}" ] && [ -n "${MED[git-bwrap]:-}" ]; then
        for name in stockade stockade-musl; do
            [ -n "${MED[true-$name]:-}" ] && [ -n "${MED[git-$name]:-}" ] || continue
            printf '%s/bwrap added-latency ratio (%s): /bin/true %s (95%% interval %s), git status %s (%s) (target <= 0.50)\n' "$name" "$mode" \
                "$(ratio "${MED[true-$name]}" "${MED[true-baseline]}" "${MED[true-bwrap]}" "${MED[true-baseline]}")" \
                "$(ratio_ci "$base/$mode-true" "$name")" \
                "$(ratio "${MED[git-$name]}" "${MED[git-baseline]}" "${MED[git-bwrap]}" "${MED[git-baseline]}")" \
                "$(ratio_ci "$base/$mode-git" "$name")"
        done
    fi
}
# Three decimals, and a mark when over the target: rounded to two, 0.503 would read as met.
ratio() { python3 -c "a=$1-$2; b=$3-$4; r=a/b if b > 0 else None; print('n/a' if r is None else '%.3f%s' % (r, ' [over]' if r > 0.5 else ''))"; }

# 95% bootstrap interval of the added-latency ratio: every sample of one tool, baseline and
# bwrap (the files of one mode and payload) resampled with replacement, medians and ratio
# recomputed, 2,000 times; the 2.5th and 97.5th percentiles. Seeded, so a rerun on the same
# files prints the same interval.
ratio_ci() {
    python3 - "$@" <<'PY'
import json, random, statistics, sys
prefix, tool = sys.argv[1], sys.argv[2]
def samples(name):
    import glob
    return [x for f in sorted(glob.glob(f"{prefix}-{name}-[0-9]*.json")) for x in json.load(open(f))["results"][0]["times"]]
s, base, bw = samples(tool), samples("baseline"), samples("bwrap")
rng = random.Random(1)
def med(xs):
    return statistics.median(rng.choices(xs, k=len(xs)))
ratios = []
for _ in range(2000):
    b = med(base)
    den = med(bw) - b
    if den > 0:
        ratios.append((med(s) - b) / den)
ratios.sort()
if len(ratios) < 100:
    print("n/a")
else:
    print("%.2f-%.2f" % (ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]))
PY
}

measure back-to-back ""
measure "spaced ${SPACING}s" "$SPACING"

# Supervisor peak RSS of each build: poll VmHWM of the stockade process while the command
# runs, and /usr/bin/time's max RSS (the largest process of the tree, so at least the
# supervisor's).
peak_rss() {
    local bin="$1" pid peak=0 v tv
    (cd "$WS" && exec "$bin" run -C "$WS" -- sleep 1.5) &
    pid=$!
    for _ in $(seq 1 25); do
        sleep 0.05
        v="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak="$v"
    done
    wait "$pid" || true
    tv="$( { cd "$WS" && /usr/bin/time -f '%M' "$bin" run -C "$WS" -- /bin/true >/dev/null; } 2>&1 | tail -1)"
    printf '%s: supervisor peak RSS %s KiB (VmHWM polled); /usr/bin/time max RSS of the tree %s KiB (target < 10240)\n' \
        "$2" "$peak" "$tv"
}
printf '\n'
peak_rss "$STOCKADE_BIN" stockade
[ -z "${STOCKADE_MUSL_BIN:-}" ] || peak_rss "$STOCKADE_MUSL_BIN" stockade-musl
