#!/usr/bin/env bash
# aistack-proxy against Debian's nginx on the same three routes, with wrk
# (1 thread, 32 connections, 10 s, loopback), in one run:
#   - the dashboard file (GET /, index.html);
#   - the 429 path: every request over the limit (nginx: limit_req with
#     limit_req_status 429);
#   - a proxied call to a keepalive upstream (a third nginx server that
#     answers a small JSON body; nginx proxies with an upstream keepalive
#     pool, aistack-proxy through libcurl and its breaker).
# Requests/s and p99 latency for both (medians of $BENCH_RUNS runs taken
# in turn, at least 5: on this shared machine a 10 s run's p99 is bimodal
# for both servers, 1 ms or 3-4 ms, and three runs can land either way), as ratios (target 0.5x nginx), and
# the proxy's memory after 100,000 distinct client addresses across
# 127.0.0.0/8.
# Usage: bench/proxy.sh [SECONDS]   (default 10)
set -eu
. "$(dirname "$0")/lib.sh"

secs=${1:-10}
for tool in wrk nginx; do
	if ! command -v "$tool" > /dev/null && ! [ -x "/usr/sbin/$tool" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			    --no-install-recommends wrk nginx-light >&2
		else
			echo "bench: proxy: wrk and nginx-light are needed" >&2
			exit 1
		fi
	fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
REPO=$(cd "$BENCH_DIR/.." && pwd)
work=$BENCH_WORK/proxy
rm -rf "$work"
mkdir -p "$work/nginx" "$work/state"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	[ -f "$work/nginx/front.pid" ] && kill "$(cat "$work/nginx/front.pid")" 2>/dev/null
	[ -f "$work/nginx/up.pid" ] && kill "$(cat "$work/nginx/up.pid")" 2>/dev/null
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {	# wait_port PORT: until something accepts there
	local i
	for ((i = 0; i < 100; i++)); do
		if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: nothing listens on $1" >&2
	return 1
}

UP=$(free_port)
NG=$(free_port)

# --- nginx: the upstream, and the front with the three routes --------------
common="pid_placeholder
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }"
cat > "$work/nginx/up.conf" <<EOF
${common/pid_placeholder/pid $work/nginx/up.pid;}
worker_processes 1;
http {
	access_log off;
	client_body_temp_path $work/nginx/tmp-up;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$UP;
		location = /v1/health {
			default_type application/json;
			return 200 '{"ok":true}';
		}
	}
}
EOF
cat > "$work/nginx/front.conf" <<EOF
${common/pid_placeholder/pid $work/nginx/front.pid;}
worker_processes auto;
http {
	access_log $work/nginx/access.log;
	client_body_temp_path $work/nginx/tmp-front;
	proxy_temp_path $work/nginx/tmp-proxy;
	keepalive_requests 1000000;
	include /etc/nginx/mime.types;
	limit_req_zone \$binary_remote_addr zone=one:10m rate=1r/m;
	upstream up {
		server 127.0.0.1:$UP;
		keepalive 32;
	}
	server {
		listen 127.0.0.1:$NG;
		location = / {
			root $REPO/dashboard;
			try_files /index.html =404;
		}
		location = /limited {
			# a content handler: "return" would answer before limit_req
			limit_req zone=one;
			limit_req_status 429;
			root $REPO/dashboard;
			try_files /index.html =404;
		}
		location = /upstream/up/v1/health {
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://up/v1/health;
		}
	}
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/up.conf" -e "$work/nginx/error.log"
"$NGINX" -p "$work/nginx" -c "$work/nginx/front.conf" -e "$work/nginx/error.log"
wait_port "$UP"
wait_port "$NG"

# --- aistack-proxy: one open instance, one that limits everything ----------
export AISTACK_STATE_DIR=$work/state
cat > "$work/proxy.conf" <<EOF
[proxy]
max_connections_per_client = 256
max_clients = 131072

[upstream up]
url = http://127.0.0.1:$UP
allow = /v1/health
EOF
export AISTACK_CONFIG=$work/proxy.conf
start_proxy() {	# start_proxy NAME ARG...: sets PORT_NAME and PID_NAME
	local name=$1 port
	shift
	port=$(free_port)
	aistack-proxy -l "127.0.0.1:$port" --dashboard "$REPO/dashboard" \
	    --access-log "$work/$name.access.log" "$@" 2> "$work/$name.err" &
	pids+=($!)
	printf -v "PID_$name" '%s' "$!"
	printf -v "PORT_$name" '%s' "$port"
	wait_port "$port"
}
start_proxy open --rate 1000000000/min
start_proxy limited --rate 1/min --burst 1

# wrk's requests/s and p99 (ms) of URL
bench_url() {	# bench_url VAR URL
	local out rps p99
	out=$(wrk -t1 -c32 -d"${secs}s" --latency "$2")
	rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
	p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000
		printf "%.3f", v }')
	if printf '%s\n' "$out" | grep -q 'Socket errors'; then
		note "$2: $(printf '%s\n' "$out" | grep 'Socket errors')"
	fi
	printf -v "$1" '%s' "$rps"
	printf -v "${1}_p99" '%s' "$p99"
}

echo "proxy: wrk -t1 -c32 -d${secs}s against nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //'), worker_processes auto)"
# make sure every route answers as it should before measuring
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_open/upstream/up/v1/health")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NG/upstream/up/v1/health")" = 200 ]
curl -s -o /dev/null "http://127.0.0.1:$PORT_limited/"
curl -s -o /dev/null "http://127.0.0.1:$NG/limited"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_limited/")" = 429 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NG/limited")" = 429 ]

median() {	# median N...: the middle value (the lower middle of an even count)
	printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"
}

runs=$(( BENCH_RUNS > 5 ? BENCH_RUNS : 5 ))
[ "${BENCH_QUICK:-0}" = 1 ] && runs=$BENCH_RUNS

# compare WHAT OURS-URL NGINX-URL: $runs runs of each, taken in
# turn (this machine is shared: a slow moment hits both sides), medians
# of requests/s and of p99 as two rows
compare() {
	local what=$1 i r_ours=() p_ours=() r_base=() p_base=()
	for ((i = 0; i < runs; i++)); do
		bench_url ours "$2"
		bench_url base "$3"
		r_ours+=("$ours") p_ours+=("$ours_p99")
		r_base+=("$base") p_base+=("$base_p99")
	done
	row "proxy: $what, requests/s" "$(median "${r_ours[@]}")" nginx \
	    "$(median "${r_base[@]}")" req/s 0.5 higher
	row "proxy: $what, p99 latency (ms)" "$(median "${p_ours[@]}")" nginx \
	    "$(median "${p_base[@]}")" ms 0.5 lower
	if [ "$runs" -gt 1 ]; then
		note "proxy: $what, requests/s of the $runs runs: aistack ${r_ours[*]}; nginx ${r_base[*]}"
		note "proxy: $what, p99 (ms) of the $runs runs: aistack ${p_ours[*]}; nginx ${p_base[*]}"
	fi
}

compare "dashboard file" "http://127.0.0.1:$PORT_open/" "http://127.0.0.1:$NG/"
compare "429 rate-limited path" "http://127.0.0.1:$PORT_limited/" \
    "http://127.0.0.1:$NG/limited"
compare "keepalive upstream" "http://127.0.0.1:$PORT_open/upstream/up/v1/health" \
    "http://127.0.0.1:$NG/upstream/up/v1/health"

# --- memory: 100,000 distinct client addresses ------------------------------
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
before=$(rss "$PID_limited")
python3 - "$PORT_limited" 100000 <<'EOF'
import socket, sys
from concurrent.futures import ThreadPoolExecutor
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

def one(i):
    addr = "127.%d.%d.%d" % (1 + (i >> 16), (i >> 8) & 255, i & 255)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    try:
        s.bind((addr, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        while s.recv(4096):
            pass
    finally:
        s.close()

def chunk(k):
    for i in range(k, n, 8):
        one(i)

with ThreadPoolExecutor(8) as ex:
    list(ex.map(chunk, range(8)))
EOF
after=$(rss "$PID_limited")
# from an address of its own: 127.0.0.1 has no token left
metrics=$(curl -s --interface 127.3.0.1 "http://127.0.0.1:$PORT_limited/metrics" || true)
clients=$(printf '%s\n' "$metrics" | awk '$1 == "aistack_proxy_ratelimit_clients" { print $2 }')
table=$(printf '%s\n' "$metrics" | awk '$1 == "aistack_proxy_ratelimit_memory_bytes" { print $2 }')
note "aistack-proxy with 100,000 client addresses (127.1.0.0-127.2.134.159): RSS ${before} KiB before, ${after} KiB after (+$((after - before)) KiB, $(( (after - before) * 1024 / 100000 )) bytes a client); rate limit table ${clients:-?} clients of 131072, ${table:-?} bytes allocated (touched only as used); nginx's limit_req zone is a fixed 10m here"
row "proxy: RSS growth for 100,000 clients (KiB), 16 MiB budget" "$((after - before))" "16 MiB" 16384 KiB 1
