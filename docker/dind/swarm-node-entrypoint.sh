#!/bin/sh
# Entrypoint of a test Swarm node: the node's own Docker daemon. Its socket is put in /run/dind, which the
# host mounts from a directory of its own, so the host drives the node without any TCP port.
set -eu
mkdir -p /run/dind
exec dockerd --host unix:///run/dind/docker.sock --storage-driver overlay2 "$@"
