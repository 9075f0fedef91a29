#!/usr/bin/env bash
# make demo: generate realistic sample telemetry (VS Code, the hybrid
# coordinator, AIDB, Qdrant and a local LLM; duplicated interactions and a
# few corrupt lines), ingest it from four concurrent producers, run the
# learning flow in a fresh state directory and report what happened.
# With AISTACK_PG_DSN or PGHOST/PGDATABASE set it also loads PostgreSQL.
#
# Environment: AISTACK_BIN (the built commands), DEMO_DIR (state directory
# to use, default a new one under /tmp), DEMO_EVENTS (default 5000).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="${AISTACK_BIN:-$top/build/bin}:$PATH"
events=${DEMO_EVENTS:-5000}
AISTACK_STATE_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/aistack-demo.XXXXXX")}
AISTACK_CONFIG=$AISTACK_STATE_DIR/aistack.conf
export AISTACK_STATE_DIR AISTACK_CONFIG PATH
mkdir -p "$AISTACK_STATE_DIR/sample"
# the flow's PostgreSQL load goes through the "postgres" breaker; its
# section makes it listed from the start, called or not
printf '[breaker postgres]\nfailures = 3\nopen_for = 30s\n' > "$AISTACK_CONFIG"
if [ -z "${AISTACK_PG_DSN:-}" ] && [ -n "${PGHOST:-}${PGDATABASE:-}" ]; then
	export AISTACK_PG_DSN=postgresql://
fi

# four services produce at once
for i in 1 2 3 4; do
	"$top/bench/gen-telemetry" -n $((events / 4)) --seed "$i" --dups 0.25 \
		--corrupt 0.004 > "$AISTACK_STATE_DIR/sample/producer-$i.jsonl"
done
pids=()
for i in 1 2 3 4; do
	aistack-ingest telemetry "$AISTACK_STATE_DIR/sample/producer-$i.jsonl" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p"
done

QUIET=1 "$top/examples/learning-flow.sh"

# the report: the numbers come from the read model of the state
# (aistack-checkpoint status, aistack-breaker status), not from counting
# files here
stream() {	# stream NAME: its status as JSON ({} when it has none)
	aistack-checkpoint status --json "$1" 2> /dev/null || echo '{}'
}
telemetry=$(stream telemetry)
dataset=$(stream dataset)
ingested=$(jq -r '.records // 0' <<< "$telemetry")
rejected=$(jq -r '.rejected // 0' <<< "$telemetry")
kept=$(jq -r '.records // 0' <<< "$dataset")
lag=$(jq -r '.consumers[] | select(.consumer == "learning") | .lag' <<< "$telemetry")
committed=$(jq -r '.consumers[] | select(.consumer == "learning") | .records' <<< "$telemetry")
disk=$(jq -r '"\(.disk_bytes + .disk_bytes_gz) bytes in \(.segments + .segments_gz) segments"' <<< "$telemetry")
# what the extract step makes of the telemetry (a computation, not state)
streams=$AISTACK_STATE_DIR/streams
extracted=$(find "$streams/telemetry" -maxdepth 1 -name '[0-9]*.jsonl*' -print0 |
	sort -z | xargs -0 zcat -f | jq -c -f "$top/examples/extract.jq" | wc -l)
breakers=$(aistack-breaker status --json | jq -r '"\(.name) \(.state), \(.calls.success + .calls.failure + .calls.ignored) calls (\(.calls.failure) failed, \(.calls.refused) refused)"' |
	awk '{ printf "%s%s", sep, $0; sep = "; " }')

cat <<REPORT

aistack demo: the learning flow on $events generated events
  events ingested:      $ingested (4 concurrent producers)
  lines rejected:       $rejected (see streams/telemetry.rejects)
  telemetry on disk:    $disk
  batches:              $(( (committed + 99) / 100 )) of up to 100 events
  patterns extracted:   $extracted task_completed interactions
  duplicates removed:   $((extracted - kept))
  dataset:              $kept chat records (streams/dataset)
  consumer lag:         $lag bytes
  breakers:             ${breakers:-none}
  state directory:      $AISTACK_STATE_DIR

Look inside:
  zcat -f $streams/dataset/0* | head -n 3 | jq .
  AISTACK_STATE_DIR=$AISTACK_STATE_DIR ${AISTACK_BIN:-$top/build/bin}/aistack-checkpoint status
Open the dashboard:
  AISTACK_STATE_DIR=$AISTACK_STATE_DIR ${AISTACK_BIN:-$top/build/bin}/aistack-proxy
  then browse http://127.0.0.1:8888/
REPORT
