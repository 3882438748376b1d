#!/usr/bin/env bash
# bench/run.sh: compare cutover's proxy (its fast path on the event loops,
# on a goroutine per connection, and plain net/http) with a direct
# connection to the same backend and with nginx and HAProxy in front of it,
# both sending the app the same forwarding headers as cutover, and nginx
# without them too ("nginx-bare"): throughput and CPU per request over
# interleaved rounds, latency at a fixed rate, memory per idle client
# connection. Then it counts failed requests while cutover flips between
# two versions 20 times.
# See BENCHMARKS.md.
#
# Needs: go, wrk, curl; nginx and haproxy are optional (their rows are
# skipped without them). Installs nothing. Everything listens on 127.0.0.1;
# every process it starts is stopped on exit. About 9 minutes with the
# defaults.
#
# Environment (defaults in brackets):
#   DURATION       seconds of each wrk run [10]
#   ROUNDS         rounds of wrk runs, each over every target in turn; the
#                  table gives the median [3]
#   RATE           fixed request rate for the latency runs, req/s [5000]
#   LOAD_DURATION  seconds of each fixed-rate run [8]
#   FLIP_RATE      request rate during the flips, req/s [500]
#   FLIPS          flips: 1 deploy + FLIPS-1 rollbacks [20]
#   FLIP_PAUSE     seconds between flips, so each version serves a while [0.25]
#   CUTOVER_BIN    use this cutover binary instead of building ./cmd/cutover
#   NGINX          nginx binary [nginx from PATH, else /usr/sbin/nginx]; "none" skips it
#   HAPROXY        haproxy binary [haproxy from PATH, else /usr/sbin/haproxy]; "none" skips it
#   IDLE_CONNS     idle keep-alive connections for the memory test [10000]; 0 skips it
#   ALLOC_BENCH    1 runs the in-process allocation benchmark, 0 skips it [1]
#   KEEP_TMP=1     keep the temp dir (configs, logs) for a look afterwards
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
LOAD_DURATION=${LOAD_DURATION:-8}
FLIP_RATE=${FLIP_RATE:-500}
FLIPS=${FLIPS:-20}
FLIP_PAUSE=${FLIP_PAUSE:-0.25}
IDLE_CONNS=${IDLE_CONNS:-10000}
ALLOC_BENCH=${ALLOC_BENCH:-1}
CONNECTIONS=64

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
CUTOVER=$OUT/cutover
LOADGEN=$OUT/loadgen
IDLECONNS=$OUT/idleconns

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "ROUNDS=$ROUNDS: give a whole number of rounds from 1 to 99"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION=$DURATION: give whole seconds, at least 1"
CLK_TCK=$(getconf CLK_TCK) || die "getconf CLK_TCK failed; the CPU columns need the clock-tick rate"

for tool in go wrk curl; do
  command -v "$tool" >/dev/null || die "$tool not found; install it (Debian: apt-get install $tool; Go from go.dev/dl)"
done
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[[ $NGINX != none && -x $NGINX ]] || NGINX=
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[[ $HAPROXY != none && -x $HAPROXY ]] || HAPROXY=

mkdir -p "$OUT"
if [[ -n ${CUTOVER_BIN:-} ]]; then
  [[ -x $CUTOVER_BIN ]] || die "CUTOVER_BIN=$CUTOVER_BIN is not an executable file"
  CUTOVER=$(cd "$(dirname "$CUTOVER_BIN")" && pwd)/$(basename "$CUTOVER_BIN")
else
  say "building cutover into bench/out/"
  go build -o "$CUTOVER" ./cmd/cutover || die "go build ./cmd/cutover failed; fix the build or pass CUTOVER_BIN=path/to/cutover"
fi
go build -o "$LOADGEN" ./bench/loadgen || die "go build ./bench/loadgen failed"
go build -o "$IDLECONNS" ./bench/idleconns || die "go build ./bench/idleconns failed"

# Anything else running skews every column; say so in the results.
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cutover-bench.XXXXXX")
PIDS=()

# cleanup stops the processes this script started, newest first: SIGTERM,
# then SIGKILL for any still running after 20 s.
cleanup() {
  local pid i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ ${KEEP_TMP:-} == 1 ]]; then
    say "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start LOG CMD...: runs CMD in the background, output to LOG; the pid is in
# $! and recorded for cleanup.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
}

# free_port VAR: a port on 127.0.0.1 that nothing listens on, not handed out
# before in this run (racy like any port probe, but good enough here). It is
# taken from 20000-31999, below Linux's default ephemeral range (32768-60999),
# so that the many client connections of this script (and of anything else on
# the machine) do not hold it when a server binds it.
USED_PORTS=" "
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      printf -v "$1" '%s' "$p"
      return
    fi
  done
  die "no free port on 127.0.0.1 after 100 tries"
}

# wait_body URL TEXT SECONDS LOG: wait until URL answers with TEXT in its body.
wait_body() {
  local url=$1 text=$2 deadline=$((SECONDS + $3)) log=$4
  until curl -fsS --max-time 1 "$url" 2>/dev/null | grep -q "$text"; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$log" >&2 || true
      die "$url did not answer with \"$text\" within $3 s (log above: $log)"
    fi
    sleep 0.1
  done
}

# FORWARDING: the headers cutover sets on every request to the app; nginx
# and HAProxy are configured to send them too.
FORWARDING=(X-Forwarded-For X-Forwarded-Host X-Forwarded-Proto Forwarded X-Request-Id)
# check_forwarding NAME URL: the app's /echo, asked through URL, shows every
# FORWARDING header, so the rows compare proxies doing the same work.
check_forwarding() {
  local body h
  body=$(curl -fsS --max-time 2 "${2}echo") || die "$1: GET ${2}echo failed"
  for h in "${FORWARDING[@]}"; do
    grep -q "\"$h\"" <<<"$body" || die "$1 does not send $h to the app (GET ${2}echo gave: $body)"
  done
}

# json_num FILE KEY: a top-level number from loadgen's JSON (no jq needed).
json_num() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -n1 | cut -d: -f2; }
# json_obj FILE KEY: a flat object from loadgen's JSON as "k=v, k=v".
json_obj() {
  grep -o "\"$2\":{[^}]*}" "$1" | sed -e "s/^\"$2\"://" -e 's/[{}"]//g' -e 's/:/=/g' -e 's/,/, /g'
}
# ratio A B: A/B to two decimals, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# wrk_ms UNIT_VALUE: wrk's "612.00us" / "1.23ms" / "1.01s" in ms.
wrk_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}

NOTES=()

# cpu_ticks PID...: the CPU time those processes have used so far (utime +
# stime, fields 14 and 15 of /proc/PID/stat), in clock ticks. The fields are
# counted after the ")" that closes the command name, which may hold spaces.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || true)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# us_per_request TICKS REQUESTS: CPU microseconds per request, one decimal.
us_per_request() {
  awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n + 0 > 0) printf "%.1f", t * 1000000 / hz / n; else print "n/a" }'
}
# median VALUE...: the middle value; of an even count, the lower of the two
# middle ones, so that it is always a measured value.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# wrk_run NAME URL ROUND: one wrk run at saturation, and the CPU the target's
# processes used during it, and the app's. Sets
# R_RPS/R_W50/R_W99/R_CPU/R_ACPU[NAME,ROUND].
declare -A R_RPS R_W50 R_W99 R_CPU R_ACPU
wrk_run() {
  local name=$1 url=$2 round=$3 w="$TMP/wrk-$1-$3.txt" pids ticks app_ticks requests
  mapfile -t pids < <(proxy_pids "$name")
  say "round $round/$ROUNDS, $name: wrk -t2 -c$CONNECTIONS -d${DURATION}s"
  ticks=$(cpu_ticks "${pids[@]}")
  app_ticks=$(cpu_ticks "$APP_PID")
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency "$url" >"$w" ||
    die "wrk against $name ($url) failed (its message is above)"
  ticks=$(($(cpu_ticks "${pids[@]}") - ticks))
  app_ticks=$(($(cpu_ticks "$APP_PID") - app_ticks))
  requests=$(awk '/ requests in / { print $1 }' "$w")
  [[ -n $requests ]] || die "no \"requests in\" line in wrk's output for $name: $(tail -n 3 "$w")"
  R_RPS[$name,$round]=$(awk '/^Requests\/sec:/ { print $2 }' "$w")
  R_W50[$name,$round]=$(wrk_ms "$(awk '$1 == "50%" { print $2 }' "$w")")
  R_W99[$name,$round]=$(wrk_ms "$(awk '$1 == "99%" { print $2 }' "$w")")
  R_CPU[$name,$round]=$(us_per_request "$ticks" "$requests")
  R_ACPU[$name,$round]=$(us_per_request "$app_ticks" "$requests")
  if grep -qE 'Socket errors|Non-2xx' "$w"; then
    NOTES+=("$name wrk, round $round: $(grep -E 'Socket errors|Non-2xx' "$w" | sed 's/^ *//' | paste -sd ';' -)")
  fi
  sleep 1
}

# summarize NAME: the medians over the rounds. RPS[NAME] and CPU[NAME] are
# medians; WRK50/WRK99[NAME] are the percentiles of the run whose req/s is the
# median.
declare -A RPS WRK50 WRK99 CPU ACPU
summarize() {
  local name=$1 r rps=() cpu=() acpu=() mid
  for ((r = 1; r <= ROUNDS; r++)); do
    rps+=("${R_RPS[$name,$r]}")
    cpu+=("${R_CPU[$name,$r]}")
    acpu+=("${R_ACPU[$name,$r]}")
  done
  RPS[$name]=$(median "${rps[@]}")
  CPU[$name]=$(median "${cpu[@]}")
  ACPU[$name]=$(median "${acpu[@]}")
  for ((r = 1; r <= ROUNDS; r++)); do
    [[ ${R_RPS[$name,$r]} == "${RPS[$name]}" ]] && { mid=$r; break; }
  done
  WRK50[$name]=${R_W50[$name,$mid]}
  WRK99[$name]=${R_W99[$name,$mid]}
}

# latency NAME URL ROUND: loadgen at RATE for latency, and the CPU the
# target's processes used per request sent meanwhile. Sets
# R_P50/R_P99/R_LCPU[NAME,ROUND].
declare -A R_P50 R_P99 R_LCPU
latency() {
  local name=$1 url=$2 round=$3 j="$TMP/load-$1-$3.json" pids ticks failed missed
  mapfile -t pids < <(proxy_pids "$name")
  say "round $round/$ROUNDS, $name: loadgen -rate $RATE -duration ${LOAD_DURATION}s"
  ticks=$(cpu_ticks "${pids[@]}")
  "$LOADGEN" -rate "$RATE" -duration "${LOAD_DURATION}s" -connections "$CONNECTIONS" "$url" >"$j" ||
    die "loadgen against $name ($url) failed (its message is above)"
  ticks=$(($(cpu_ticks "${pids[@]}") - ticks))
  R_P50[$name,$round]=$(json_num "$j" p50_ms)
  R_P99[$name,$round]=$(json_num "$j" p99_ms)
  R_LCPU[$name,$round]=$(us_per_request "$ticks" "$(json_num "$j" sent)")
  failed=$(json_num "$j" failed)
  missed=$(json_num "$j" missed)
  if ((failed + missed > 0)); then
    NOTES+=("$name at $RATE req/s, round $round: $failed failed, $missed missed of $(json_num "$j" sent) sent ($(json_obj "$j" errors))")
  fi
  sleep 1
}

# summarize_latency NAME: medians over the rounds of P50, P99 and LCPU, and
# ADDED99[NAME], the median over the rounds of NAME's p99 minus direct's p99
# in the same round.
declare -A P50 P99 LCPU ADDED99
summarize_latency() {
  local name=$1 r p50=() p99=() cpu=() added=()
  for ((r = 1; r <= ROUNDS; r++)); do
    p50+=("${R_P50[$name,$r]}")
    p99+=("${R_P99[$name,$r]}")
    cpu+=("${R_LCPU[$name,$r]}")
    added+=("$(awk -v a="${R_P99[$name,$r]}" -v b="${R_P99[direct,$r]}" 'BEGIN { printf "%.2f", a - b }')")
  done
  P50[$name]=$(median "${p50[@]}")
  P99[$name]=$(median "${p99[@]}")
  LCPU[$name]=$(median "${cpu[@]}")
  ADDED99[$name]=$(median "${added[@]}")
}

# --- a. the backend, reached directly -------------------------------------
free_port APP_PORT
start "$TMP/sample-app.log" "$CUTOVER" sample-app --addr "127.0.0.1:$APP_PORT" --version v1
APP_PID=$!
wait_body "http://127.0.0.1:$APP_PORT/" version=v1 10 "$TMP/sample-app.log"

# --- b. cutover in front of it (static target) ----------------------------
# cutover_variant NAME SERVER: start cutover in front of the app as target
# NAME, with SERVER as its server: block ("{}" for the defaults); sets
# CPORT[NAME] and CPID[NAME].
declare -A CPORT CPID
cutover_variant() {
  local name=$1 server=$2 port admin
  free_port port
  free_port admin
  cat >"$TMP/$name.yaml" <<EOF
admin: {listen: "127.0.0.1:$admin"}
server: $server
apps:
  - name: bench
    listen: "127.0.0.1:$port"
    version: v1
    target:
      static:
        upstreams: ["http://127.0.0.1:$APP_PORT"]
    health: {path: /health}
EOF
  start "$TMP/$name.log" "$CUTOVER" serve -c "$TMP/$name.yaml" --data-dir "$TMP/data-$name" --log-level warn
  CPID[$name]=$!
  CPORT[$name]=$port
}
cutover_variant cutover "{}"
# The fast path on a goroutine per connection instead of the event loops,
# and every request on Go's net/http instead of the fast path: what each
# buys.
cutover_variant cutover-goroutine "{eventLoop: false}"
cutover_variant cutover-nethttp "{fastPath: false}"
for name in cutover cutover-goroutine cutover-nethttp; do
  wait_body "http://127.0.0.1:${CPORT[$name]}/" version=v1 30 "$TMP/$name.log"
  check_forwarding "$name" "http://127.0.0.1:${CPORT[$name]}/"
done

# --- c. nginx in front of it ----------------------------------------------
if [[ -n $NGINX ]]; then
  free_port NGINX_PORT
  free_port NGINX_BARE_PORT
  mkdir -p "$TMP/nginx"
  # A root master would hand its workers to "nobody"; keep them as us.
  user_line=""
  ((EUID == 0)) && user_line="user $(id -un) $(id -gn);"
  cat >"$TMP/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
worker_rlimit_nofile $((IDLE_CONNS + 2048));
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections $((IDLE_CONNS + 1024)); }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/client_body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream sample {
    server 127.0.0.1:$APP_PORT;
    keepalive 64;
  }
  # An X-Request-Id from the client is passed on, else nginx makes one.
  map \$http_x_request_id \$reqid {
    "" \$request_id;
    default \$http_x_request_id;
  }
  # "nginx": the headers cutover sends to the app, so both do the same work.
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://sample;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\\"\$http_host\\"";
      proxy_set_header X-Request-Id \$reqid;
    }
  }
  # "nginx-bare": keep-alive only; the app gets no forwarding headers.
  server {
    listen 127.0.0.1:$NGINX_BARE_PORT;
    location / {
      proxy_pass http://sample;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  start "$TMP/nginx/stderr.log" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
  NGINX_PID=$!
  wait_body "http://127.0.0.1:$NGINX_PORT/" version=v1 10 "$TMP/nginx/error.log"
  wait_body "http://127.0.0.1:$NGINX_BARE_PORT/" version=v1 10 "$TMP/nginx/error.log"
  check_forwarding nginx "http://127.0.0.1:$NGINX_PORT/"
else
  say "nginx not found: its row is skipped"
fi

# --- d. HAProxy in front of it --------------------------------------------
if [[ -n $HAPROXY ]]; then
  free_port HAPROXY_PORT
  # No "log" line anywhere: no logging. maxconn leaves room for the idle
  # connections; HAProxy reserves two descriptors per connection for that and
  # refuses to start when it cannot raise its limit so far, but idle client
  # connections need only one, so "no strict-limits" lets it run within the
  # usual 20000. The keep-alive timeout matches cutover's default idleTimeout.
  cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread 2
  no strict-limits
  maxconn $((IDLE_CONNS + 1024))
defaults
  mode http
  option http-keep-alive
  http-reuse always
  maxconn $((IDLE_CONNS + 1024))
  timeout connect 5s
  timeout client 120s
  timeout server 30s
  timeout http-keep-alive 120s
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  # The headers cutover sends to the app, as for nginx.
  option forwardfor
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Forwarded-Proto http
  http-request set-header Forwarded "for=%[src];proto=http;host=\\"%[req.hdr(host)]\\""
  unique-id-format %[uuid()]
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  default_backend sample
backend sample
  server app 127.0.0.1:$APP_PORT
EOF
  "$HAPROXY" -c -f "$TMP/haproxy.cfg" >"$TMP/haproxy-check.log" 2>&1 ||
    die "haproxy rejected $TMP/haproxy.cfg: $(tail -n 3 "$TMP/haproxy-check.log") (HAPROXY=none skips it)"
  start "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
  HAPROXY_PID=$!
  wait_body "http://127.0.0.1:$HAPROXY_PORT/" version=v1 10 "$TMP/haproxy.log"
  check_forwarding haproxy "http://127.0.0.1:$HAPROXY_PORT/"
else
  say "haproxy not found: its row is skipped"
fi

# --- e. memory per idle client connection ---------------------------------
# rss_kib PID...: the summed VmRSS of those processes, in KiB.
rss_kib() {
  local pid total=0 kib
  for pid in "$@"; do
    kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}
# proxy_pids NAME: the processes whose memory and CPU count for NAME, one a
# line (nginx: the master and its workers).
proxy_pids() {
  case $1 in
    direct) echo "$APP_PID" ;;
    cutover*) echo "${CPID[$1]}" ;;
    nginx | nginx-bare) echo "$NGINX_PID" && { pgrep -P "$NGINX_PID" || true; } ;;
    haproxy) echo "$HAPROXY_PID" ;;
  esac
}
# idle NAME URL: RSS of NAME before and while IDLE_CONNS keep-alive client
# connections that each made one request sit idle. Sets IDLE_*[NAME].
declare -A IDLE_BEFORE IDLE_AFTER IDLE_OPEN
idle() {
  local name=$1 url=$2 out="$TMP/idle-$1.txt" pid i pids
  mapfile -t pids < <(proxy_pids "$name")
  say "$name: $IDLE_CONNS idle keep-alive connections"
  IDLE_BEFORE[$name]=$(rss_kib "${pids[@]}")
  : >"$out"
  start "$out" "$IDLECONNS" -n "$IDLE_CONNS" -hold 60s -setup-timeout 60s "$url"
  pid=$!
  for ((i = 0; i < 900; i++)); do
    grep -q '^ready' "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^ready' "$out"; then
    NOTES+=("$name idle connections: idleconns did not get ready: $(tail -n 2 "$out" | paste -sd ' ' -)")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    return
  fi
  sleep 2 # let the proxy settle after the burst of requests
  IDLE_AFTER[$name]=$(rss_kib "${pids[@]}")
  IDLE_OPEN[$name]=$(awk '/^ready/ { print $2 }' "$out")
  kill -TERM "$pid"
  wait "$pid" || NOTES+=("$name idle connections: idleconns failed: $(tail -n 2 "$out" | paste -sd ' ' -)")
  if ((IDLE_OPEN[$name] < IDLE_CONNS)); then
    NOTES+=("$name idle connections: only ${IDLE_OPEN[$name]} of $IDLE_CONNS opened: $(tail -n 1 "$out")")
  fi
  sleep 3 # the proxy closes its side of the connections
}
# The targets that run, in the order of every round and of the report.
TARGETS=(direct cutover cutover-goroutine cutover-nethttp)
declare -A URL=(
  [direct]="http://127.0.0.1:$APP_PORT/"
  [cutover]="http://127.0.0.1:${CPORT[cutover]}/"
  [cutover-goroutine]="http://127.0.0.1:${CPORT[cutover-goroutine]}/"
  [cutover-nethttp]="http://127.0.0.1:${CPORT[cutover-nethttp]}/"
)
if [[ -n $NGINX ]]; then
  TARGETS+=(nginx nginx-bare)
  URL[nginx]="http://127.0.0.1:$NGINX_PORT/"
  URL[nginx-bare]="http://127.0.0.1:$NGINX_BARE_PORT/"
fi
if [[ -n $HAPROXY ]]; then
  TARGETS+=(haproxy)
  URL[haproxy]="http://127.0.0.1:$HAPROXY_PORT/"
fi
if ((IDLE_CONNS > 0)); then
  # nginx-bare is the same nginx processes as nginx.
  for t in "${TARGETS[@]}"; do [[ $t == nginx-bare ]] || idle "$t" "${URL[$t]}"; done
fi

# --- f. throughput and latency --------------------------------------------
# Throughput, then latency at a fixed rate, each in interleaved rounds, so
# that a slow spell of the machine hits every target alike rather than one.
for ((round = 1; round <= ROUNDS; round++)); do
  for t in "${TARGETS[@]}"; do wrk_run "$t" "${URL[$t]}" "$round"; done
done
for ((round = 1; round <= ROUNDS; round++)); do
  for t in "${TARGETS[@]}"; do latency "$t" "${URL[$t]}" "$round"; done
done
for t in "${TARGETS[@]}"; do
  summarize "$t"
  summarize_latency "$t"
done

# --- g. flips under load (process target, 2 replicas) ---------------------
free_port FLIP_PORT
free_port FLIP_ADMIN_PORT
cat >"$TMP/process.yaml" <<EOF
admin: {listen: "127.0.0.1:$FLIP_ADMIN_PORT"}
apps:
  - name: bench
    listen: "127.0.0.1:$FLIP_PORT"
    version: v1
    target:
      process:
        command: ["$CUTOVER", sample-app, --version, "\${VERSION}"]
        replicas: 2
    health: {path: /health}
    strategy:
      blueGreen:
        scaleDownDelay: 10m
EOF
start "$TMP/cutover-process.log" "$CUTOVER" serve -c "$TMP/process.yaml" --data-dir "$TMP/data-process" --log-level warn
wait_body "http://127.0.0.1:$FLIP_PORT/" version=v1 60 "$TMP/cutover-process.log"
export CUTOVER_ADMIN="http://127.0.0.1:$FLIP_ADMIN_PORT"
# flip_count: cutover's own count of flips (it counts the first start too).
flip_count() {
  curl -fsS --max-time 2 "$CUTOVER_ADMIN/metrics" | awk '/^cutover_flips_total\{app="bench"\}/ { print $2 }'
}
flips_before=$(flip_count)

say "flips: loadgen at $FLIP_RATE req/s while cutover deploys v2, then rolls back $((FLIPS - 1)) times"
FLIP_JSON=$TMP/load-flips.json
start "$FLIP_JSON" "$LOADGEN" -rate "$FLIP_RATE" -duration 110s -connections 16 "http://127.0.0.1:$FLIP_PORT/"
LOADGEN_PID=$!
sleep 1
flips_done=0
flip_ms=()
flips_start=$SECONDS
for ((i = 1; i <= FLIPS; i++)); do
  if ((i == 1)); then
    verb=(deploy bench --version v2)
  else
    verb=(rollback bench)
  fi
  t0=$(date +%s%N)
  if ! timeout 60 "$CUTOVER" "${verb[@]}" >>"$TMP/flips.log" 2>&1; then
    NOTES+=("flip $i (cutover ${verb[*]}) failed: $(tail -n 1 "$TMP/flips.log") (KEEP_TMP=1 keeps the logs)")
    break
  fi
  flip_ms+=($((($(date +%s%N) - t0) / 1000000)))
  flips_done=$i
  ((SECONDS - flips_start < 90)) || { NOTES+=("flips stopped after $i: time budget"); break; }
  sleep "$FLIP_PAUSE"
done
sleep 0.5
kill -INT "$LOADGEN_PID"
for ((i = 0; i < 100; i++)); do
  kill -0 "$LOADGEN_PID" 2>/dev/null || break
  sleep 0.1
done
wait "$LOADGEN_PID" || die "loadgen failed during the flips: $(cat "$FLIP_JSON")"
flip_metric=$(awk -v a="$(flip_count)" -v b="$flips_before" 'BEGIN { print a - b }')
# The deploy waits for new replicas; the rollbacks are the flips proper. Each
# is timed from starting the CLI to its exit.
rollback_median=$(printf '%s\n' "${flip_ms[@]:1}" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }')

# --- h. allocations per proxied request (in-process Go benchmark) ---------
# BenchmarkProxy sends GETs through a real listener and replica; the
# client's and replica's allocations count in every row, so the router's
# own are the difference to direct.
declare -A ALLOCS
if ((ALLOC_BENCH)); then
  say "allocations: go test -bench BenchmarkProxy -benchmem"
  go test -run '^$' -bench 'BenchmarkProxy$' -benchmem -benchtime 20000x ./internal/router/ >"$TMP/allocs.txt" 2>&1 ||
    NOTES+=("the allocation benchmark failed: $(tail -n 3 "$TMP/allocs.txt")")
  while read -r name _ _ _ _ _ allocs _; do
    ALLOCS[${name#BenchmarkProxy/}]=$allocs
  done < <(grep -E '^BenchmarkProxy/' "$TMP/allocs.txt" | sed -E 's/-[0-9]+ / /')
fi

# --- i. report ------------------------------------------------------------
# row NAME: one target's line of the main table.
row() {
  local name=$1 added
  if [[ -z ${RPS[$name]:-} ]]; then
    printf '| %s | skipped (not found) | | | | | | | | | |\n' "$name"
    return
  fi
  added=$(awk -v a="${ADDED99[$name]}" 'BEGIN { printf "%+.2f", a }')
  [[ $name == direct ]] && added="–"
  printf '| %s | %.0f | %s | %s | %s | %s / %s | %s | %s | %.2f / %.2f | %s | %s |\n' "$name" "${RPS[$name]}" \
    "$(ratio "${RPS[$name]}" "${RPS[direct]}")" "$(ratio "${RPS[$name]}" "${RPS[nginx]:-}")" \
    "$(ratio "${RPS[$name]}" "${RPS[haproxy]:-}")" "${WRK50[$name]}" "${WRK99[$name]}" "${CPU[$name]}" \
    "${ACPU[$name]}" "${P50[$name]}" "${P99[$name]}" "$added" "${LCPU[$name]}"
}
# per_round NAME BASE [CPU]: NAME's req/s divided by BASE's within each
# round; with CPU, NAME's CPU per request divided by BASE's.
per_round() {
  local name=$1 base=$2 what=req/s r out=()
  [[ -n ${RPS[$name]:-} && -n ${RPS[$base]:-} ]] || return 0
  for ((r = 1; r <= ROUNDS; r++)); do
    if [[ -n ${3:-} ]]; then
      out+=("$(ratio "${R_CPU[$name,$r]}" "${R_CPU[$base,$r]}")")
    else
      out+=("$(ratio "${R_RPS[$name,$r]}" "${R_RPS[$base,$r]}")")
    fi
  done
  [[ -n ${3:-} ]] && what="CPU µs/request"
  local IFS=,
  printf -- '- %s / %s %s per round: %s (median %s)\n' "$name" "$base" "$what" "${out[*]}" "$(median "${out[@]}")" |
    sed 's/,/, /g'
}
# idle_row NAME: RSS before and with the idle connections, and the difference
# per connection.
idle_row() {
  local name=$1
  if [[ -z ${IDLE_AFTER[$name]:-} ]]; then
    printf '| %s | skipped | | | |\n' "$name"
    return
  fi
  printf '| %s | %s | %.1f | %.1f | %s |\n' "$name" "${IDLE_OPEN[$name]}" \
    "$(awk -v k="${IDLE_BEFORE[$name]}" 'BEGIN { print k / 1024 }')" \
    "$(awk -v k="${IDLE_AFTER[$name]}" 'BEGIN { print k / 1024 }')" \
    "$(awk -v a="${IDLE_AFTER[$name]}" -v b="${IDLE_BEFORE[$name]}" -v n="${IDLE_OPEN[$name]}" \
      'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "n/a" }')"
}
{
  printf '<!-- bench/run.sh, %s; %s CPUs (%s); load average at start %s; %s; %s; %s; %s -->\n' \
    "$(date -u +%FT%TZ)" "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$LOAD_AT_START" "$(go version | cut -d' ' -f3)" \
    "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)" "$([[ -n $NGINX ]] && "$NGINX" -v 2>&1 || echo 'nginx absent')" \
    "$([[ -n $HAPROXY ]] && "$HAPROXY" -v 2>&1 | awk 'NR == 1 { print $1, $2, $3 }' || echo 'haproxy absent')"
  echo
  printf '| target | req/s (wrk, median of %s) | vs direct | vs nginx | vs haproxy | wrk p50 / p99 ms | CPU µs/request | app CPU µs/request | p50 / p99 ms at %s req/s | added p99 ms | CPU µs/request at %s req/s |\n' \
    "$ROUNDS" "$RATE" "$RATE"
  echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  for t in direct cutover cutover-goroutine cutover-nethttp nginx nginx-bare haproxy; do row "$t"; done
  if [[ -n $NGINX ]]; then
    echo
    for t in cutover cutover-goroutine cutover-nethttp haproxy nginx-bare; do per_round "$t" nginx; done
    per_round cutover nginx-bare
    for t in cutover cutover-goroutine haproxy nginx-bare; do per_round "$t" nginx cpu; done
  fi
  if ((IDLE_CONNS > 0)); then
    echo
    printf '| target | idle connections | RSS MiB before | RSS MiB with them | KiB per idle connection |\n'
    echo '|---|---:|---:|---:|---:|'
    for t in direct cutover cutover-goroutine cutover-nethttp nginx haproxy; do idle_row "$t"; done
  fi
  if [[ -n ${ALLOCS[direct]:-} ]]; then
    echo
    printf '| allocations per request (go test -bench BenchmarkProxy -benchmem) | allocs/op | added by the router |\n'
    echo '|---|---:|---:|'
    for t in direct router router-nethttp; do
      printf '| %s | %s | %s |\n' "$t" "${ALLOCS[$t]:-n/a}" \
        "$(awk -v a="${ALLOCS[$t]:-}" -v b="${ALLOCS[direct]}" 'BEGIN { if (a == "") print "n/a"; else print a - b }')"
    done
  fi
  echo
  printf 'Flips: %s of %s (1 deploy + %s rollbacks; cutover_flips_total rose by %s) under %s req/s over 2 replicas: **%s failed of %s sent** (missed %s); versions seen: %s; each rollback command took %s ms (median, CLI start to exit).\n' \
    "$flips_done" "$FLIPS" "$((flips_done > 0 ? flips_done - 1 : 0))" "${flip_metric:-?}" "$FLIP_RATE" \
    "$(json_num "$FLIP_JSON" failed)" "$(json_num "$FLIP_JSON" sent)" "$(json_num "$FLIP_JSON" missed)" \
    "$(json_obj "$FLIP_JSON" by_version)" "$rollback_median"
  if [[ -n $(json_obj "$FLIP_JSON" errors) ]]; then
    echo
    echo "Errors during the flips: $(json_obj "$FLIP_JSON" errors)"
  fi
  [[ -n $NGINX ]] || { echo; echo "nginx was not found, so its rows and the vs-nginx ratios are skipped."; }
  [[ -n $HAPROXY ]] || { echo; echo "haproxy was not found, so its rows and the vs-haproxy ratios are skipped."; }
  for n in "${NOTES[@]}"; do
    echo
    echo "Note: $n"
  done
} | tee "$OUT/results.md"
say "written to bench/out/results.md in $SECONDS s"
