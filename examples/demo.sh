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
: > "$AISTACK_CONFIG"
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

# the report, from the files themselves
streams=$AISTACK_STATE_DIR/streams
lines() {	# lines STREAM: records in a stream, all segments
	if [ -d "$streams/$1" ]; then
		find "$streams/$1" -maxdepth 1 -name '[0-9]*.jsonl*' -print0 |
			sort -z | xargs -0 -r zcat -f | wc -l
	else
		echo 0
	fi
}
ingested=$(lines telemetry)
rejected=$(lines telemetry.rejects)
extracted=$(find "$streams/telemetry" -maxdepth 1 -name '[0-9]*.jsonl*' -print0 |
	sort -z | xargs -0 zcat -f | jq -c -f "$top/examples/extract.jq" | wc -l)
dataset=$(lines dataset)
status=$(aistack-checkpoint status --json telemetry)
lag=$(jq -r '.consumers[] | select(.consumer == "learning") | .lag' <<< "$status")
committed=$(jq -r '.consumers[] | select(.consumer == "learning") | .records' <<< "$status")
breakers=$(aistack-breaker status 2>/dev/null | awk '{ printf "%s%s", sep, $0; sep = "; " }')

cat <<REPORT

aistack demo: the learning flow on $events generated events
  events ingested:      $ingested (4 concurrent producers)
  lines rejected:       $rejected (see streams/telemetry.rejects)
  batches:              $(( (committed + 99) / 100 )) of up to 100 events
  patterns extracted:   $extracted task_completed interactions
  duplicates removed:   $((extracted - dataset))
  dataset:              $dataset chat records (streams/dataset)
  consumer lag:         $lag bytes
  breakers:             ${breakers:-none}
  state directory:      $AISTACK_STATE_DIR

Look inside:
  zcat -f $streams/dataset/0* | head -n 3 | jq .
  AISTACK_STATE_DIR=$AISTACK_STATE_DIR ${AISTACK_BIN:-$top/build/bin}/aistack-checkpoint status
Open the dashboard:
  AISTACK_STATE_DIR=$AISTACK_STATE_DIR ${AISTACK_BIN:-$top/build/bin}/aistack-proxy --dashboard $top/dashboard
  then browse http://127.0.0.1:8888/
REPORT
