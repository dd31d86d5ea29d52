-- wrk: POST /predict with the README's patient, then count the answers slower than 0.5, 1 and 2 s
-- and the answers by status (docs/overload.md). Usage:
--   wrk -t2 -c512 -d30s --timeout 10s -s benchmarks/diagnostics/wrk_predict.lua http://127.0.0.1:8000/predict
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"age": 61, "sex": 1, "bmi": 25.8, "bp": 90, "s1": 280, "s2": 195.4, "s3": 55, "s4": 5, "s5": 4.9972, "s6": 90}'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
-- How many of the recorded answers took longer than `us` microseconds: the smallest
-- percentile whose latency passes `us`, found by bisection (wrk exposes percentiles, not counts).
local function over(latency, n, us)
  if latency.max <= us then return 0 end
  local lo, hi = 0, 100
  for _ = 1, 50 do
    local mid = (lo + hi) / 2
    if latency:percentile(mid) > us then hi = mid else lo = mid end
  end
  return math.floor(n * (100 - hi) / 100 + 0.5)
end
function done(summary, latency, requests)
  local n = summary.requests
  for _, b in ipairs({0.5, 1, 2}) do
    io.write(string.format("over %.1f s: %d\n", b, over(latency, n, b * 1e6)))
  end
  local all = {}
  for _, t in ipairs(threads) do
    for s, c in pairs(t:get("statuses")) do all[s] = (all[s] or 0) + c end
  end
  for s, c in pairs(all) do io.write(string.format("status %d: %d\n", s, c)) end
  io.write(string.format("p50 %.3f p99 %.3f max %.3f s, timeouts %d, connect errors %d\n",
    latency:percentile(50)/1e6, latency:percentile(99)/1e6, latency.max/1e6,
    summary.errors.timeout, summary.errors.connect))
end
