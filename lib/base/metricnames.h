/*
 * Every Prometheus metric aistack exports, by name, with its help text:
 * the one list that the commands writing metrics/ files, the read
 * model's renderer (lib/state/stateprom.h) and the proxy's /metrics share, and
 * that aistack(7) documents (tests/metrics.bats checks that every
 * name here is in its table).
 *
 * The convention (see aistack(7), METRICS):
 *  - a _total is a counter kept by the state itself (the stream's
 *    .counters, the consumer file, the breaker's files, the dedup state,
 *    the follow source), monotonic across processes and restarts;
 *  - what one run did is a gauge aistack_CMD_last_run_..., beside
 *    aistack_CMD_last_success_timestamp_seconds;
 *  - live state (backlog, lag, paused, disk, breaker state) is computed
 *    when it is read, from the state directory (lib/state/stateview.h).
 *
 * Each name is MN_X, its help text MH_X.  Labels are in the comments.
 */
#ifndef AISTACK_METRICNAMES_H
#define AISTACK_METRICNAMES_H

/* --- streams: counters kept by the stream, under its lock --------------- */

/* counter {stream, result="appended|rejected|empty"} */
#define MN_INGEST_RECORDS	"aistack_ingest_records_total"
#define MH_INGEST_RECORDS	"Input lines by result (appended, rejected, " \
	"empty), counted by the stream."
/* counter {stream} */
#define MN_INGEST_BYTES		"aistack_ingest_bytes_total"
#define MH_INGEST_BYTES		"Bytes of records appended, counted by the " \
	"stream."

/* --- streams: live, from the read model --------------------------------- */

/* gauge {stream} */
#define MN_STREAM_HEAD		"aistack_stream_head_bytes"
#define MH_STREAM_HEAD		"The stream's head: its logical size in bytes."
/* gauge {stream} */
#define MN_STREAM_FIRST		"aistack_stream_first_offset_bytes"
#define MH_STREAM_FIRST		"The oldest retained offset of the stream."
/* gauge {stream} */
#define MN_STREAM_BACKLOG	"aistack_stream_backlog_bytes"
#define MH_STREAM_BACKLOG	"Bytes appended but not committed by the " \
	"slowest consumer."
/* gauge {stream} */
#define MN_STREAM_MAX_BACKLOG	"aistack_stream_max_backlog_bytes"
#define MH_STREAM_MAX_BACKLOG	"The --max-backlog of the stream's last " \
	"writer (0: no limit)."
/* gauge {stream, form="plain|gz"} */
#define MN_STREAM_DISK		"aistack_stream_disk_bytes"
#define MH_STREAM_DISK		"Bytes of the stream's segments on disk, by " \
	"form."
/* gauge {stream, form="plain|gz"} */
#define MN_STREAM_SEGMENTS	"aistack_stream_segments"
#define MH_STREAM_SEGMENTS	"Segments of the stream, by form."
/* gauge {stream} */
#define MN_INGEST_PAUSED	"aistack_ingest_paused"
#define MH_INGEST_PAUSED	"1 while a writer of the stream is waiting " \
	"for its backlog to drain."

/* --- aistack-ingest: one run (metrics/ingest-NAME.prom) ------------------ */

/* gauge {stream, result="appended|rejected|empty"} */
#define MN_INGEST_LAST_RECORDS	"aistack_ingest_last_run_records"
#define MH_INGEST_LAST_RECORDS	"Input lines by result in the last run."
/* gauge {stream} */
#define MN_INGEST_LAST_BYTES	"aistack_ingest_last_run_bytes"
#define MH_INGEST_LAST_BYTES	"Bytes of records appended in the last run."
/* gauge {stream} */
#define MN_INGEST_LAST_BATCHES	"aistack_ingest_last_run_batches"
#define MH_INGEST_LAST_BATCHES	"Batches appended in the last run."
/* gauge {stream} */
#define MN_INGEST_LAST_PAUSED	"aistack_ingest_last_run_paused_seconds"
#define MH_INGEST_LAST_PAUSED	"Time the last run waited for the backlog " \
	"to drain."
/* gauge {stream} */
#define MN_INGEST_LAST_SUCCESS	"aistack_ingest_last_success_timestamp_seconds"
#define MH_INGEST_LAST_SUCCESS	"When a run last ended (or, with --follow, " \
	"last reported) without an error."

/* --- consumers ------------------------------------------------------------ */

/* gauge {stream, consumer}: live */
#define MN_CONSUMER_LAG		"aistack_consumer_lag_bytes"
#define MH_CONSUMER_LAG		"Bytes between the stream's head and the " \
	"consumer's committed offset."
/* gauge {stream, consumer}: live */
#define MN_CONSUMER_COMMITTED	"aistack_consumer_committed_offset"
#define MH_CONSUMER_COMMITTED	"The consumer's committed offset."
/* gauge {stream, consumer}: from the consumer file */
#define MN_CONSUMER_UPDATED	"aistack_consumer_last_commit_timestamp_seconds"
#define MH_CONSUMER_UPDATED	"When the consumer's offset last changed " \
	"(a commit, or a seek)."
/* counter {stream, consumer}: kept by the consumer file */
#define MN_CONSUMER_RECORDS	"aistack_consumer_records_committed_total"
#define MH_CONSUMER_RECORDS	"Records committed by the consumer."
/* counter {stream, consumer}: kept by the consumer file */
#define MN_CONSUMER_FAILED	"aistack_consumer_batches_failed_total"
#define MH_CONSUMER_FAILED	"Batches whose command failed; they stay " \
	"uncommitted."

/* --- aistack-checkpoint: one run (metrics/checkpoint-S.C.prom) ----------- */

/* gauge {stream, consumer} */
#define MN_CHECKPOINT_LAST_RECORDS "aistack_checkpoint_last_run_records"
#define MH_CHECKPOINT_LAST_RECORDS "Records committed by the last run."
/* gauge {stream, consumer} */
#define MN_CHECKPOINT_LAST_BATCHES "aistack_checkpoint_last_run_batches"
#define MH_CHECKPOINT_LAST_BATCHES "Batches committed by the last run."
/* gauge {stream, consumer} */
#define MN_CHECKPOINT_LAST_FAILED "aistack_checkpoint_last_run_batches_failed"
#define MH_CHECKPOINT_LAST_FAILED "Batches whose command failed in the " \
	"last run (0 or 1: a failure ends the run)."
/* gauge {stream, consumer} */
#define MN_CHECKPOINT_LAST_SUCCESS \
	"aistack_checkpoint_last_success_timestamp_seconds"
#define MH_CHECKPOINT_LAST_SUCCESS "When a run of the consumer last ended " \
	"(or, with -f, last reported) without an error."

/* --- breakers ------------------------------------------------------------- */

/* gauge {breaker}: live */
#define MN_BREAKER_STATE	"aistack_breaker_state"
#define MH_BREAKER_STATE	"Circuit breaker state (0 closed, 1 half-open, " \
	"2 open)."
/* gauge {breaker} */
#define MN_BREAKER_FAILURES	"aistack_breaker_failures"
#define MH_BREAKER_FAILURES	"Consecutive failures counted while closed."
/* gauge {breaker}: live */
#define MN_BREAKER_RETRY_IN	"aistack_breaker_retry_in_seconds"
#define MH_BREAKER_RETRY_IN	"Time left in an open breaker's open period."
/* counter {breaker, result="success|failure|ignored|refused"} */
#define MN_BREAKER_CALLS	"aistack_breaker_calls_total"
#define MH_BREAKER_CALLS	"Calls through the breaker by result; " \
	"refused calls were not made."
/* counter {breaker, to="closed|half_open|open"} */
#define MN_BREAKER_TRANSITIONS	"aistack_breaker_transitions_total"
#define MH_BREAKER_TRANSITIONS	"Circuit breaker state changes, by new state."
/* gauge {breaker} */
#define MN_BREAKER_LAST_SUCCESS	"aistack_breaker_last_success_timestamp_seconds"
#define MH_BREAKER_LAST_SUCCESS	"When a call through the breaker last " \
	"succeeded."

/* --- aistack-dedup: one run (metrics/dedup-NAME.prom) -------------------- */

/* gauge {state, result="unique|duplicate|near_duplicate|bad"} */
#define MN_DEDUP_LAST_RECORDS	"aistack_dedup_last_run_records"
#define MH_DEDUP_LAST_RECORDS	"Input records by result in the last run."
/* gauge {state} */
#define MN_DEDUP_LAST_SUCCESS	"aistack_dedup_last_success_timestamp_seconds"
#define MH_DEDUP_LAST_SUCCESS	"When a run last ended without an error."

/* --- dedup states and indexes -------------------------------------------- */

/* counter {state, kind="state|index", result="unique|duplicate|
 * near_duplicate"}: kept in the header of the dedup state or index,
 * added to under its lock by each run that ends cleanly */
#define MN_DEDUP_RECORDS	"aistack_dedup_records_total"
#define MH_DEDUP_RECORDS	"Records by result, counted by the dedup state."
/* gauge {state, kind} */
#define MN_DEDUP_KEYS		"aistack_dedup_keys"
#define MH_DEDUP_KEYS		"Keys held by the dedup state."
/* gauge {state, kind} */
#define MN_DEDUP_DISK		"aistack_dedup_disk_bytes"
#define MH_DEDUP_DISK		"Bytes of the dedup state's files on disk."

/* --- follow sources (aistack-ingest --follow) ----------------------------- */

/* counter {stream, source} */
#define MN_FOLLOW_LINES		"aistack_follow_lines_total"
#define MH_FOLLOW_LINES		"Lines read from the followed file, counted " \
	"by its position file."
/* counter {stream, source} */
#define MN_FOLLOW_LOST		"aistack_follow_lost_bytes_total"
#define MH_FOLLOW_LOST		"Bytes of the followed file lost before they " \
	"were read (rotated away and gone)."

/* --- aistack-rotate: one run (metrics/rotate-NAME.prom) ------------------- */

/* gauge {target, action="sealed|compressed|deleted"} */
#define MN_ROTATE_LAST_BYTES	"aistack_rotate_last_run_bytes"
#define MH_ROTATE_LAST_BYTES	"Bytes sealed, compressed (input) and deleted " \
	"in the last run."
/* gauge {target} */
#define MN_ROTATE_LAST_GZ	"aistack_rotate_last_run_compressed_output_bytes"
#define MH_ROTATE_LAST_GZ	"Bytes of gzip output written in the last run."
/* gauge {target} */
#define MN_ROTATE_LAST_UNREAD	"aistack_rotate_last_run_unread_deleted_bytes"
#define MH_ROTATE_LAST_UNREAD	"Bytes no consumer (or follower, of a plain " \
	"file's copy) had read, deleted by --force in the last run."
/* gauge {target, form="plain|gz"} */
#define MN_ROTATE_FILES		"aistack_rotate_files"
#define MH_ROTATE_FILES		"Sealed segments or rotated copies kept, by form."
/* gauge {target} */
#define MN_ROTATE_LAST_RUN	"aistack_rotate_last_run_timestamp_seconds"
#define MH_ROTATE_LAST_RUN	"When the last run ended."
/* gauge {target} */
#define MN_ROTATE_LAST_SUCCESS	"aistack_rotate_last_success_timestamp_seconds"
#define MH_ROTATE_LAST_SUCCESS	"When a run last ended without an error."

/* --- aistack-proxy: its own, kept in memory by the running proxy ----------- */

/* counter {route, code} */
#define MN_PROXY_REQUESTS	"aistack_proxy_requests_total"
#define MH_PROXY_REQUESTS	"Requests answered by the proxy, by route and status code."
/* counter */
#define MN_PROXY_RATE_LIMITED	"aistack_proxy_rate_limited_total"
#define MH_PROXY_RATE_LIMITED	"Requests refused with 429."
/* gauge */
#define MN_PROXY_CLIENTS	"aistack_proxy_ratelimit_clients"
#define MH_PROXY_CLIENTS	"Client buckets in the rate limit table."
/* gauge */
#define MN_PROXY_MAX_CLIENTS	"aistack_proxy_ratelimit_max_clients"
#define MH_PROXY_MAX_CLIENTS	"Size of the rate limit table."
/* gauge */
#define MN_PROXY_RL_MEMORY	"aistack_proxy_ratelimit_memory_bytes"
#define MH_PROXY_RL_MEMORY	"Memory allocated for the rate limit table."
/* counter {refilled="yes|no"} */
#define MN_PROXY_EVICTIONS	"aistack_proxy_ratelimit_evictions_total"
#define MH_PROXY_EVICTIONS	"Buckets evicted from the full table, by whether they had refilled."
/* gauge */
#define MN_PROXY_CONNECTIONS	"aistack_proxy_connections"
#define MH_PROXY_CONNECTIONS	"Open client connections."
/* counter {upstream, outcome} */
#define MN_PROXY_UPSTREAM	"aistack_proxy_upstream_requests_total"
#define MH_PROXY_UPSTREAM	"Upstream calls by outcome."
/* histogram {upstream} */
#define MN_PROXY_UPSTREAM_TIME	"aistack_proxy_upstream_duration_seconds"
#define MH_PROXY_UPSTREAM_TIME	"Upstream call latency."

#endif
