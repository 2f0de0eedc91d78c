#!/bin/sh
# Start the Sentinel beside one Redis. Its config lives in an emptyDir because Sentinel
# rewrites it (known peers, current epoch); each start begins from what the other
# sentinels say, so a stale file never names an old master.
set -eu
. /scripts/common.sh
master="$(current_master)"
conf=/sentinel/sentinel.conf
cat > "$conf" <<CONF
port 26379
dir /tmp
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SELF
sentinel monitor $MASTER_SET $master 6379 $QUORUM
sentinel down-after-milliseconds $MASTER_SET $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_SET $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_SET 1
CONF
if [ -n "${REDIS_PASSWORD:-}" ]; then
  echo "sentinel auth-pass $MASTER_SET $REDIS_PASSWORD" >> "$conf"
fi
echo "start-sentinel: monitoring $MASTER_SET at $master" >&2
exec redis-server "$conf" --sentinel
