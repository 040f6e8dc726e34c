-- The agent's own cost, apart from the model's:
--  (1) 200 tool round trips (a read of a small file) against the simulator with no model
--      delay; the same 200 requests are then sent again without the agent, and the
--      difference per round trip is the runtime's overhead. Goal: <= 2 ms.
--  (2) the bash tool's `true` through the sandbox vs plain `sh -c true`. Goal: <= 3x, <= 10 ms.
local measure = require "measure"
local clock = require "codeassist.clock"
local config = require "codeassist.config"
local providers = require "codeassist.providers"
local proc = require "codeassist.proc"
local sandbox = require "codeassist.agent.sandbox"
local fs = require "codeassist.fs"

local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local N = 200

local dir = assert(proc.run{ "mktemp", "-d" }).stdout:gsub("%s+$", "")
assert(fs.write_atomic(dir .. "/small.txt", "one\ntwo\nthree\n"))
local cfgpath = dir .. "/autonomous.yml"
assert(fs.write_atomic(cfgpath, "{}\n"))
local cfg = config.load{ path = cfgpath, env = function() return nil end }
cfg.providers.ollama.base_url = sim
cfg.agent.sandbox = "auto"
local route = { provider = "ollama", model = "qwen3-coder" }

local replies = {}
for i = 1, N do replies[i] = { tool_calls = { { name = "read", input = { path = "small.txt" } } } } end
replies[N + 1] = { text = "done" }
local function script()
  assert(require("codeassist.http").json(sim .. "/_sim/reset", { body = {} }))
  assert(require("codeassist.http").json(sim .. "/_sim/scenario", { body = { conversations = { { replies = replies } } } }))
end

-- (1) the agent, with every request kept for the replay
script()
local sent = {}
local real = providers.complete
providers.complete = function(c, r, req, o)
  sent[#sent + 1] = { system = req.system, messages = config.deep_copy(req.messages), tools = req.tools, max_tokens = req.max_tokens }
  return real(c, r, req, o)
end
local t0 = clock.monotonic()
local result = require("codeassist.agent").run{ cfg = cfg, route = route, workspace = dir, max_turns = N + 5,
  messages = { { role = "user", content = "read small.txt again and again" } } }
local agent_time = clock.monotonic() - t0
providers.complete = real
assert(result.stop_reason == "done", result.stop_reason .. " " .. tostring(result.error))

-- the same requests without the agent
script()
t0 = clock.monotonic()
for _, req in ipairs(sent) do assert(real(cfg, route, req, {})) end
local replay_time = clock.monotonic() - t0
local overhead = (agent_time - replay_time) / N

print(("agent, %d tool round trips (read of a small file) against the simulator:"):format(N))
print(("  the same %d requests without the agent   %8.1f ms"):format(#sent, replay_time * 1000))
print(("  through the agent                        %8.1f ms"):format(agent_time * 1000))
print(("  runtime overhead per round trip          %8.2f ms   / 2 ms = %.2f  (goal <= 1.00)"):format(overhead * 1000, overhead * 1000 / 2))

-- (2) the sandbox's cost for one command
local sb = assert(sandbox.new{ root = dir, mode = "auto" })
local function median_of(fn, runs)
  local times = {}
  fn()
  for i = 1, runs do
    local s = clock.monotonic()
    fn()
    times[i] = clock.monotonic() - s
  end
  return measure.median(times)
end
local plain = median_of(function()
  local r = assert(proc.run{ "sh", "-c", "true" })
  assert(r.code == 0, r.stderr)
end, 41)
local boxed = median_of(function()
  local r = assert(sb:run("true"))
  assert(r.code == 0, r.stderr)
end, 41)
print(("bash tool `true`, median of 41 (%s):"):format(sb.kind == "bwrap" and ("bubblewrap " .. sb.version) or "NO SANDBOX: " .. sb.warning))
print(("  sh -c true                               %8.2f ms"):format(plain * 1000))
print(("  through the sandbox                      %8.2f ms   / sh = %.2f  (goal <= 3.00; <= 10 ms)"):format(boxed * 1000, boxed / plain))
proc.run{ "rm", "-rf", dir }
