#!/usr/bin/env bash
# Scale-out run: nginx on 127.0.0.1 load-balancing N `files` replicas, mixed good and
# bad-token load through it, one replica stopped (SIGTERM) halfway through. Every good request
# must succeed and no bad one may be accepted.
#
#   bash scale-out/run.sh                      # stateless: 3 replicas, 30 s, 16 connections
#   bash scale-out/run.sh sessions             # legacy sessions too, routed to their replica
#   LOAD_SECONDS=60 CONCURRENCY=32 bash scale-out/run.sh
#
# Environment: LOAD_SECONDS (30), CONCURRENCY (16), REPLICAS (3), KILL_REPLICA (1, the index of
# the replica to kill; "none" to kill none), SEED (42), KEY_COOLDOWN_SECS (10),
# KEEP_WORK (unset: the temporary directory with the logs is removed at exit),
# RETRY_NON_IDEMPOTENT (unset: nginx never resends a POST it already sent; 1: it resends on
# error, timeout, 500, 502 and 503 even then, so a tool call may run twice).
#
# Everything listens on 127.0.0.1. nginx runs from its own configuration, pid file and logs in a
# temporary directory (`nginx -c <conf> -p <dir>`), never as the system service. Every process
# this script starts is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-stateless}
case "$MODE" in
    stateless | sessions) ;;
    *)
        echo "usage: bash scale-out/run.sh [stateless|sessions]" >&2
        exit 2
        ;;
esac
LOAD_SECONDS=${LOAD_SECONDS:-30}
CONCURRENCY=${CONCURRENCY:-16}
REPLICAS=${REPLICAS:-3}
KILL_REPLICA=${KILL_REPLICA:-1}
SEED=${SEED:-42}
KEY_COOLDOWN_SECS=${KEY_COOLDOWN_SECS:-10}
NEXT_UPSTREAM="error timeout http_502 http_503"
[ -n "${RETRY_NON_IDEMPOTENT:-}" ] && NEXT_UPSTREAM="error timeout http_500 http_502 http_503 non_idempotent"

say() { printf '\n== %s\n' "$*"; }

# --- nginx --------------------------------------------------------------------------------
NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "nginx is not installed; run as root or: sudo apt-get install -y nginx" >&2
        exit 1
    fi
    say "installing nginx from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
echo "nginx: $NGINX ($("$NGINX" -v 2>&1))"

# --- build --------------------------------------------------------------------------------
say "building files and mixedload (release)"
cargo build --release -p mcp-guard-examples --bin files --bin mixedload
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$ROOT/target}/release

# --- work directory and cleanup -----------------------------------------------------------
WORK=$(mktemp -d /tmp/mcp-guard-scale-out.XXXXXX)
chmod 755 "$WORK" # nginx workers (not root) need to reach their temp paths
ML_PID=""

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if alive "$ML_PID"; then kill -TERM "$ML_PID" 2>/dev/null || true; fi
    if [ -f "$WORK/replicas.pids" ]; then
        while read -r pid; do
            # Only the replicas this run started (pid reuse guard).
            if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--resource $PUBLIC_URL"; then
                kill -TERM "$pid" 2>/dev/null || true
            fi
        done <"$WORK/replicas.pids"
    fi
    if [ -f "$WORK/nginx.pid" ]; then
        local npid
        npid=$(cat "$WORK/nginx.pid" 2>/dev/null || true)
        if alive "$npid"; then kill -QUIT "$npid" 2>/dev/null || true; fi
    fi
    sleep 0.5
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

# --- ports ----------------------------------------------------------------------------------
USED=" "
# Ports below the kernel's ephemeral range: a port in it may be taken, at any moment, as the
# local port of an outgoing connection (this run's own load makes thousands).
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_SPAN=$((EPHEMERAL_LOW - 20000))
[ "$PORT_SPAN" -gt 1000 ] || PORT_SPAN=1000
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % PORT_SPAN))
        case "$USED" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED="$USED$p "
            echo "$p"
            return
        fi
    done
}
LB_PORT=$(free_port)
USED="$USED$LB_PORT "
PORTS=()
for ((i = 0; i < REPLICAS; i++)); do
    p=$(free_port)
    USED="$USED$p "
    PORTS+=("$p")
done
PUBLIC_URL="http://127.0.0.1:$LB_PORT/mcp"

# --- nginx configuration --------------------------------------------------------------------
UPSTREAM_LINES=()
for p in "${PORTS[@]}"; do
    UPSTREAM_LINES+=("        server 127.0.0.1:$p max_fails=1 fail_timeout=2s;")
done
REPLICA_UPSTREAM_LINES=()
ROUTE_LINES=()
if [ "$MODE" = sessions ]; then
    for ((i = 0; i < REPLICAS; i++)); do
        REPLICA_UPSTREAM_LINES+=("    upstream replica_$i {")
        REPLICA_UPSTREAM_LINES+=("        server 127.0.0.1:${PORTS[$i]} max_fails=1 fail_timeout=2s;")
        for ((j = 0; j < REPLICAS; j++)); do
            [ "$j" = "$i" ] || REPLICA_UPSTREAM_LINES+=("        server 127.0.0.1:${PORTS[$j]} backup;")
        done
        REPLICA_UPSTREAM_LINES+=("        keepalive 16;" "        keepalive_timeout 4s;" "    }")
        ROUTE_LINES+=("        ~^r$i- replica_$i;")
    done
fi
while IFS= read -r line; do
    if [[ $line == "@UPSTREAMS@" ]]; then
        printf '%s\n' "${UPSTREAM_LINES[@]}"
    elif [[ $line == "@REPLICA_UPSTREAMS@" ]]; then
        [ ${#REPLICA_UPSTREAM_LINES[@]} -eq 0 ] || printf '%s\n' "${REPLICA_UPSTREAM_LINES[@]}"
    elif [[ $line == "@SESSION_ROUTES@" ]]; then
        [ ${#ROUTE_LINES[@]} -eq 0 ] || printf '%s\n' "${ROUTE_LINES[@]}"
    else
        line=${line//@PREFIX@/$WORK}
        line=${line//@LISTEN@/$LB_PORT}
        line=${line//@NEXT_UPSTREAM@/$NEXT_UPSTREAM}
        printf '%s\n' "$line"
    fi
done <"$ROOT/scale-out/nginx.conf.template" >"$WORK/nginx.conf"

say "starting nginx on 127.0.0.1:$LB_PORT -> replicas on ${PORTS[*]}"
"$NGINX" -t -q -e "$WORK/error.log" -c "$WORK/nginx.conf" -p "$WORK/"
"$NGINX" -e "$WORK/error.log" -c "$WORK/nginx.conf" -p "$WORK/"
for _ in $(seq 50); do [ -s "$WORK/nginx.pid" ] && break; sleep 0.1; done
echo "nginx master pid $(cat "$WORK/nginx.pid"), config $WORK/nginx.conf"
echo "proxy_next_upstream $NEXT_UPSTREAM;"

# --- replicas and load ----------------------------------------------------------------------
say "mixedload ($MODE): dev authorization server, $REPLICAS replicas, $LOAD_SECONDS s through nginx"
KILL_ARGS=()
[ "$KILL_REPLICA" != none ] && KILL_ARGS=(--kill-replica "$KILL_REPLICA")
[ "$MODE" = sessions ] && KILL_ARGS+=(--sessions)
RC=0
"$BIN/mixedload" \
    --target "$PUBLIC_URL" --public-url "$PUBLIC_URL" \
    --replicas "$REPLICAS" --replica-ports "$(IFS=,; echo "${PORTS[*]}")" \
    --files-bin "$BIN/files" --log-dir "$WORK" --pid-file "$WORK/replicas.pids" \
    --key-cooldown-secs "$KEY_COOLDOWN_SECS" \
    --seconds "$LOAD_SECONDS" --concurrency "$CONCURRENCY" --seed "$SEED" \
    "${KILL_ARGS[@]}" &
ML_PID=$!
wait "$ML_PID" || RC=$?
ML_PID=""

# --- nginx's view ---------------------------------------------------------------------------
NPID=$(cat "$WORK/nginx.pid")
kill -QUIT "$NPID" # flushes the buffered access log
for _ in $(seq 100); do alive "$NPID" || break; sleep 0.1; done

say "nginx's view: $(wc -l <"$WORK/access.log") requests in its access log"
echo "statuses: $(awk '{print $2}' "$WORK/access.log" | sort | uniq -c | awk '{printf "%s ×%s  ", $2, $1}')"
RETRIED=$(grep -c 'upstream=[^ ]*, ' "$WORK/access.log" || true)
echo "requests nginx moved on to another replica (upstream \"a, b\"): $RETRIED"
echo "5xx answered to clients: $(awk '$2 >= 500' "$WORK/access.log" | wc -l)"
echo "upstream events in error.log (count, first-last time, event):"
sed -nE 's/^[0-9\/]+ ([0-9:]+) \[([a-z]+)\] [0-9#]+: (\*[0-9]+ )?(.*), client: .*upstream: "([^"]*)".*/\1|[\2] \4 (\5)/p' "$WORK/error.log" |
    awk -F'|' '{ if (!($2 in n)) { first[$2] = $1; order[++k] = $2 } n[$2]++; last[$2] = $1 }
        END { for (i = 1; i <= k; i++) printf "  %3d  %s-%s  %s\n", n[order[i]], first[order[i]], last[order[i]], order[i] }'

say "replica logs: readiness, shutdown, warnings and errors"
for ((i = 0; i < REPLICAS; i++)); do
    sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/replica-$i.log" |
        sed -nE 's/^[0-9-]+T([0-9:.]{12})[0-9]*Z +([A-Z]+) ([^ ]+): (.*)/\1 \2 \4/p' |
        grep -E ' (WARN|ERROR) |ready|shutting down|stopped' |
        sed -E "s/mcp-guard files server ready: MCP URL ([^ ]*).*/ready, resource \1/; s/^/replica $i  /" |
        head -6 || true
done

say "result: $([ "$RC" = 0 ] && echo PASS || echo "FAIL (mixedload exit $RC)")"
exit "$RC"
