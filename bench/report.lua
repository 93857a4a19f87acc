-- wrk reporter: one JSON line with what the bench table needs (latencies in microseconds).
-- Non-2xx/3xx responses are errors; a 304 is a success (ETag revalidation). A mix of requests
-- (bench.py `Mix`) comes as Lua put before this file: its `request` and `on_response`.
local statuses = {}

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if on_response then on_response(status, headers, body) end  -- a mix's own hook (bench.py)
end

done = function(summary, latency, requests)
  local bad = 0
  for status, n in pairs(statuses) do
    if status >= 400 then bad = bad + n end
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "http_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.mean, bad, e.connect + e.read + e.write + e.timeout))
end
