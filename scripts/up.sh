#!/usr/bin/env bash
# Bring a single-node Capstan cluster up on this machine: install dependencies, build,
# install /usr/local/bin/capstan, start `capstan server` in the background, wait until ready.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (the server manages containers and networking)"; exit 1; }
./scripts/deps.sh
cargo build --release --locked -p capstan
install -m 0755 target/release/capstan /usr/local/bin/capstan
data=/var/lib/capstan
mkdir -p "$data"
# The pause and busybox images, built offline and queued for the node agent.
[ -f "$data/agent/images/pause.tar" ] || /usr/local/bin/capstan images build-builtin --out "$data/agent/images"
if [ -f "$data/server.pid" ] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
  echo "capstan server already running (pid $(cat "$data/server.pid"))"
else
  setsid nohup /usr/local/bin/capstan server --data-dir "$data" --cluster-dns 10.43.0.10 >>/var/log/capstan.log 2>&1 < /dev/null &
  echo $! > "$data/server.pid"
fi
for _ in $(seq 1 100); do
  if [ -f "$data/admin.kubeconfig" ] && curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:6443/readyz | grep -q 200; then
    echo "Capstan is up. Use it with:"
    echo "  export KUBECONFIG=$data/admin.kubeconfig"
    echo "  kubectl get namespaces"
    exit 0
  fi
  sleep 0.1
done
echo "capstan server did not become ready; see /var/log/capstan.log" >&2
exit 1
