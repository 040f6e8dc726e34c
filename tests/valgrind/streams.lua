-- Streaming paths under valgrind (tests/run.sh runs this with --error-exitcode): complete,
-- cut, stalled, cancelled and paused streams against the simulator, a stream held by the
-- sub-task of a cancelled task, failed tasks, plus a child process.
-- It checks outcomes, not timings: valgrind makes everything slow. Prints TAP.
package.path = os.getenv("CODEASSIST_ROOT") .. "/tests/spec/?.lua;" .. package.path
local support = require "support"
local http = require "codeassist.http"
local task = require "codeassist.task"
local proc = require "codeassist.proc"
local cjson = require "cjson"

local n = 0
local function ok(cond, what)
  n = n + 1
  print((cond and "ok " or "not ok ") .. n .. " - valgrind: " .. what)
end

local sim = support.simulator()
local body = cjson.encode{ model = "qwen3-coder", messages = { { role = "user", content = "hi" } } }
local sse_body = cjson.encode{ model = "qwen3:8b", max_tokens = 9, stream = true,
                               messages = { { role = "user", content = "hi" } } }

local res = assert(http.request{ url = sim.url .. "/api/chat", body = body, stream = "ndjson" })
local lines = 0
for _ in res:lines() do lines = lines + 1 end
ok(lines > 5 and not res.err, "an NDJSON stream to the end")

res = assert(http.request{ url = sim.url .. "/v1/messages", body = sse_body, stream = "sse" })
local events = 0
for _ in res:events() do events = events + 1 end
ok(events > 5 and not res.err, "an SSE stream to the end")

sim:fault{ kind = "cut", after = 3 }
res = assert(http.request{ url = sim.url .. "/v1/messages", body = sse_body, stream = "sse" })
for _ in res:events() do end
ok(res.err and res.err.kind == "protocol", "a cut stream")

sim:fault{ kind = "stall", after = 2, seconds = 10 }
res = assert(http.request{ url = sim.url .. "/api/chat", body = body, stream = "ndjson", timeout = { idle = 1 } })
for _ in res:lines() do end
ok(res.err and res.err.kind == "timeout_idle", "a stalled stream")

sim:fault{ kind = "stall", after = 2, seconds = 60 }
local held
local t = task.spawn(function()
  held = assert(http.request{ url = sim.url .. "/api/chat", body = body, stream = "ndjson" })
  for _ in held:lines() do end
end)
while not held do task.sleep(0.05) end
task.cancel(t)
ok(held._t:state() == "closed" and not task.join(t), "a cancelled stream")

-- cancelling a task reaches the stream its sub-task holds
sim:fault{ kind = "stall", after = 2, seconds = 60 }
local sub_held
local parent = task.spawn(function()
  task.join(task.spawn(function()
    sub_held = assert(http.request{ url = sim.url .. "/api/chat", body = body, stream = "ndjson" })
    for _ in sub_held:lines() do end
  end))
end)
while not sub_held do task.sleep(0.05) end
task.cancel(parent)
ok(sub_held._t:state() == "closed" and not task.join(parent), "a stream in a sub-task of a cancelled task")

-- failed tasks: forgotten once joined, reported once when nobody joined them
for i = 1, 200 do task.join(task.spawn(error, "joined " .. i)) end
task.spawn(error, "nobody joined me")
task.sleep(0.01)
local unobserved = require("codeassist.sched").unobserved()
ok(#unobserved == 1 and unobserved[1] == "nobody joined me", "failed tasks, joined and not")

res = assert(http.request{ url = sim.url .. "/_sim/bench/sse?events=20000", stream = "sse" })
local it = res:events()
it()
task.sleep(0.5)
local paused = res:info().paused
local count = 1
for _ in it do count = count + 1 end
ok(paused and count == 20000, "a paused stream, then read to the end")

local r = proc.run{ "printf 'a%.0s' $(seq 1 1000)", shell = true, timeout = 20 }
ok(r and r.code == 0 and #r.stdout == 1000, "a child process")

res = assert(http.request{ url = sim.url .. "/api/version" })
res:close()
ok(res._t:state() == "closed", "a response closed before reading")

sim:stop()
support.cleanup()
print("1.." .. n)
