#!/bin/sh
# fleet budgets: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init --advertise-addr <address of box>` on box, `docker swarm join` on the others
#   box has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0", "NVIDIA-GPU=1"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   spark has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   firewall: open between the fleet's machines TCP 2377 (to managers), TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN), e.g. with ufw:
#     on box: ufw allow proto tcp from <address of spark> to any port 2377,7946
#     on box: ufw allow proto udp from <address of spark> to any port 7946,4789
#     on spark: ufw allow proto tcp from <address of box> to any port 2377,7946
#     on spark: ufw allow proto udp from <address of box> to any port 7946,4789
set -eu
docker node update --label-add dockyard.machine=box "${NODE_BOX:-box}"
docker node update --label-add dockyard.machine=spark "${NODE_SPARK:-spark}"
