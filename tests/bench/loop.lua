-- The loop's own cost, on whole `codeassist run` processes (the real binary, real git, the gh
-- stand-in, both simulator flavours), read back from their --trace:
--  (1) one iteration of the eight gates, every model reply taking 1 s: the gates' wall time
--      against the critical path of their groups (per group, its longest gate's model time
--      plus measured command time). Goal: overhead <= 5% of the critical path.
--  (2) ollama_hybrid on a simulated 24 GB GPU (Ollama's scheduler: requests in arrival order,
--      busy models never evicted), 2 s model loads: loads per iteration (goal: one per
--      distinct local model called) and wall time, against the same run without the GPU's
--      size, where a group's gates all go at once as the original runner sent them.
--  (3) the peak resident memory of a whole run (process start to PR). Goal: <= 22 MB; the
--      original Node runner used 111 MB.
local proc = require "codeassist.proc"
local fs = require "codeassist.fs"
local http = require "codeassist.http"
local cjson = require "cjson"

local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local claude = assert(os.getenv("CLAUDE_URL"), "run through tests/bench/run.sh")
local bin = assert(os.getenv("CODEASSIST_BIN"))
local root = fs.cwd()
local REPLY, LOAD = 1.0, 2.0

local function control(url, path, doc)
  assert(http.json(url .. path, { body = doc or {} }))
end

local function scenario(extra)
  local doc = cjson.decode(assert(fs.read(root .. "/examples/loop-scenario.json")))
  for k, v in pairs(extra) do doc[k] = v end
  return doc
end

local tops = {}
local function project(config)
  local top = assert(proc.run{ "mktemp", "-d", "/tmp/codeassist-bench-XXXXXX" }).stdout:gsub("%s+$", "")
  tops[#tops + 1] = top
  local r = assert(proc.run{ "sh", root .. "/tests/fakes/make_project.sh", top })
  assert(r.code == 0, r.stderr)
  assert(proc.run{ "mkdir", "-p", top .. "/repo/.claude" })
  assert(fs.write_atomic(top .. "/repo/.claude/autonomous.yml", config))
  return top
end

-- Runs the loop in its own process; returns the trace's events and the exit code.
local function run_loop(top, args)
  local argv = { bin, "run" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  for _, a in ipairs{ "--issue", "7", "--max-iterations", "1", "--trace", top .. "/trace.jsonl" } do argv[#argv + 1] = a end
  argv.cwd, argv.timeout = top .. "/repo", 300
  argv.env = { PATH = root .. "/tests/fakes:" .. os.getenv("PATH"), FAKE_FORGE_DIR = top .. "/forge", NO_COLOR = "1",
               ANTHROPIC_API_KEY = "sk-ant-bench", ANTHROPIC_BASE_URL = claude, OLLAMA_HOST = false, GH_TOKEN = false }
  local r = assert(proc.run(argv))
  local trace = {}
  for line in (fs.read(top .. "/trace.jsonl") or ""):gmatch("[^\n]+") do trace[#trace + 1] = cjson.decode(line) end
  if r.code ~= 0 then
    io.stderr:write(r.stdout, r.stderr)
    error(("bench: `codeassist run %s` exited %d"):format(table.concat(args, " "), r.code))
  end
  return trace
end

-- The gates of iteration 1: wall time (first gate started to the scores) and critical path.
local function gate_times(trace)
  local first, scored, results
  local calls = {}
  for _, ev in ipairs(trace) do
    if ev.type == "gate.start" and not first then first = ev.elapsed end
    if ev.type == "call.done" and first then calls[ev.gate] = (calls[ev.gate] or 0) + 1 end
    if ev.type == "loop.gates" then scored, results = ev.elapsed, ev.results end
  end
  local groups, banner = {}, nil
  for _, ev in ipairs(trace) do if ev.type == "loop.banner" then banner = ev end end
  local group_of = {}
  for _, g in ipairs(banner.gates) do group_of[g.name] = g.group end
  for _, r in ipairs(results) do
    local own = (calls[r.gate] or 0) * REPLY + (r.measured and r.measured.run and r.measured.run.seconds or 0)
    local g = group_of[r.gate]
    groups[g] = math.max(groups[g] or 0, own)
  end
  local critical = 0
  for _, t in pairs(groups) do critical = critical + t end
  return scored - first, critical, results
end

local function finished(trace)
  for _, ev in ipairs(trace) do if ev.type == "run.finished" then return ev end end
end

local peak = {}

-- (1) eight gates on one model, every reply 1 s
control(sim, "/_sim/reset")
control(sim, "/_sim/scenario", scenario{ reply_seconds = REPLY, load_seconds = 0 })
local one_model = {}
for _, gate in ipairs{ "implement", "build", "test", "security", "review", "mentor", "architect", "ux", "devops" } do
  one_model[#one_model + 1] = "--route"
  one_model[#one_model + 1] = gate .. "=ollama:qwen3-coder"
end
local top = project(("iteration_delay: 0\nproviders:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: %s\n"
  .. "    model: qwen3-coder\n"):format(sim))
local args = { "ollama_only" }
for _, a in ipairs(one_model) do args[#args + 1] = a end
local trace = run_loop(top, args)
local wall, critical = gate_times(trace)
peak[#peak + 1] = finished(trace).peak_rss_kb
print(("loop, one iteration of the eight gates, each model reply %.0f s (the simulator):"):format(REPLY))
print(("  critical path of the groups              %8.3f s"):format(critical))
print(("  the gates' wall time                     %8.3f s"):format(wall))
print(("  overhead                                 %8.1f ms   / critical path = %.1f%%  (goal <= 5%%)")
  :format((wall - critical) * 1000, (wall - critical) / critical * 100))

-- (2) ollama_hybrid on a 24 GB GPU: model-aware against plain group order
local models = cjson.decode(assert(fs.read(root .. "/examples/demo-models.json"))).models
local function hybrid(vram_line)
  control(sim, "/_sim/reset")
  control(claude, "/_sim/reset")
  control(sim, "/_sim/scenario", scenario{ models = models, vram_gb = 24, load_seconds = LOAD, reply_seconds = REPLY })
  control(claude, "/_sim/scenario", scenario{ reply_seconds = REPLY })
  local t = project(("iteration_delay: 0\nproviders:\n  default: claude\n  ollama:\n    enabled: true\n    base_url: %s\n%s")
    :format(sim, vram_line))
  local tr = run_loop(t, { "ollama_hybrid" })
  local stats = cjson.decode(assert(http.request{ url = sim .. "/_sim/stats" }):body())
  local loads, called = 0, {}
  for _, n in pairs(stats.loads) do loads = loads + n end
  for _, ev in ipairs(tr) do
    if ev.type == "call.done" and ev.route and ev.route:find("^ollama ") then called[ev.route] = true end
  end
  local distinct = 0
  for _ in pairs(called) do distinct = distinct + 1 end
  local w = gate_times(tr)
  peak[#peak + 1] = finished(tr).peak_rss_kb
  return loads, distinct, w
end
local aware_loads, distinct, aware_wall = hybrid("    vram_gb: 24\n")
local plain_loads, _, plain_wall = hybrid("")
print(("ollama_hybrid, one iteration on a simulated 24 GB GPU (%.0f s loads, %.0f s replies), %d local models called:")
  :format(LOAD, REPLY, distinct))
print(("  plain group order (no vram_gb)           %8d loads  %8.3f s"):format(plain_loads, plain_wall))
print(("  model-aware (vram_gb: 24)                %8d loads  %8.3f s   loads / distinct models = %.2f  (goal 1.00); wall / plain = %.2f")
  :format(aware_loads, aware_wall, aware_loads / distinct, aware_wall / plain_wall))

-- (3) peak RSS of a whole run
local most = 0
for _, kb in ipairs(peak) do most = math.max(most, kb) end
print(("peak resident memory of a whole run (the largest of the %d runs above):"):format(#peak))
print(("  codeassist run                           %8.1f MB   / 22 MB = %.2f  (goal <= 1.00); / Node runner's 111 MB = %.2f")
  :format(most / 1024, most / 1024 / 22, most / 1024 / 111))

for _, t in ipairs(tops) do proc.run{ "rm", "-rf", t } end
