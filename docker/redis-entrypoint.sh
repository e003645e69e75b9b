#!/bin/sh
# Entrypoint of the artm-compose Redis image: one Redis Cluster node per container.
#
# Contract (environment; none of it secret):
#   REDIS_NODE_DIR       node directory (default /data). On every start it is emptied of everything but
#                        redis.conf: a stale nodes.conf or dump breaks the cluster (the reference's rule).
#   REDIS_PASSWORD_FILE  file holding the password (default /run/secrets/redis_password). It is fed to
#                        redis-server on stdin, so it never appears on a command line, in the environment
#                        or in the node directory.
#   redis.conf           if $REDIS_NODE_DIR/redis.conf exists and was not written by this script (e.g. the
#                        state directory's redis/<i>/redis.conf, mounted), it is used as it is. Otherwise
#                        it is (re)written on every start from:
#   REDIS_PORT           client port (default 7000; the cluster bus is port + 10000)
#   REDIS_ANNOUNCE_IP    cluster-announce-ip (optional; a fixed address on the cluster's network)
#   REDIS_NODE_TIMEOUT   cluster-node-timeout in ms (default 5000)
#   REDIS_MAXMEMORY      maxmemory, e.g. 512mb (optional; the policy is always noeviction)
# Arguments starting with "-" are passed to redis-server as extra options; any other command is run
# instead of Redis (e.g. `docker run IMAGE redis-cli ...`).
set -eu

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

node_dir=${REDIS_NODE_DIR:-/data}
conf="$node_dir/redis.conf"
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
marker="# written by redis-entrypoint.sh; rewritten on every start"

fail() {
    echo "redis-entrypoint.sh: $*" >&2
    exit 64
}

render_conf() {
    port=${REDIS_PORT:-7000}
    case "$port" in
        '' | *[!0-9]*) fail "REDIS_PORT=$port is not a port number" ;;
    esac
    # The cluster bus listens on port + 10000, which must be a port too.
    if [ "$port" -lt 1 ] || [ "$port" -gt 55535 ]; then
        fail "REDIS_PORT=$port is out of range 1..55535 (the cluster bus uses port + 10000)"
    fi
    timeout=${REDIS_NODE_TIMEOUT:-5000}
    case "$timeout" in
        '' | *[!0-9]*) fail "REDIS_NODE_TIMEOUT=$timeout is not a number of milliseconds" ;;
    esac
    echo "$marker"
    echo "port $port"
    echo "bind * -::*"
    echo "protected-mode yes"
    echo "dir $node_dir"
    echo "daemonize no"
    echo 'logfile ""'
    echo "cluster-enabled yes"
    echo "cluster-config-file nodes.conf"
    echo "cluster-node-timeout $timeout"
    echo "maxmemory-policy noeviction"
    echo 'save ""'
    echo "appendonly no"
    if [ -n "${REDIS_ANNOUNCE_IP:-}" ]; then
        echo "cluster-announce-ip $REDIS_ANNOUNCE_IP"
    fi
    if [ -n "${REDIS_MAXMEMORY:-}" ]; then
        echo "maxmemory $REDIS_MAXMEMORY"
    fi
}

[ -d "$node_dir" ] || fail "node directory $node_dir does not exist"
[ -w "$node_dir" ] || fail "node directory $node_dir is not writable by uid $(id -u)"
find "$node_dir" -mindepth 1 -maxdepth 1 ! -name redis.conf -exec rm -rf -- {} +

if [ ! -e "$conf" ] || [ "$(head -n 1 "$conf")" = "$marker" ]; then
    render_conf > "$conf.new"
    mv "$conf.new" "$conf"
elif [ ! -r "$conf" ]; then
    fail "$conf is not readable by uid $(id -u)"
fi

if [ -e "$password_file" ]; then
    [ -r "$password_file" ] || fail "password file $password_file is not readable by uid $(id -u)"
    password=$(cat "$password_file")
    case "$password" in
        '') fail "password file $password_file is empty" ;;
        *[[:space:]\"\'\\]*) fail "the password in $password_file contains blanks, quotes or backslashes" ;;
    esac
    # redis-server reads its configuration from the file, then from stdin ("-" last), then the options.
    exec redis-server "$conf" "$@" - <<EOF
requirepass $password
masterauth $password
EOF
fi

if [ "$(head -n 1 "$conf")" = "$marker" ]; then
    fail "no password file at $password_file: mount one (REDIS_PASSWORD_FILE names another path)"
fi
exec redis-server "$conf" "$@"
