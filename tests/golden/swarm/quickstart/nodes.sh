#!/bin/sh
# fleet quickstart: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init` on local
#   images: the fleet has no registry, so each built image must be on its node before the deploy: quickstart/embedder:current, quickstart/gateway:current, quickstart/store:current
set -eu
docker node update --label-add dockyard.machine=local "${NODE_LOCAL:-local}"
