#!/bin/sh
# Entrypoint of a test Swarm node: the node's own Docker daemon. Its socket is put in /dind, which the
# host mounts from a directory of its own (outside /run, which is a tmpfs here), so the host drives the
# node without any TCP port.
set -eu
mkdir -p /dind
exec dockerd --host unix:///dind/docker.sock --storage-driver overlay2 "$@"
