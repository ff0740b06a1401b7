#!/bin/sh
# fleet spark-control: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init --advertise-addr 192.168.1.51` on spark1, `docker swarm join` on the others
#   spark1 has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   spark2 has GPUs: in its /etc/docker/daemon.json
#     "default-runtime": "nvidia",
#     "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
#     "node-generic-resources": ["NVIDIA-GPU=0"]
#     (GPU indexes, or the UUIDs `nvidia-smi -L` prints, which survive a reordering);
#     in its /etc/nvidia-container-runtime/config.toml: swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"
#     then restart docker: a GPU task's `nvidia-smi -L` lists only the GPUs it reserved
#   firewall: open between the fleet's machines TCP 2377 (to managers), TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN), e.g. with ufw:
#     on spark1: ufw allow proto tcp from 192.168.1.52 to any port 2377,7946
#     on spark1: ufw allow proto udp from 192.168.1.52 to any port 7946,4789
#     on spark1: ufw allow proto tcp from 192.168.1.10 to any port 2377,7946
#     on spark1: ufw allow proto udp from 192.168.1.10 to any port 7946,4789
#     on spark2: ufw allow proto tcp from 192.168.1.51 to any port 2377,7946
#     on spark2: ufw allow proto udp from 192.168.1.51 to any port 7946,4789
#     on spark2: ufw allow proto tcp from 192.168.1.10 to any port 2377,7946
#     on spark2: ufw allow proto udp from 192.168.1.10 to any port 7946,4789
#     on start9: ufw allow proto tcp from 192.168.1.51 to any port 2377,7946
#     on start9: ufw allow proto udp from 192.168.1.51 to any port 7946,4789
#     on start9: ufw allow proto tcp from 192.168.1.52 to any port 2377,7946
#     on start9: ufw allow proto udp from 192.168.1.52 to any port 7946,4789
#   images: the fleet has no registry, so each built image must be on its node before the deploy: spark-control/embeddings:current, spark-control/spark-control:current
set -eu
docker node update --label-add dockyard.machine=spark1 "${NODE_SPARK1:-spark1}"
docker node update --label-add dockyard.machine=spark2 "${NODE_SPARK2:-spark2}"
docker node update --label-add dockyard.machine=start9 "${NODE_START9:-start9}"
