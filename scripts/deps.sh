#!/usr/bin/env bash
# Install the Debian packages Capstan and its tests use (idempotent; needs root).
set -euo pipefail
pkgs=(etcd-server etcd-client protobuf-compiler python3-kubernetes curl ca-certificates
      containerd runc crun containernetworking-plugins nftables conntrack iproute2 iptables
      busybox-static gcc libc6-dev libprotobuf-dev util-linux docker-registry skopeo apache2-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
