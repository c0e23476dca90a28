#!/usr/bin/env bash
# Side-by-side benchmark of ternd and coturn on this machine, one server at a time.
#
#   bash benches/compare.sh            # about 11 minutes; DUR=5 MEMDUR=10 for a quicker pass
#   ONLY=uclient RUNS=3 bash benches/compare.sh   # the uclient workload only, ternd and
#                                      # coturn alternating, RUNS times (loss next to µs/pkt)
#   BASE_BIN=/path/to/older/ternd SERVERS="ternd base coturn" ONLY=uclient RUNS=3 ...
#                                      # "base": another ternd build, same flags, alternating
#   TERND_ARGS / BASE_ARGS: extra flags for ternd / base (e.g. "--udp-recv-buffer 0")
#   BASE_BIN=... ALL_SERVERS="ternd base coturn forwarder" bash benches/compare.sh
#                                      # every workload, an older build beside this one
#
# Builds ternd (release) and examples/webrtc_turn_server.rs (the webrtc-rs `turn` 0.17
# server, a dev-dependency), installs coturn if absent, then for each server in turn starts it on
# 127.0.0.1 (relay ports 20000-32000: below ip_local_port_range, room for 10,000 allocations)
# and drives it with the same
# `ternd bench` workloads (client sockets on 127.0.0.2, built-in echo peer on 127.0.0.1) and
# with the fixed coturn workload `turnutils_uclient -m 50 -n 2000 -l 200 -z 0` against
# `turnutils_peer`. Server CPU time comes from /proc/PID/stat before and after each run;
# "µs/pkt" is server CPU microseconds per relayed packet, counting both directions (a packet
# echoed through the relay is two relayed packets: client→peer and peer→client).
# A third row set, "forwarder", is `ternd forwarder`: the same I/O (runtime, batched receive,
# one socket per client) with no TURN logic, driven by `ternd bench --mode raw` with the same
# sizes and rates: the floor the relay's CPU per packet is measured against.
# Memory: RSS growth per allocation with 5,000 (both servers) and 10,000 (ternd)
# allocations, each with a permission and a channel, relaying 5 packets/s on every one for
# MEMDUR seconds (default 30), from /proc/PID/status (VmRSS) before and at the peak.
# Loss: every row has its loss next to its CPU per packet. For the uclient rows a second
# table says where datagrams were dropped, from the kernel's per-socket counts
# (benches/udp_drops.py: the server's listener and relay sockets, the peer's, the client's)
# and, for ternd, its own ternd_udp_receive_queue_drops_total / ternd_udp_send_errors_total
# (scraped from its /metrics on 127.0.0.1:$HTTP_PORT).
# Prints the tables and writes them as markdown to target/compare.md; logs in
# target/compare-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECRET=compare-secret
PORT=3578
PEER_PORT=3480
HTTP_PORT=3579
ONLY=${ONLY:-all}
RUNS=${RUNS:-1}
SERVERS=${SERVERS:-ternd coturn}
# The servers of the full run (ONLY=all), in order.
ALL_SERVERS=${ALL_SERVERS:-ternd coturn webrtc forwarder}
BASE_BIN=${BASE_BIN:-}
TERND_ARGS=${TERND_ARGS:-}
BASE_ARGS=${BASE_ARGS:-}
# The forwarder sends here; `ternd bench --mode raw --peer` runs its echo peer here.
RAW_PEER=127.0.0.1:3482
DUR=${DUR:-10}
MEMDUR=${MEMDUR:-30}
LOGS=target/compare-logs
mkdir -p "$LOGS"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building ternd and the webrtc-rs example (release)..." >&2
timeout 600 cargo build --release --quiet
if [ "$ONLY" = all ] && [[ " $ALL_SERVERS " == *" webrtc "* ]]; then
    timeout 900 cargo build --release --quiet --example webrtc_turn_server
fi
BIN=target/release/ternd
WEBRTC=target/release/examples/webrtc_turn_server
# Static credentials for the webrtc-rs server (it has no REST-secret handler for
# EXPIRY:USER names); ternd and coturn use the REST secret.
WEBRTC_USER=bench
WEBRTC_PASS=compare-pass
# Every server gets the hard fd limit (coturn and webrtc-rs do not raise it themselves).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if ! command -v turnserver >/dev/null || ! command -v turnutils_uclient >/dev/null; then
    echo "installing coturn..." >&2
    timeout 300 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq coturn >/dev/null
    # The package's service is not wanted running.
    (service coturn stop || systemctl stop coturn) >/dev/null 2>&1 || true
fi
COTURN_VERSION=$(turnserver --version 2>/dev/null | head -1 || true)

# utime + stime of PID, in clock ticks (USER_HZ = 100).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

ROWS=()
# row SERVER WORKLOAD RELAYED_PPS RECV_PPS LOSS P50 P99 US_PER_PKT BENCH_CPU ALLOCS_PER_S
row() {
    local IFS='|'
    ROWS+=("$*")
    printf '%-7s %-34s %10s %10s %7s %8s %8s %7s %9s %9s\n' "$@" >&2
}

# VmRSS of PID, KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

SPID=
start_server() {
    local name=$1
    case $name in
    forwarder)
        "$BIN" forwarder --listen "127.0.0.1:$PORT" --peer "$RAW_PEER" \
            --duration 10m >"$LOGS/forwarder.log" 2>&1 &
        ;;
    ternd | base)
        local bin=$BIN extra=$TERND_ARGS
        if [ "$name" = base ]; then
            bin=${BASE_BIN:?BASE_BIN names the other ternd build}
            extra=$BASE_ARGS
        fi
        # $extra is split into flags on purpose.
        # shellcheck disable=SC2086
        # --rfc5766-channel-numbers: Debian's coturn 4.6.1 uclient picks channel numbers above
        # 0x4FFF (coturn accepts them). Limits meant for the Internet are off for the benchmark.
        "$bin" --listen "127.0.0.1:$PORT" --secret "$SECRET" --relay-ports 20000-32000 \
            --allow-peer 127.0.0.1/32 --user-quota 0 --http-listen "127.0.0.1:$HTTP_PORT" --log-level warn \
            --rfc5766-channel-numbers --unauth-rate-limit 0 --max-allocations-per-ip 0 \
            $extra >"$LOGS/$name.log" 2>&1 &
        ;;
    webrtc)
        "$WEBRTC" "127.0.0.1:$PORT" "$WEBRTC_USER=$WEBRTC_PASS" 20000-32000 \
            >"$LOGS/webrtc.log" 2>&1 &
        ;;
    coturn)
        turnserver -n --listening-ip=127.0.0.1 --listening-port="$PORT" --use-auth-secret \
            --static-auth-secret="$SECRET" --realm=ternd --min-port=20000 --max-port=32000 \
            --allow-loopback-peers --no-cli --no-tls --no-dtls --log-file=stdout \
            --simple-log --pidfile="$LOGS/coturn.pid" --no-software-attribute \
            >"$LOGS/coturn.log" 2>&1 &
        ;;
    esac
    SPID=$!
    PIDS+=("$SPID")
    sleep 1.5
    if ! kill -0 "$SPID" 2>/dev/null; then
        echo "$name did not start; see $LOGS/$name.log" >&2
        exit 1
    fi
}

stop_server() {
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    sleep 0.5
}

# Credentials `ternd bench` uses against SERVER.
creds() {
    case $1 in
    webrtc) echo "--username $WEBRTC_USER --password $WEBRTC_PASS" ;;
    forwarder) echo "" ;;
    *) echo "--secret $SECRET" ;;
    esac
}

# bench SERVER LABEL ARGS...: one `ternd bench` run, one row.
bench() {
    local server=$1 label=$2
    shift 2
    local before after json
    before=$(cpu_ticks "$SPID")
    # shellcheck disable=SC2046
    if ! json=$(timeout $((DUR + 60)) "$BIN" bench --server "127.0.0.1:$PORT" $(creds "$server") \
        --duration "${DUR}s" --json -q "$@" 2>>"$LOGS/bench-$server.err"); then
        row "$server" "$label" fail - - - - - - -
        return
    fi
    after=$(cpu_ticks "$SPID")
    echo "$json" >>"$LOGS/bench-$server.jsonl"
    local fields
    fields=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); ticks = float(sys.argv[2])
relayed = r["received"] + (r["peer_received"] or r["received"])
d = r["duration_s"]
us = ticks * 1e4 / relayed if relayed else float("nan")
print("%.0f|%.0f|%.2f|%.0f|%.0f|%.2f|%.0f%%|%.0f" % (relayed / d, r["received_pps"], r["loss_pct"],
      r["latency_us"]["p50"], r["latency_us"]["p99"], us, 100 * r["bench_cpu_s"] / d,
      r["allocations_per_s"]))
' "$json" "$((after - before))")
    local IFS='|'
    # shellcheck disable=SC2086
    row "$server" "$label" $fields
}

MEMROWS=()
# memory SERVER N: RSS growth with N allocations (a permission and a channel each) relaying
# 5 packets/s on every one for MEMDUR seconds.
memory() {
    local server=$1 n=$2 base peak r json
    base=$(rss_kib "$SPID")
    peak=$base
    # shellcheck disable=SC2046
    timeout $((MEMDUR + 300)) "$BIN" bench --server "127.0.0.1:$PORT" $(creds "$server") \
        --allocations "$n" --mode channel --size 100 --rate $((n * 5)) --duration "${MEMDUR}s" \
        --json -q >"$LOGS/mem-$server-$n.json" 2>>"$LOGS/bench-$server.err" &
    local bpid=$!
    while kill -0 "$bpid" 2>/dev/null; do
        r=$(rss_kib "$SPID")
        if [ "$r" -gt "$peak" ]; then peak=$r; fi
        sleep 0.5
    done
    if ! wait "$bpid"; then
        MEMROWS+=("$server|$n|fail|-|-|-|-")
        printf '%-7s %6s allocations: bench failed\n' "$server" "$n" >&2
        return
    fi
    json=$(cat "$LOGS/mem-$server-$n.json")
    local fields
    fields=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); base, peak, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("%.1f|%.1f|%.2f|%.0f|%.3f" % (base / 1024, peak / 1024, (peak - base) / n,
      r["allocations_per_s"], r["loss_pct"]))
' "$json" "$base" "$peak" "$n")
    MEMROWS+=("$server|$n|$fields")
    printf '%-7s %6s allocations: RSS %s\n' "$server" "$n" "$fields" >&2
}

# ternd's drop counters (receive-queue drops listener/relay, send errors) as "a|b|c", or "-".
ternd_drops() {
    python3 -c '
import sys, urllib.request
try:
    text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=2).read().decode()
except Exception:
    print("-"); sys.exit()
v = {"listener": 0, "relay": 0, "send": 0}
if "ternd_udp_receive_queue_drops_total" not in text:
    print("-"); sys.exit()  # a ternd without these counters
for line in text.splitlines():
    if line.startswith("ternd_udp_receive_queue_drops_total{"):
        v["listener" if "socket=\"listener\"" in line else "relay"] += int(float(line.split()[-1]))
    elif line.startswith("ternd_udp_send_errors_total{"):
        v["send"] += int(float(line.split()[-1]))
print("%d|%d|%d" % (v["listener"], v["relay"], v["send"]))
' "$HTTP_PORT"
}

DROPROWS=()
# uclient SERVER: the fixed turnutils_uclient workload.
uclient() {
    local server=$1 before after out
    local counters0=- counters1=-
    if [ "$server" = ternd ] || [ "$server" = base ]; then counters0=$(ternd_drops); fi
    before=$(cpu_ticks "$SPID")
    local t0 t1
    t0=$(date +%s.%N)
    local auth=(-W "$SECRET" -u bench)
    if [ "$server" = webrtc ]; then auth=(-u "$WEBRTC_USER" -w "$WEBRTC_PASS"); fi
    timeout 120 turnutils_uclient "${auth[@]}" -e 127.0.0.1 -r "$PEER_PORT" \
        -m 50 -n 2000 -l 200 -z 0 -p "$PORT" 127.0.0.1 >"$LOGS/uclient-$server.log" 2>&1 &
    local upid=$!
    local drops
    drops=$(python3 benches/udp_drops.py "$PORT" "$SPID" "$PEER_PID" "$upid" || echo '{}')
    if ! wait "$upid"; then
        row "$server" "uclient -m50 -n2000 -l200 -z0" fail - - - - - - -
        return
    fi
    t1=$(date +%s.%N)
    after=$(cpu_ticks "$SPID")
    if [ "$server" = ternd ] || [ "$server" = base ]; then counters1=$(ternd_drops); fi
    out=$(cat "$LOGS/uclient-$server.log")
    local fields
    fields=$(python3 -c '
import re, sys
out, ticks, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
m = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
sent, recv = map(int, m[-1])
lost = re.search(r"Total lost packets (\d+) \(([\d.]+)%\)", out)
rtt = re.search(r"Average round trip delay ([\d.]+) ms", out)
relayed = sent + recv
print("%.0f|-|%s|%s|-|%.2f|-|-" % (relayed / secs, lost.group(2)[:5] if lost else "?",
      "%.0f(avg)" % (float(rtt.group(1)) * 1000) if rtt else "?", ticks * 1e4 / relayed))
' "$out" "$((after - before))" "$(python3 -c "print($t1 - $t0)")")
    local IFS='|'
    # shellcheck disable=SC2086
    row "$server" "uclient -m50 -n2000 -l200 -z0" $fields
    local loss us
    loss=$(cut -d'|' -f3 <<<"$fields")
    us=$(cut -d'|' -f6 <<<"$fields")
    local where
    where=$(python3 -c '
import json, sys
d = json.loads(sys.argv[1] or "{}"); c0, c1 = sys.argv[2], sys.argv[3]
if c0 != "-" and c1 != "-":
    a = [int(x) for x in c0.split("|")]; b = [int(x) for x in c1.split("|")]
    own = "%d|%d|%d" % tuple(y - x for x, y in zip(a, b))
else:
    own = "-|-|-"
print("%s|%s|%s|%s|%s" % (d.get("server_listener", "?"), d.get("server_relay", "?"),
      d.get("peer", "?"), d.get("client", "?"), own))
' "$drops" "$counters0" "$counters1")
    DROPROWS+=("$server|$RUN|$loss|$us|$where")
    local w
    IFS='|' read -r -a w <<<"$where"
    printf '%-7s run %s: loss %s %%, %s µs/pkt; kernel drops: server listener %s, relay %s, peer %s, client %s; ternd counters: listener %s, relay %s, send errors %s\n' \
        "$server" "$RUN" "$loss" "$us" "${w[@]}" >&2
}

turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$LOGS/turnutils_peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
RUN=1

printf '%-7s %-34s %10s %10s %7s %8s %8s %7s %9s %9s\n' server workload "relayed/s" "echoed/s" \
    "loss%" "p50 µs" "p99 µs" "µs/pkt" "bench cpu" "allocs/s" >&2
if [ "$ONLY" = uclient ]; then
    # Alternating, so the machine's other load falls on both alike.
    for RUN in $(seq 1 "$RUNS"); do
        for server in $SERVERS; do
            start_server "$server"
            uclient "$server"
            stop_server
        done
    done
fi
for server in $ALL_SERVERS; do
    [ "$ONLY" = all ] || break
    start_server "$server"
    if [ "$server" = forwarder ]; then
        # The floor: same sizes and rates, no TURN.
        bench "$server" "raw 100 B max, 1 client" --mode raw --peer "$RAW_PEER" --size 100 --rate max --allocations 1
        bench "$server" "raw 100 B max, 100 clients" --mode raw --peer "$RAW_PEER" --size 100 --rate max --allocations 100
        bench "$server" "raw 1200 B max, 1 client" --mode raw --peer "$RAW_PEER" --size 1200 --rate max --allocations 1
        bench "$server" "raw 1200 B max, 100 clients" --mode raw --peer "$RAW_PEER" --size 1200 --rate max --allocations 100
        bench "$server" "raw 100 B 20k pps, 10 clients" --mode raw --peer "$RAW_PEER" --size 100 --rate 20000 --allocations 10
        stop_server
        continue
    fi
    bench "$server" "channel 100 B max, 1 alloc" --mode channel --size 100 --rate max --allocations 1
    bench "$server" "channel 100 B max, 100 allocs" --mode channel --size 100 --rate max --allocations 100
    bench "$server" "channel 1200 B max, 1 alloc" --mode channel --size 1200 --rate max --allocations 1
    bench "$server" "channel 1200 B max, 100 allocs" --mode channel --size 1200 --rate max --allocations 100
    bench "$server" "send 100 B max, 1 alloc" --mode send --size 100 --rate max --allocations 1
    bench "$server" "channel 100 B 20k pps, 10 allocs" --mode channel --size 100 --rate 20000 --allocations 10
    uclient "$server"
    memory "$server" 5000
    if [ "$server" = ternd ] || [ "$server" = base ]; then
        # A fresh server, so the growth is from an empty table as for 5,000.
        stop_server
        start_server "$server"
        memory "$server" 10000
    fi
    stop_server
done

HEADER="| server | workload | relayed pkt/s | echoed pkt/s | loss % | p50 µs | p99 µs | server µs/relayed pkt | bench CPU | allocs/s |"
{
    echo "# ternd vs coturn (benches/compare.sh)"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "ternd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ${COTURN_VERSION:-coturn}, ${DUR} s per ternd-bench run."
    echo "Relayed = client→peer + peer→client forwards; bench CPU = the generator's own CPU (of one core)."
    echo "webrtc = the webrtc-rs turn 0.17 server (examples/webrtc_turn_server.rs, static credentials); forwarder = ternd forwarder, the floor."
    echo "uclient rows: turnutils_uclient -m 50 -n 2000 -l 200 -z 0 with turnutils_peer (latency is its average)."
    echo
    echo "$HEADER"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${ROWS[@]}"; do
        echo "| ${r//|/ | } |"
    done
    echo
    echo "Where the uclient rows' datagrams were dropped: kernel per-socket counts (/proc/net/udp drops,"
    echo "by owning process) and ternd's own counters over the run."
    echo
    echo "| server | run | loss % | µs/pkt | server listener rx | server relay rx | peer rx | client rx | ternd listener rx | ternd relay rx | ternd send errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${DROPROWS[@]}"; do
        echo "| ${r//|/ | } |"
    done
    echo
    echo "Memory: N allocations with a permission and a channel each, 5 packets/s on every one for ${MEMDUR} s."
    echo
    echo "| server | allocations | RSS before MiB | RSS peak MiB | KiB/allocation | allocs/s | loss % |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for r in "${MEMROWS[@]}"; do
        echo "| ${r//|/ | } |"
    done
} >target/compare.md

echo
printf '%-7s %-34s %10s %10s %7s %8s %8s %7s %9s %9s\n' server workload "relayed/s" "echoed/s" \
    "loss%" "p50 µs" "p99 µs" "µs/pkt" "bench cpu" "allocs/s"
for r in "${ROWS[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    printf '%-7s %-34s %10s %10s %7s %8s %8s %7s %9s %9s\n' "${f[@]}"
done
echo
printf '%-7s %4s %7s %7s | %9s %9s %7s %7s | %9s %9s %9s\n' server run "loss%" "µs/pkt" \
    "srv lst rx" "srv rly rx" "peer rx" "cli rx" "ternd lst" "ternd rly" "ternd snd"
for r in "${DROPROWS[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    printf '%-7s %4s %7s %7s | %9s %9s %7s %7s | %9s %9s %9s\n' "${f[@]}"
done
echo
printf '%-7s %12s %14s %12s %14s %9s %7s\n' server allocations "RSS before MiB" "RSS peak MiB" \
    "KiB/allocation" "allocs/s" "loss%"
for r in "${MEMROWS[@]}"; do
    IFS='|' read -r -a f <<<"$r"
    printf '%-7s %12s %14s %12s %14s %9s %7s\n' "${f[@]}"
done
echo
echo "markdown: target/compare.md; logs: $LOGS/"
