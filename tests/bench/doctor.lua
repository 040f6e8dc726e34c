-- `codeassist doctor presets/ollama_hybrid.lua` against the simulator: whole-process wall time,
-- next to one `curl` of /api/tags on the same server. Goal: at most 3x.
local measure = require "measure"
local fs = require "codeassist.fs"

local bin = assert(os.getenv("CODEASSIST_BIN"))
local sim = assert(os.getenv("SIM_URL"), "run through tests/bench/run.sh")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 15

-- A project whose hybrid routes are all installed on the simulator, so every check runs: the
-- gates the hybrid preset puts on models the simulator lacks get installed ones by --route
-- (flags beat the preset).
local dir = assert(require("codeassist.proc").run{ "mktemp", "-d" }).stdout:gsub("%s+$", "")
assert(fs.mkdir_p(dir .. "/.claude"))
assert(fs.write_atomic(dir .. "/.claude/autonomous.yml", ([[
providers:
  default: claude
  ollama:
    enabled: true
    base_url: %s
    model: qwen3-coder
]]):format(sim)))

local doctor = { "sh", "-c", ("cd '%s' && ANTHROPIC_API_KEY=sk-bench exec '%s' doctor '%s/presets/ollama_hybrid.lua' "
  .. "--route build=ollama:qwen3:8b --route devops=ollama:qwen3:8b --route architect=ollama:gpt-oss:20b >/dev/null")
  :format(dir, bin, os.getenv("PWD") or ".") }
local curl = { "curl", "-s", "-o", "/dev/null", sim .. "/api/tags" }
local times = { doctor = {}, curl = {} }
measure.wall(doctor)
for _ = 1, RUNS do
  times.doctor[#times.doctor + 1] = measure.wall(doctor)
  times.curl[#times.curl + 1] = measure.wall(curl)
end
require("codeassist.proc").run{ "rm", "-rf", dir }
local d, c = measure.median(times.doctor), measure.median(times.curl)
print(("doctor presets/ollama_hybrid.lua (9 routes, 3 local models), median of %d runs:"):format(RUNS))
print(("  curl /api/tags                           %7.1f ms"):format(c * 1000))
print(("  codeassist doctor                        %7.1f ms   / curl = %.2f  (goal <= 3.00)"):format(d * 1000, d / c))
