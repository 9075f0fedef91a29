#!/usr/bin/env bash
# The learning flow, as aistack-learn.service runs it every five minutes:
#
#   1. (optional) ingest telemetry files given as arguments;
#   2. hand the telemetry stream to the batch pipeline 100 events at a
#      time, batches doubling up to MAX_BATCH events (16 MiB) while they
#      come full (a backlog); each batch is committed only when the whole
#      pipeline succeeds:
#        extract (jq) | aistack-dedup -a dataset | aistack-ingest dataset
#   3. when AISTACK_PG_DSN is set, load the dataset into PostgreSQL behind
#      the "postgres" breaker (a down database costs one refused call);
#   4. rotate: seal, compress and expire what every consumer has read;
#   5. print a summary (unless QUIET=1).
#
# Environment: AISTACK_STATE_DIR (see aistack(7)), TELEMETRY (stream,
# default telemetry), DATASET (default dataset), BATCH (default 100),
# MAX_BATCH (default 20000: what a crash may deliver again),
# EXTRACT (jq program file, default extract.jq beside this script),
# AISTACK_PG_DSN (postgres:// URI without password), PG_TABLE (default
# aistack_dataset).  Any failure leaves its batch for the next run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TELEMETRY=${TELEMETRY:-telemetry}
DATASET=${DATASET:-dataset}
BATCH=${BATCH:-100}
MAX_BATCH=${MAX_BATCH:-20000}
EXTRACT=${EXTRACT:-$here/extract.jq}
PG_TABLE=${PG_TABLE:-aistack_dataset}
QUIET=${QUIET:-0}
export EXTRACT DATASET

if [ $# -gt 0 ]; then
	aistack-ingest "$TELEMETRY" "$@"
fi

# 2. telemetry -> dataset, exactly once per unique interaction
# shellcheck disable=SC2016 # the batch's own shell expands these
aistack-checkpoint run -n "$BATCH" --max-batch "$MAX_BATCH" \
	learning "$TELEMETRY" -- \
	bash -o pipefail -c '
		jq -c -f "$EXTRACT" |
		aistack-dedup -a "$DATASET" \
			-k ".messages[1].content,.messages[2].content" \
			--normalize trim,lower |
		aistack-ingest "$DATASET"'

# 3. dataset -> PostgreSQL, when configured
if [ -n "${AISTACK_PG_DSN:-}" ]; then
	status=0
	aistack-checkpoint run -n 1000 pgload "$DATASET" -- \
		aistack-breaker run postgres -- \
		aistack-ingest --table "$PG_TABLE" "$AISTACK_PG_DSN" || status=$?
	case $status in
	0) ;;
	75) echo "learning-flow: postgres breaker open; the load waits for the next run" >&2 ;;
	*) exit "$status" ;;
	esac
fi

# 4. rotation of every stream
aistack-rotate

# 5. summary
if [ "$QUIET" != 1 ]; then
	aistack-checkpoint status
fi
