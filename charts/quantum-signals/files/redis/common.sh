# Shared by start-redis.sh and start-sentinel.sh. Environment (set by the StatefulSet):
# POD_NAME, HEADLESS (headless Service), NAMESPACE, MASTER_SET.
SELF="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
FIRST="${POD_NAME%-*}-0.$HEADLESS.$NAMESPACE.svc"

# The master the sentinels agree on; pod 0 when none answers (the set's first start).
current_master() {
  for ordinal in 0 1 2; do
    peer="${POD_NAME%-*}-$ordinal.$HEADLESS.$NAMESPACE.svc"
    [ "$peer" = "$SELF" ] && continue
    answer="$(timeout 3 redis-cli -h "$peer" -p 26379 --raw \
      sentinel get-master-addr-by-name "$MASTER_SET" 2>/dev/null | head -n 1 || true)"
    if [ -n "$answer" ]; then
      echo "$answer"
      return 0
    fi
  done
  echo "$FIRST"
}
