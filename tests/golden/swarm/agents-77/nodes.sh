#!/bin/sh
# fleet agents-77: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init --advertise-addr 192.168.1.20` on mainpc, `docker swarm join` on the others
#   mainpc has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   pc2 has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   firewall: open between the fleet's machines TCP 2377 (to managers), TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN), e.g. with ufw:
#     on mainpc: ufw allow proto tcp from 192.168.1.21 to any port 2377,7946
#     on mainpc: ufw allow proto udp from 192.168.1.21 to any port 7946,4789
#     on pc2: ufw allow proto tcp from 192.168.1.20 to any port 2377,7946
#     on pc2: ufw allow proto udp from 192.168.1.20 to any port 7946,4789
#   images: the fleet has no registry, so each built image must be on its node before the deploy: agents-77/audio-emotion:current, agents-77/core-platform:current, agents-77/infra-core-cpu:current, agents-77/language-stack-gpu:current, agents-77/memory-reasoning-gpu:current, agents-77/memory-stack:current, agents-77/model-manager-gpu:current, agents-77/reasoning-gpu:current, agents-77/tutor-suite-cpu:current, agents-77/utility-gpu:current, agents-77/vision-dream-gpu:current, agents-77/vision-gpu:current
set -eu
docker node update --label-add dockyard.machine=mainpc "${NODE_MAINPC:-mainpc}"
docker node update --label-add dockyard.machine=pc2 "${NODE_PC2:-pc2}"
