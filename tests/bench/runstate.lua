-- Run state: what keeping a run resumable costs.
--  (1) a checkpoint (state.json written atomically: temp file, fsync, rename, fsync of the
--      folder) with the state of a 10-iteration run, median of 101. Goal: <= 1 ms.
--  (2) the size of that run's folder (state, ledger, audit, trace, reports).
--  (3) the time `codeassist run --resume` takes, from the process starting to the run going on
--      from its last step (config, preset, the doctor's checks, the saved state and ledger
--      read back), for that run stopped before its last step. Goal: <= 50 ms.
local measure = require "measure"
local proc = require "codeassist.proc"
local fs = require "codeassist.fs"
local http = require "codeassist.http"
local clock = require "codeassist.clock"
local cjson = require "cjson"

local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local bin = assert(os.getenv("CODEASSIST_BIN"))
local root = fs.cwd()
local ITERATIONS = 10

local function control(path, doc) assert(http.json(sim .. path, { body = doc or {} })) end

-- A run that never reaches its target: the mentor finds something new every iteration, so it
-- is neither done nor stuck before its last iteration.
local function scenario()
  local doc = cjson.decode(assert(fs.read(root .. "/examples/loop-scenario.json")))
  for _, c in ipairs(doc.conversations) do
    if c.gate == "mentor" then   -- a required gate that fails every iteration, differently
      c.replies = {}
      for i = 1, ITERATIONS + 2 do
        c.replies[i] = { verdict = { summary = "not yet", findings = {
          { severity = "critical", title = "problem " .. i, description = "the change still has problem " .. i },
          { severity = "high", title = "smell " .. i, description = "and smell " .. i } } } }
      end
    end
  end
  return doc
end

local top = assert(proc.run{ "mktemp", "-d", "/tmp/codeassist-bench-XXXXXX" }).stdout:gsub("%s+$", "")
assert(assert(proc.run{ "sh", root .. "/tests/fakes/make_project.sh", top }).code == 0, "make_project failed")
local repo = top .. "/repo"
assert(fs.mkdir_p(repo .. "/.claude"))
assert(fs.write_atomic(repo .. "/.claude/autonomous.yml", ("iteration_delay: 0\nproviders:\n  default: ollama\n  ollama:\n"
  .. "    enabled: true\n    base_url: %s\n    model: qwen3-coder\n"):format(sim)))

local function codeassist(args, env)
  local argv = { bin, "run", "ollama_only", "--route", "build=ollama:qwen3-coder", "--route", "architect=ollama:qwen3-coder",
                 "--route", "devops=ollama:qwen3-coder" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.cwd, argv.timeout = repo, 300
  argv.env = { PATH = root .. "/tests/fakes:" .. os.getenv("PATH"), FAKE_FORGE_DIR = top .. "/forge", NO_COLOR = "1",
               ANTHROPIC_API_KEY = false, OLLAMA_HOST = false, GH_TOKEN = false }
  for k, v in pairs(env or {}) do argv.env[k] = v end
  return assert(proc.run(argv))
end

-- the whole run once, to count its steps
control("/_sim/reset")
control("/_sim/scenario", scenario())
local r = codeassist{ "--issue", "7", "--max-iterations", tostring(ITERATIONS) }
assert(r.code == 1, "the run should end BLOCKED: " .. r.stdout .. r.stderr)
local runs_dir = repo .. "/.codeassist/runs"
local first = assert(fs.list(runs_dir))[1]
local state_path = runs_dir .. "/" .. first .. "/state.json"
local finished = cjson.decode(assert(fs.read(state_path)))
assert(finished.iteration == ITERATIONS, "iterations: " .. tostring(finished.iteration))

-- (1) a checkpoint of that state, in this process, as the run makes it
local runs = require "codeassist.runs"
local run = runs.create(top .. "/scratch-repo-less", {})
local saved = cjson.decode(fs.read(state_path))
saved.outcome = nil
local times = {}
for i = 1, 101 do
  local t0 = clock.monotonic()
  assert(run:checkpoint(saved))
  times[i] = clock.monotonic() - t0
end
local checkpoint = measure.median(times)
local state_bytes = #fs.read(run.paths.state)

-- (2) the folder
local size = 0
for _, name in ipairs(fs.list(runs_dir .. "/" .. first)) do size = size + (fs.stat(runs_dir .. "/" .. first .. "/" .. name).size or 0) end

-- (3) the same run stopped before its last step, then resumed: start to going on
local repo_state = cjson.decode(fs.read(state_path))
proc.run{ "rm", "-rf", top }
assert(assert(proc.run{ "sh", root .. "/tests/fakes/make_project.sh", top }).code == 0, "make_project failed")
assert(fs.mkdir_p(repo .. "/.claude"))
assert(fs.write_atomic(repo .. "/.claude/autonomous.yml", ("iteration_delay: 0\nproviders:\n  default: ollama\n  ollama:\n"
  .. "    enabled: true\n    base_url: %s\n    model: qwen3-coder\n"):format(sim)))
control("/_sim/reset")
control("/_sim/scenario", scenario())
r = codeassist({ "--issue", "7", "--max-iterations", tostring(ITERATIONS) },
  { CODEASSIST_CRASH_AT = tostring(repo_state.checkpoints - 1) })
assert(r.signal == 9, "the run should have been killed: " .. r.stdout .. r.stderr)
local resumes = {}
for i = 1, 5 do
  -- each resume is killed again at its first step, so the next one starts from the same place
  local t0 = clock.monotonic()
  r = codeassist({ "--resume", "--trace", top .. "/resume.jsonl" }, { CODEASSIST_CRASH_AT = "2" })
  local wall = clock.monotonic() - t0
  local going_on
  for line in (fs.read(top .. "/resume.jsonl") or ""):gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "loop.note" and tostring(ev.text):find("^resuming run") then going_on = ev.elapsed end
  end
  assert(going_on, "no 'resuming run' event: " .. r.stdout .. r.stderr)
  resumes[i] = going_on
  assert(wall > going_on)
end
local resume = measure.median(resumes)

print(("run state, a %d-iteration run (%d steps saved):"):format(ITERATIONS, repo_state.checkpoints))
print(("  checkpoint (state.json, %5.1f KB), median of 101   %7.3f ms   / 1 ms = %.2f  (goal <= 1.00)")
  :format(state_bytes / 1024, checkpoint * 1000, checkpoint * 1000))
print(("  the run's folder                                   %7.1f KB"):format(size / 1024))
print(("  --resume: start to going on, median of 5          %7.1f ms   / 50 ms = %.2f  (goal <= 1.00)")
  :format(resume * 1000, resume * 1000 / 50))
proc.run{ "rm", "-rf", top }
