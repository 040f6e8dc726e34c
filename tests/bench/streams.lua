-- Streaming benchmarks against the simulator (started by tests/bench/run.sh, SIM_URL):
--   1. a 100,000-event SSE stream consumed event by event, whole-process wall time, vs curl
--   2. the same with each event's JSON decoded, vs decoding those strings from memory
--   3. eight concurrent requests with a 1 s server delay, on one thread
--   4. peak resident memory with 256 fast streams of 10,000 events, all open, read round-robin
local measure = require "measure"
local clock = require "codeassist.clock"
local task = require "codeassist.task"
local http = require "codeassist.http"

local bin = assert(os.getenv("CODEASSIST_BIN"))
local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 9
local EVENTS = 100000
local url = sim .. "/_sim/bench/sse?events=" .. EVENTS

local wall, median = measure.wall, measure.median

-- Interleaved runs, so a busy moment of the machine hits every command alike.
local commands = {
  curl = { "curl", "-s", "-o", "/dev/null", url },
  strings = { bin, "run", "tests/bench/sse_consume.lua", url, "strings" },
  json = { bin, "run", "tests/bench/sse_consume.lua", url, "json" },
  memory = { bin, "run", "tests/bench/sse_consume.lua", url, "memory" },
}
local order = { "curl", "strings", "json", "memory" }
local times, decode = { curl = {}, strings = {}, json = {}, memory = {} }, {}
-- The simulator generates the stream once: warm it, and learn its size.
local _, sized = wall{ "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", url }
local mb = tonumber(sized.stdout) / 1e6
for _ = 1, RUNS do
  for _, name in ipairs(order) do
    local dt, r = wall(commands[name])
    times[name][#times[name] + 1] = dt
    if name ~= "curl" then assert(r.stderr:match("events=" .. EVENTS), r.stderr) end
    if name == "memory" then decode[#decode + 1] = tonumber(r.stderr:match("decode_seconds=([%d.]+)")) end
  end
end
local curl, strings, json, mem = median(times.curl), median(times.strings), median(times.json), median(decode)

print(("SSE stream of %d events (%.1f MB), median of %d runs:"):format(EVENTS, mb, RUNS))
print(("  curl -s -o /dev/null                 %8.1f ms"):format(curl * 1000))
print(("  (a) events to Lua as strings         %8.1f ms   / curl = %.2f  (goal <= 2.00)")
  :format(strings * 1000, strings / curl))
print(("  (b) events decoded as JSON           %8.1f ms   extra over (a) %.1f ms")
  :format(json * 1000, (json - strings) * 1000))
print(("      decoding the same strings from memory %5.1f ms   extra / decode = %.2f  (goal <= 1.20)")
  :format(mem * 1000, (json - strings) / mem))

-- 3. Eight concurrent requests, each with a 1 s server delay.
local t0 = clock.monotonic()
local ts = {}
for i = 1, 8 do
  ts[i] = task.spawn(function() return assert(http.request{ url = sim .. "/_sim/sleep?seconds=1" }):body() end)
end
for i = 1, 8 do assert(task.join(ts[i])) end
local eight = clock.monotonic() - t0
print(("eight concurrent requests, 1 s server delay each: %.3f s   / 1 s = %.2f   (goal < 1.2 s; one after another: 8 s)")
  :format(eight, eight / 1))

-- 4. 256 fast streams read slower than they arrive: peak resident memory (VmHWM) of a
-- separate process. Without backpressure each would be buffered whole (~1.2 MB).
local dt, r = wall{ bin, "run", "tests/bench/many_streams.lua", sim, "256", "10000" }
local peak_kb = tonumber(r.stdout:match("peak_kb=(%d+)"))
local base_kb = tonumber(r.stdout:match("base_kb=(%d+)"))
assert(r.stdout:match("events=2560000"), r.stdout)
print(("256 fast streams x 10,000 events, all open, read round-robin (%.1f s):"):format(dt))
print(("  peak resident memory %7.1f MB (%.1f MB before the first request)   / 64 MB = %.2f  (goal < 1.00)")
  :format(peak_kb / 1024, base_kb / 1024, peak_kb / 1024 / 64))
