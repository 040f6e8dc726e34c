-- The Anthropic provider's stream accumulation against the plain decode loop, in one process
-- (the simulator serves one Anthropic message of N text deltas, /_sim/bench/sse?shape=anthropic):
--   (a) for data in res:events() do cjson.decode(data) end
--   (b) providers.anthropic.read_stream(res), which decodes the same events and keeps the text
-- Goals: (b) within 1.5x of (a) at 100,000 deltas; (b) at 1,000,000 within 11x of (b) at
-- 100,000 (linear, not quadratic). BENCH_PROVIDER_BIG changes the large N (and its goal).
local http = require "codeassist.http"
local anthropic = require "codeassist.providers.anthropic"
local cjson = require "cjson"
local clock = require "codeassist.clock"
local measure = require "measure"

local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 9
local SMALL = 100000
local BIG = tonumber(os.getenv("BENCH_PROVIDER_BIG") or "") or 1000000
local BIG_RUNS = tonumber(os.getenv("BENCH_PROVIDER_BIG_RUNS") or "") or 5

local function open(n)
  return assert(http.request{ url = ("%s/_sim/bench/sse?shape=anthropic&events=%d"):format(sim, n),
                              stream = "sse" })
end

local function plain(n)
  local res = open(n)
  local decode, count = cjson.decode, 0
  for data in res:events() do decode(data); count = count + 1 end
  assert(not res.err and count == n + 5, res.err and res.err.message or count)
end

-- "w0 w1 ... w(n-1) ": the text the provider must have put together.
local function text_length(n)
  local len, digits, from = 0, 1, 0
  while from < n do
    local to = math.min(n, 10 ^ digits)
    len = len + (to - from) * (digits + 2)
    from, digits = to, digits + 1
  end
  return len
end

local function provider(n)
  local msg = assert(anthropic.read_stream(open(n)))
  local text = msg.content[1].text
  assert(#text == text_length(n) and text:sub(1, 6) == "w0 w1 " and msg.stop_reason == "end_turn",
         "the provider's text is wrong")
end

-- Seconds for one run, from the request to the last event, after a full collection so every
-- run starts from the same heap.
local function timed(fn, n)
  collectgarbage()
  collectgarbage()
  local t0 = clock.monotonic()
  fn(n)
  return clock.monotonic() - t0
end

plain(SMALL)          -- the simulator generates each body once: warm both
plain(BIG)
local times = { plain = {}, provider = {}, big = {} }
for i = 1, math.max(RUNS, BIG_RUNS) do   -- interleaved, so a busy moment hits all alike
  if i <= RUNS then
    times.plain[#times.plain + 1] = timed(plain, SMALL)
    times.provider[#times.provider + 1] = timed(provider, SMALL)
  end
  if i <= BIG_RUNS then times.big[i] = timed(provider, BIG) end
end
local a, b, big = measure.median(times.plain), measure.median(times.provider), measure.median(times.big)

local factor = BIG / SMALL
print(("Anthropic stream of text deltas through the provider, median of %d runs (%d at %d deltas):")
  :format(RUNS, BIG_RUNS, BIG))
print(("  (a) %7d deltas, plain decode loop       %8.1f ms"):format(SMALL, a * 1000))
print(("  (b) %7d deltas, providers.anthropic     %8.1f ms   / (a) = %.2f  (goal <= 1.50)")
  :format(SMALL, b * 1000, b / a))
print(("  (b) %7d deltas, providers.anthropic     %8.1f ms   / (b) at %d = %.2f  (goal <= %.2f)")
  :format(BIG, big * 1000, SMALL, big / b, factor * 1.1))
