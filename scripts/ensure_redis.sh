#!/usr/bin/env bash
# Prints a Redis URL for the tests: the server on 127.0.0.1:6379 when it answers,
# otherwise one started here (Debian's redis-server, installed if missing) on a free port.
set -euo pipefail
answers() { python3 - "$1" <<'PY'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG")
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
if answers 6379; then echo "redis://127.0.0.1:6379/9"; exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq redis-server) >&2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir="$(pwd)/var/redis"; mkdir -p "$dir"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" >&2
for _ in $(seq 50); do answers "$port" && break; sleep 0.1; done
answers "$port" || { echo "could not start redis-server" >&2; exit 1; }
echo "redis://127.0.0.1:$port/9"
