-- N fast SSE streams of E events each, all open at once, read round-robin one event at a
-- time (every stream is read slower than the server sends it); prints peak resident memory.
--   codeassist run tests/bench/many_streams.lua [SIM_URL [N [E]]]   (SIM_URL from the environment)
local http = require "codeassist.http"
local fs = require "codeassist.fs"

local sim, n, per = arg[1] or os.getenv("SIM_URL"), tonumber(arg[2] or "256"), tonumber(arg[3] or "10000")
local function status_kb(field)
  return tonumber(fs.read("/proc/self/status"):match(field .. ":%s+(%d+) kB"))
end
local base = status_kb("VmRSS")

local url = ("%s/_sim/bench/sse?events=%d"):format(sim, per)
local its, counts, open = {}, {}, {}
for i = 1, n do
  local res = assert(http.request{ url = url, stream = "sse" })
  its[i], counts[i], open[i] = res:events(), 0, res
end
local live, events = n, 0
while live > 0 do
  for i = 1, n do
    local it = its[i]
    if it then
      if it() then
        counts[i] = counts[i] + 1
        events = events + 1
      else
        assert(not open[i].err, open[i].err and open[i].err.message)
        assert(counts[i] == per, ("stream %d ended after %d events"):format(i, counts[i]))
        its[i], live = nil, live - 1
      end
    end
  end
end
print(("streams=%d events=%d base_kb=%d peak_kb=%d"):format(n, events, base, status_kb("VmHWM")))
