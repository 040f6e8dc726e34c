-- Opens N concurrent SSE streams against the simulator and prints peak resident memory.
--   codeassist run tests/bench/many_streams.lua SIM_URL N
local http = require "codeassist.http"
local task = require "codeassist.task"
local cjson = require "cjson"
local fs = require "codeassist.fs"

local sim, n = arg[1], tonumber(arg[2] or "256")
local function status_kb(field)
  return tonumber(fs.read("/proc/self/status"):match(field .. ":%s+(%d+) kB"))
end
local base = status_kb("VmRSS")

-- Every stream is paced, so all of them are open at the same time.
local fault = assert(http.request{ url = sim .. "/_sim/faults", body = cjson.encode{
  { kind = "pace", seconds = 0.01, times = n, match = { path = "/v1/messages" } } } })
fault:body()
local body = cjson.encode{ model = "qwen3:8b", max_tokens = 64, stream = true,
                           messages = { { role = "user", content = "hello" } } }
local ts, events = {}, 0
for i = 1, n do
  ts[i] = task.spawn(function()
    local res = assert(http.request{ url = sim .. "/v1/messages", body = body, stream = "sse" })
    for _ in res:events() do events = events + 1 end
    assert(not res.err, res.err and res.err.message)
  end)
end
for i = 1, n do assert(task.join(ts[i])) end
print(("streams=%d events=%d base_kb=%d peak_kb=%d"):format(n, events, base, status_kb("VmHWM")))
