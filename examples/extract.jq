# Turn task_completed telemetry events into chat-format fine-tuning records,
# keeping what the original learning job kept: successful tasks whose prompt
# is over 20 characters and whose response is over 10.
#
#   jq -c -f examples/extract.jq < telemetry.jsonl
select(.event == "task_completed"
       and (.success // true)
       and (.prompt | type) == "string" and (.response | type) == "string"
       and (.prompt | length) > 20 and (.response | length) > 10)
| {
    messages: [
      {role: "system",
       content: "You are the coding assistant of a self-hosted AI stack."},
      {role: "user", content: .prompt},
      {role: "assistant", content: .response}
    ],
    metadata: {
      source: .service, model: .model, session: .session, ts: .ts,
      latency_ms: .latency_ms, tokens: .tokens, value_score: .value_score
    }
  }
