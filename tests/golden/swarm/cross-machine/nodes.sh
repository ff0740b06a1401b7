#!/bin/sh
# fleet crossing: rendered by dockyard from fleet.yaml; edit that, not this file.
# Run on a swarm manager: labels each node with its machine, which the stack's
# placement constraints select (node.labels.dockyard.machine). A node is named like its
# machine unless NODE_<MACHINE> names it (see `docker node ls`).
#
# Before deploying:
#   swarm: `docker swarm init --advertise-addr 10.0.0.1` on a, `docker swarm join` on the others
#   firewall: open between the fleet's machines TCP 2377 (to managers), TCP+UDP 7946 (gossip) and UDP 4789 (overlay VXLAN), e.g. with ufw:
#     on a: ufw allow proto tcp from 10.0.0.2 to any port 2377,7946
#     on a: ufw allow proto udp from 10.0.0.2 to any port 7946,4789
#     on b: ufw allow proto tcp from 10.0.0.1 to any port 2377,7946
#     on b: ufw allow proto udp from 10.0.0.1 to any port 7946,4789
set -eu
docker node update --label-add dockyard.machine=a "${NODE_A:-a}"
docker node update --label-add dockyard.machine=b "${NODE_B:-b}"
