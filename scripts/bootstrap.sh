#!/usr/bin/env bash
# Installs what Shoal needs on Debian 12, idempotently and quickly when all is there:
# the Debian packages the lab runs (containerd, runc, the registry, ...) and a
# virtualenv at .venv with the project installed. Run as root.
#   scripts/bootstrap.sh          runtime only
#   scripts/bootstrap.sh --dev    also the test tools (pytest, ruff, mypy, import-linter)
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  containerd runc iproute2 nftables fuse3 busybox-static docker-registry tini
  util-linux procps ca-certificates curl
  docker.io   # only its client: the stock docker CLI drives the managers' API
)

# The tests also run the store's conformance suite against a real etcd, and
# the benchmarks measure the overlay with iperf3.
[ "${1:-}" = "--dev" ] && DEBIAN_PACKAGES+=(etcd-server iperf3)

if [ "$(id -u)" != 0 ]; then
  echo "bootstrap: run as root (the lab creates network namespaces)" >&2
  exit 1
fi

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A Python with venv and ensurepip (Debian splits them into python3-venv).
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3 python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python 3.11 or newer is needed, found $(python3 --version)" >&2; exit 1; }

extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
stamp=".venv/.installed$extra-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -e "$stamp" ]; then
  echo "bootstrap: installing the project into .venv" >&2
  # pip's own chatter (build-backend notices, unreachable mirror warnings) is
  # noise here; its errors still reach the terminal and fail the script.
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".$extra" 2>&1 | grep -vE '^WARNING: Location|^ ' || true
  .venv/bin/python -c 'import clusterctl.main, lab.lifecycle' # fails loudly if the install did
  touch "$stamp"
fi
