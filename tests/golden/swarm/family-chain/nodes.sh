#!/bin/sh
# fleet chain: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init` on box
set -eu
docker node update --label-add dockyard.machine=box "${NODE_BOX:-box}"
