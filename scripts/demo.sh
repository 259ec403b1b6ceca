#!/usr/bin/env bash
# The demo: installs what it needs, then brings up a 3-host lab on this machine
# (network-namespace hosts on a shared underlay, each with its own containerd,
# a registry on h1, three managers forming one Raft cluster, an agent and netd
# on every host), builds the demo's web image with `clusterctl image build`,
# runs it as a replicated service on an overlay network with a published port,
# and fetches its page through every node.
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
C=.venv/bin/clusterctl
LAB=${LAB:-demo}

$C lab down "$LAB" >/dev/null 2>&1 || true   # a fresh lab every time
$C lab up --name "$LAB" --hosts 3 --managers 3

echo
echo "== each host is its own machine: hostname, address, and the others over the underlay"
for h in h1 h2 h3; do
  name=$($C lab exec --lab "$LAB" "$h" -- hostname)
  addr=$($C lab exec --lab "$LAB" "$h" -- ip -4 -o addr show eth0 | awk '{print $4}')
  reach=""
  for peer in h1 h2 h3; do
    [ "$peer" = "$h" ] && continue
    ip=$($C lab status "$LAB" --format json | .venv/bin/python -c \
      "import json,sys; print(next(x['address'] for x in json.load(sys.stdin)['hosts'] if x['name']=='$peer'))")
    if $C lab exec --lab "$LAB" "$h" -- busybox ping -c1 -W2 "$ip" >/dev/null; then
      reach+=" $peer ok"
    else
      reach+=" $peer UNREACHABLE"
    fi
  done
  echo "$h: hostname $name, $addr, ping:$reach"
done
echo
first=$($C lab status "$LAB" --format json | .venv/bin/python -c \
  "import json,sys; print(json.load(sys.stdin)['hosts'][0]['address'])")
certs=$($C lab status "$LAB" --format json | .venv/bin/python -c \
  "import json,sys; print(json.load(sys.stdin)['client_certs'])")
# Managers speak only mutual TLS: the lab wrote an admin certificate for us.
DOCKER="/usr/bin/docker --tlsverify --tlscacert $certs/ca.pem --tlscert $certs/cert.pem --tlskey $certs/key.pem -H tcp://$first:2377"
echo "== three managers (one Raft cluster) and an agent on every host"
$C node ls
echo
$DOCKER node ls
echo
echo "== the demo's web image: built by a node's agent from examples/web (FROM the lab's busybox), pushed to the lab registry"
$C image build -t "$first:5000/demo/web:1" --build-arg "REGISTRY=$first:5000" examples/web
$C image push "$first:5000/demo/web:1"
echo
echo "== an overlay network (VXLAN across the hosts) and a web service on it, published on port 8080"
$DOCKER network create -d overlay demo-net
$DOCKER service create --name web --replicas 3 --network demo-net --publish 8080:80 \
  --stop-grace-period 1s --update-monitor 1s "$first:5000/demo/web:1"
$DOCKER service ps web
echo
echo "== the page through every node's published port (the routing mesh picks a task anywhere)"
tasks=$($DOCKER service ps web --no-trunc --filter desired-state=running --format '{{.ID}} {{.Node}}')
addresses=$($C lab status "$LAB" --format json | .venv/bin/python -c \
  "import json,sys; print(' '.join(x['address'] for x in json.load(sys.stdin)['hosts']))")
for addr in $addresses; do
  for i in 1 2; do
    page=$(curl -s -m 5 "http://$addr:8080/" || echo "no answer")
    task=${page##* }
    node=$(echo "$tasks" | awk -v t="$task" 'index($1, t) == 1 {print $2}')
    echo "  $addr:8080 -> $page (on ${node:-?})"
  done
done
echo
echo "Look around:  .venv/bin/clusterctl node ls;  .venv/bin/clusterctl image ls --node $LAB-h2"
echo "              $DOCKER service ps web"
echo "              .venv/bin/clusterctl lab status $LAB"
echo "              .venv/bin/clusterctl lab exec --lab $LAB h2 -- ip -br link   # bridges, VXLAN, veths"
echo "Take it down: .venv/bin/clusterctl lab down $LAB"
