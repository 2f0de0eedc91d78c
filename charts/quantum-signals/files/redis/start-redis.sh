#!/bin/sh
# Start one Redis of the Sentinel set (templates/redis/sentinel-configmap.yaml).
# A pod becomes a replica of whatever master the sentinels name; only when no sentinel
# answers yet (first start of the set) does pod 0 start as the master.
set -eu
. /scripts/common.sh
master="$(current_master)"
set -- --port 6379 --dir /data --protected-mode no \
  --replica-announce-ip "$SELF" --appendonly "$APPENDONLY" --appendfsync "$APPENDFSYNC"
if [ -n "${REDIS_PASSWORD:-}" ]; then
  set -- "$@" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD"
fi
if [ "$master" != "$SELF" ]; then
  echo "start-redis: replica of $master" >&2
  exec redis-server "$@" --replicaof "$master" 6379
fi
echo "start-redis: master ($SELF)" >&2
exec redis-server "$@"
