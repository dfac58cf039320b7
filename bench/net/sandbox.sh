#!/bin/sh
# Throughput of a 1 GiB download from a host server into a Linux sandbox through the allowlist
# proxy (the bridge listener inside the sandbox's network namespace, adopted by the proxy),
# against the same download directly on the host, interleaved, in one run.
# Usage: bench/net/sandbox.sh [ROUNDS]   (needs root or user namespaces, python3, nc from
# netcat-openbsd, and a release build: STOCKADE_BIN or target/release/stockade)
set -eu
rounds="${1:-5}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="${STOCKADE_BIN:-$here/../../target/release/stockade}"
[ -x "$bin" ] || { echo "sandbox.sh: build first: cargo build --release -p stockade" >&2; exit 1; }
# The workspace must not be below /tmp (the sandbox's /tmp is private).
ws="$(mktemp -d "${HOME}/.stockade-net-bench.XXXXXX")"
trap 'rm -rf "$ws"' EXIT
cat > "$ws/get.py" <<'PY'
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
via = int(sys.argv[3]) if len(sys.argv) > 3 else None
if via:
    s = socket.create_connection(("127.0.0.1", via))
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
else:
    s = socket.create_connection((host, port))
buf, n, t = bytearray(1 << 20), 0, time.time()
while True:
    k = s.recv_into(buf)
    if not k:
        break
    n += k
print(f"{n / 2**20 / (time.time() - t):.0f}")
PY
serve() { head -c 1073741824 /dev/zero | nc -N -l 127.0.0.1 "$1" >/dev/null 2>&1 & sleep 0.4; }
direct=""; boxed=""
i=0
while [ "$i" -lt "$rounds" ]; do
    serve 19090; direct="$direct $(cd "$ws" && python3 get.py 127.0.0.1 19090)"
    serve 19091; boxed="$boxed $("$bin" run -C "$ws" --allow-host localhost:19091 -- python3 get.py localhost 19091 3128)"
    i=$((i + 1))
done
median() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
d=$(median $direct); b=$(median $boxed)
echo "direct MiB/s:$direct   median $d"
echo "sandbox via proxy MiB/s:$boxed   median $b"
echo "ratio $(awk "BEGIN {printf \"%.1f%%\", 100*$b/$d}") (target >= 80%)"
