#!/bin/sh
# fleet her-os: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init` on spark
#   spark has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   images: the fleet has no registry, so each built image must be on its node before the deploy: her-os/her-os-audio:current, her-os/her-os-core:current, her-os/her-os-ser:current
set -eu
docker node update --label-add dockyard.machine=spark "${NODE_SPARK:-spark}"
