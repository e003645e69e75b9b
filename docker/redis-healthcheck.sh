#!/bin/sh
# Healthcheck of the artm-compose Redis image: PING on the node's port, authenticated with the password
# from $REDIS_PASSWORD_FILE. The password goes to redis-cli on stdin (AUTH), never on its command line.
# Healthy means "answers"; whether the cluster is complete is the bootstrap's business.
set -eu
conf="${REDIS_NODE_DIR:-/data}/redis.conf"
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
port=$(awk '$1 == "port" { print $2; exit }' "$conf")
replies=$(
    {
        if [ -r "$password_file" ]; then
            printf 'AUTH %s\n' "$(cat "$password_file")"
        fi
        echo PING
    } | redis-cli -p "${port:-6379}"
)
case "$replies" in
    *PONG*) exit 0 ;;
    *) echo "redis on port ${port:-6379} did not answer PING: $replies" >&2; exit 1 ;;
esac
