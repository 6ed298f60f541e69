-- wrk.lua: one request shape for a whole wrk run, from the environment
-- (BENCH_METHOD, BENCH_BODY as JSON, BENCH_TOKEN as a bearer token), and a
-- machine-readable summary line for bench.py at the end. With BENCH_EXPECT
-- (a status, for runs that expect an error status), responses with any other
-- status are counted as "unexpected"; without it wrk's own count of statuses
-- >= 400 is what bench.py reports (no per-response Lua: it would slow wrk).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}
local expect = tonumber(os.getenv("BENCH_EXPECT") or "")
if expect then
  function setup(thread)
    table.insert(threads, thread)
  end
  function init(args)
    unexpected = 0
  end
  function response(status, headers, body)
    if status ~= expect then
      unexpected = unexpected + 1
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local unexpected = -1
  if expect then
    unexpected = 0
    for _, t in ipairs(threads) do
      unexpected = unexpected + t:get("unexpected")
    end
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"unexpected":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, unexpected,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
