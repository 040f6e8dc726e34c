-- The Anthropic provider's stream accumulation against the plain decode loop, in one process
-- (the simulator serves one Anthropic message of N text deltas, /_sim/bench/sse?shape=anthropic):
--   (a) for data in res:events() do cjson.decode(data) end, at 100,000 deltas
--   (b) providers.anthropic.read_stream(res), which decodes the same events and keeps the text
--   (c) the same as (b) at 1,000,000 deltas
-- Goals: (b) within 1.5x of (a); (c) within 11x of (b) (linear, not quadratic). Each run is
-- its own process (tests/bench/provider_run.lua), timed from the request to the last event.
-- BENCH_PROVIDER_BIG changes the large N (and its goal).
local proc = require "codeassist.proc"
local measure = require "measure"

local bin = assert(os.getenv("CODEASSIST_BIN"), "run through tests/bench/run.sh")
assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 11
local SMALL = 100000
local BIG = tonumber(os.getenv("BENCH_PROVIDER_BIG") or "") or 1000000
local BIG_RUNS = tonumber(os.getenv("BENCH_PROVIDER_BIG_RUNS") or "") or 9

-- Seconds of one run (tests/bench/provider_run.lua), timed inside its own fresh process.
local function timed(mode, n)
  local r = assert(proc.run{ bin, "run", "tests/bench/provider_run.lua", mode, tostring(n), timeout = 600 })
  assert(r.code == 0, r.stderr)
  return tonumber(r.stdout:match("seconds=([%d.]+)"))
end

timed("plain", SMALL)   -- the simulator generates each body once: warm both
timed("plain", BIG)
-- Interleaved, each ratio between runs close in time, so the slow and fast moments of a shared
-- machine hit both of its sides alike: (b) / (a) takes neighbouring runs, (c) / (b) each long
-- run and the mean of the short runs just before and after it. The figures are medians.
local times = { plain = {}, provider = {}, big = {} }
local ratio, growth = {}, {}
for i = 1, math.max(RUNS, BIG_RUNS + 1) do
  times.plain[i], times.provider[i] = timed("plain", SMALL), timed("provider", SMALL)
  ratio[i] = times.provider[i] / times.plain[i]
  if i > 1 and i <= BIG_RUNS + 1 then
    growth[i - 1] = times.big[i - 1] / ((times.provider[i - 1] + times.provider[i]) / 2)
  end
  if i <= BIG_RUNS then times.big[i] = timed("provider", BIG) end
end
local median = measure.median
local a, b, big = median(times.plain), median(times.provider), median(times.big)

print(("Anthropic stream of text deltas through the provider, median of %d runs (%d at %d deltas):")
  :format(#times.plain, BIG_RUNS, BIG))
print(("  (a) %7d deltas, plain decode loop       %8.1f ms"):format(SMALL, a * 1000))
print(("  (b) %7d deltas, providers.anthropic     %8.1f ms   (b) / (a) = %.2f  (goal <= 1.50)")
  :format(SMALL, b * 1000, median(ratio)))
print(("  (c) %7d deltas, providers.anthropic     %8.1f ms   (c) / (b) = %.2f  (goal <= %.2f; linear: %.0f)")
  :format(BIG, big * 1000, median(growth), BIG / SMALL * 1.1, BIG / SMALL))
