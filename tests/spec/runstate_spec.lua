-- Run state: a run killed anywhere goes on with --resume to the same outcome; its files parse,
-- hold no key, and count every call; budgets count real spend only; `runs` and `report` read
-- the folders back.
local support = require "support"
local fs = require "codeassist.fs"
local cjson = require "cjson"
local loop = require "loop_support"
local project, scenario, run, ollama_config, INSTALLED = loop.project, loop.scenario, loop.run, loop.ollama_config, loop.INSTALLED
table.unpack = table.unpack or unpack

local two_iterations = loop.two_iterations

-- The newest run folder with a state (a run killed before its first step has none), as
-- `codeassist runs` orders them.
local function run_dir(p)
  local newest = require("codeassist.runs").list(p.dir)[1]
  if not newest then return nil end
  return newest.paths.dir, newest.id
end

local function lines_of(path)
  local out = {}
  for line in (fs.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

describe("the runs of a repository", function()
  teardown(support.cleanup)

  it("are newest first, two runs started in the same second by their start time", function()
    local dir = support.tmpdir()
    local function run_folder(id, wall)
      support.write(("%s/.codeassist/runs/%s/state.json"):format(dir, id), cjson.encode{ run_id = id, started_wall = wall })
    end
    -- the same second; the later start has the smaller random tag
    run_folder("20261130-101010-7-ffff", 1796033410.25)
    run_folder("20261130-101010-7-0001", 1796033410.75)
    run_folder("20261130-101009-7-9999", 1796033409.5)
    fs.mkdir_p(dir .. "/.codeassist/runs/20261130-235959-7-aaaa")   -- killed before its first state: not a run
    local ids = {}
    for _, r in ipairs(require("codeassist.runs").list(dir)) do ids[#ids + 1] = r.id end
    assert.are.same({ "20261130-101010-7-0001", "20261130-101010-7-ffff", "20261130-101009-7-9999" }, ids)
  end)
end)

describe("run state", function()
  local sim
  setup(function() sim = support.simulator() end)
  teardown(function() sim:stop(); support.cleanup() end)
  before_each(function() sim:reset() end)

  it("keeps a folder per run: state, ledger, audit, trace and report, out of git", function()
    local p = project{ config = ollama_config(sim.url) }
    sim:control("/_sim/scenario", two_iterations())
    local r = run(p, { "ollama_only", "--issue", "7", table.unpack(INSTALLED) })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local dir, id = run_dir(p)
    assert.matches("run " .. id:gsub("%p", "%%%0") .. ": its state, ledger, trace and report are in %.codeassist/runs/", r.stdout)
    local state = cjson.decode(fs.read(dir .. "/state.json"))
    assert.are.equal("done", state.outcome.status)
    assert.are.equal(2, state.iteration)
    -- one ledger line per model call, each with tokens and a cost (local: 0; Claude would: > 0)
    local calls = lines_of(dir .. "/ledger.jsonl")
    local chats = 0
    for _, e in ipairs(sim:log()) do if e.path == "/api/chat" and e.body.messages then chats = chats + 1 end end
    assert.are.equal(chats, #calls)
    local first = cjson.decode(calls[1])
    assert.are.equal("implement", first.gate)
    assert.are.equal(0, first.usd)
    assert.is_true(first.claude_usd > 0)
    assert.is_true(first.input_tokens > 0)
    assert.are.equal(#calls, #lines_of(dir .. "/trace.jsonl"))
    assert.matches('"tool":"edit"', fs.read(dir .. "/audit.jsonl"))
    local report = cjson.decode(fs.read(dir .. "/report.json"))
    assert.are.equal(#calls, report.cost.calls)
    assert.matches("^Closes #7\n\n%*%*Done%*%*", fs.read(dir .. "/report.md"))
    -- the report is the pull request's body
    local prs = cjson.decode(fs.read(p.forge .. "/prs.json"))
    assert.matches("| test | 100 | PASS |", prs[1].body, 1, true)
    assert.matches("Cost: %$0 for %d+ model calls", prs[1].body)
    -- out of git: excluded, never committed
    assert.matches("/%.codeassist/runs/", fs.read(p.dir .. "/.git/info/exclude"))
    assert.are.equal("", support.sh("git status --porcelain --untracked-files=all .codeassist", { cwd = p.dir }).stdout)
    -- the closing summary
    assert.matches("Run " .. id:gsub("%p", "%%%0") .. ": 2 iterations in [%d.]+ s; %d+ model calls %(0 to Claude%)", r.stdout)
    assert.matches("Cost %$0; all on Claude it would have been about %$[%d.]+: saved", r.stdout)
  end)

  it("lists runs and prints their reports; --json prints events for machines", function()
    local p = project{ config = ollama_config(sim.url) }
    sim:control("/_sim/scenario", scenario())
    local r = run(p, { "ollama_only", "--issue", "7", "--json", table.unpack(INSTALLED) })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local types = {}
    for line in r.stdout:gmatch("[^\n]+") do types[cjson.decode(line).type] = true end   -- every line is JSON
    assert.is_true(types["loop.banner"] and types["gate.done"] and types["run.finished"] and true or false)
    local _, id = run_dir(p)
    local list = support.codeassist({ "runs" }, { cwd = p.dir })
    assert.are.equal(0, list.code, list.stderr)
    assert.matches("RUN +ISSUE +PRESET +OUTCOME +SCORE +COST +SAVED +AGE\n", list.stdout)
    assert.matches(id:gsub("%p", "%%%0") .. " +#7 +ollama_only +done +100 +%$0 +%$[%d.]+ +%d+ s", list.stdout)
    local rep = support.codeassist({ "report", id }, { cwd = p.dir })
    assert.are.equal(0, rep.code, rep.stderr)
    assert.matches("^Run " .. id:gsub("%p", "%%%0") .. "\n\nCloses #7\n\n%*%*Done%*%* — score 100/95 after 1 iteration", rep.stdout)
    local js = support.codeassist({ "report", "--json" }, { cwd = p.dir })   -- the newest
    assert.are.equal("done", cjson.decode(js.stdout).outcome.status)
    local latest = support.codeassist({ "report", "latest" }, { cwd = p.dir })   -- as whatif and --resume take it
    assert.are.equal(rep.stdout, latest.stdout, latest.stderr)
    -- from a subfolder, the project's runs and config, as git finds its top
    fs.mkdir_p(p.dir .. "/sub/deeper")
    list = support.codeassist({ "runs" }, { cwd = p.dir .. "/sub/deeper" })
    assert.matches(id:gsub("%p", "%%%0") .. " +#7", list.stdout)
    local doc = support.codeassist({ "doctor", "--json" }, { cwd = p.dir .. "/sub/deeper" })
    doc = cjson.decode(doc.stdout)
    assert.is_true(doc.found_config)
    assert.are.equal(sim.url, doc.servers[1].url)
    local missing = support.codeassist({ "report", "nope" }, { cwd = p.dir })
    assert.are.equal(2, missing.code)
    assert.matches("no run nope in .-%(codeassist runs lists them%)", missing.stderr)
    -- a finished run is not resumed
    r = run(p, { "ollama_only", "--resume", id })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("run " .. id:gsub("%p", "%%%0") .. " already ended: done — https://", r.stdout)
  end)

  it("goes on with --resume after a kill -9 at 20 points, to the same outcome with every call counted", function()
    -- the run without a crash, for comparison
    local ref = project{ config = ollama_config(sim.url) }
    sim:control("/_sim/scenario", two_iterations())
    local r = run(ref, { "ollama_only", "--issue", "7", table.unpack(INSTALLED) })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    local ref_state = cjson.decode(fs.read(run_dir(ref) .. "/state.json"))
    local ref_calls = #lines_of(run_dir(ref) .. "/ledger.jsonl")
    -- the crash points are spread over the state writes the run made
    local writes = ref_state.checkpoints
    assert.is_true(writes >= 20, "state writes: " .. tostring(writes))
    local points = {}
    for n = 1, 20 do points[n] = math.max(1, math.floor(n * writes / 20)) .. (n % 3 == 0 and ":mid" or "") end
    for _, point in ipairs(points) do
      sim:reset()
      sim:control("/_sim/scenario", two_iterations())
      local p = project{ config = ollama_config(sim.url) }
      local killed = run(p, { "ollama_only", "--issue", "7", table.unpack(INSTALLED) }, { CODEASSIST_CRASH_AT = point })
      assert.are.equal(9, killed.signal, point .. ": " .. killed.stdout .. killed.stderr)
      local dir = run_dir(p)
      if not dir then
        -- killed before the run saved anything: nothing to resume, the same command does it all
        r = run(p, { "ollama_only", "--issue", "7", table.unpack(INSTALLED) })
      else
        assert.is_table(cjson.decode(fs.read(dir .. "/state.json")), point)     -- the state parses
        r = run(p, { "ollama_only", "--resume", table.unpack(INSTALLED) })
      end
      assert.are.equal(0, r.code, point .. ": " .. r.stdout .. r.stderr)
      dir = run_dir(p)
      local state = cjson.decode(fs.read(dir .. "/state.json"))
      assert.are.equal("done", state.outcome.status, point)
      assert.are.equal(ref_state.iteration, state.iteration, point)
      assert.are.equal(ref_state.last_total, state.last_total, point)
      -- every call of both processes is in the ledger, counted once, and every line parses
      local calls = lines_of(dir .. "/ledger.jsonl")
      for _, line in ipairs(calls) do assert.is_table(cjson.decode(line), point) end
      assert.is_true(#calls >= ref_calls, point)
      local chats = 0
      for _, e in ipairs(sim:log()) do if e.path == "/api/chat" and e.body.messages then chats = chats + 1 end end
      assert.are.equal(chats, #calls, point)
      local report = cjson.decode(fs.read(dir .. "/report.json"))
      assert.are.equal(#calls, report.cost.calls, point)
      -- one clean commit delivered, whatever the crash
      local log = support.sh("git log --format=%s main..feature/7-add-subtracts-instead-of-adding", { cwd = p.remote }).stdout
      assert.are.equal("fix: add subtracts instead of adding (#7)\n", log, point)
    end
  end)

  it("stops with a clear error when the disk fills during a state write, the previous state intact", function()
    local p = project{ config = ollama_config(sim.url) }
    -- a file the agent reads: the conversation, and so the state, grows past the limit
    local big = {}
    for i = 1, 1000 do big[i] = ("line %04d of a long file that the agent reads whole"):format(i) end
    support.write(p.dir .. "/big.txt", table.concat(big, "\n") .. "\n")
    assert.are.equal(0, support.sh("git add big.txt && git -c user.name=t -c user.email=t@t commit -qm big && "
      .. "git push -q origin main", { cwd = p.dir }).code)
    sim:control("/_sim/scenario", scenario{ implement = {
      { tool_calls = { { name = "bash", input = { command = "cat big.txt" } } } },
      { text = "Read it." } } })
    -- files may grow to 24 KiB here (ulimit -f counts 512-byte blocks); SIGXFSZ ignored, so a
    -- write past it fails with EFBIG as a full disk's would
    local argv = { "sh", "-c", "trap '' XFSZ; ulimit -f 48; exec \"$0\" \"$@\"", support.bin, "run", "ollama_only",
                   "--issue", "7", table.unpack(INSTALLED) }
    argv.cwd, argv.timeout = p.dir, 120
    argv.env = { PATH = support.root .. "/tests/fakes:" .. os.getenv("PATH"), FAKE_FORGE_DIR = p.forge, NO_COLOR = "1",
                 ANTHROPIC_API_KEY = false, OLLAMA_HOST = false, GH_TOKEN = false }
    local r = assert(require("codeassist.proc").run(argv))
    assert.are.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("cannot save the run's state in .-state%.json: .-the run stops; its last saved state is intact", r.stderr)
    local dir = run_dir(p)
    local state = cjson.decode(fs.read(dir .. "/state.json"))   -- the previous state, whole
    assert.are.equal(1, state.iteration)
    assert.is_nil(state.agent_turns)
  end)
end)


describe("run state with Claude", function()
  local sim, claude
  local KEY = "sk-ant-runstate-secret-0123456789"
  setup(function()
    sim = support.simulator()
    claude = support.simulator("--flavor anthropic --api-key " .. KEY)
  end)
  teardown(function() sim:stop(); claude:stop(); support.cleanup() end)
  before_each(function() sim:reset(); claude:reset() end)

  local function hybrid_config(extra)
    return ollama_config(sim.url, extra):gsub("default: ollama", "default: claude")
  end

  it("keeps the key out of every file, the terminal and the Ollama server", function()
    local p = project{ config = hybrid_config() }
    sim:control("/_sim/scenario", scenario{ models = loop.HYBRID_MODELS })
    claude:control("/_sim/scenario", scenario())
    local r = run(p, { "ollama_hybrid", "--issue", "7", "--trace", p.top .. "/events.jsonl" },
      { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.is_nil((r.stdout .. r.stderr):find(KEY, 1, true))
    local dir = run_dir(p)
    for _, name in ipairs{ "state.json", "ledger.jsonl", "audit.jsonl", "trace.jsonl", "report.md", "report.json" } do
      local text = fs.read(dir .. "/" .. name)
      assert.is_string(text, name)
      assert.is_nil(text:find(KEY, 1, true), name)
    end
    assert.is_nil(fs.read(p.top .. "/events.jsonl"):find(KEY, 1, true))
    local log = cjson.encode(sim:log())
    assert.is_nil(log:find(KEY, 1, true))
    assert.is_nil(log:find("sk-ant", 1, true))
    -- the Claude calls cost money, the local ones none, and the report says what was saved
    local report = cjson.decode(fs.read(dir .. "/report.json"))
    assert.is_true(report.cost.paid_calls > 0)
    assert.is_true(report.cost.usd > 0)
    assert.is_true(report.cost.claude_usd > report.cost.usd)
    assert.matches("Cost %$[%d.]+; all on Claude it would have been about %$[%d.]+: saved %$[%d.]+ %(%d+%%%)", r.stdout)
  end)

  it("lets a run of local calls through a dollar budget, and stops a Claude run at it", function()
    local p = project{ config = ollama_config(sim.url, "safety:\n  max_cost_usd: 0.01\n") }
    sim:control("/_sim/scenario", scenario())
    local r = run(p, { "ollama_only", "--issue", "7", table.unpack(INSTALLED) })
    assert.are.equal(0, r.code, r.stdout .. r.stderr)          -- free calls never trip it

    p = project{ config = hybrid_config("safety:\n  max_cost_usd: 0.002\n") }
    claude:control("/_sim/scenario", scenario{ implement = {
      { tool_calls = { { name = "read", input = { path = "calc.sh" } } } } } })   -- reads for ever
    r = run(p, { "claude", "--issue", "7" }, { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("BLOCKED: the cost budget is spent: %$0%.00%d+ of safety%.max_cost_usd %$0%.0020", r.stdout)
    assert.matches("raise it, then go on with `codeassist run claude %-%-resume ", r.stdout)
    local report = cjson.decode(fs.read(run_dir(p) .. "/report.json"))
    assert.is_true(report.cost.usd >= 0.002)
    assert.is_true(report.cost.usd < 0.004)                    -- it stopped at the budget, not later
    local before = #lines_of(run_dir(p) .. "/ledger.jsonl")
    -- a higher budget, and the run goes on from where the budget stopped it
    support.write(p.dir .. "/.claude/autonomous.yml", hybrid_config("safety:\n  max_cost_usd: 1\n"))
    claude:control("/_sim/scenario", scenario{ implement = { { text = "Stopping here." } } })
    r = run(p, { "claude", "--resume", "--max-iterations", "1" }, { ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url })
    assert.are.equal(1, r.code, r.stdout .. r.stderr)
    assert.matches("resuming run .- at iteration 1 %(implement%)", r.stdout)
    assert.matches("BLOCKED: score [%d.]+/95 after 1 iteration", r.stdout)
    assert.is_true(#lines_of(run_dir(p) .. "/ledger.jsonl") > before)
  end)
end)
