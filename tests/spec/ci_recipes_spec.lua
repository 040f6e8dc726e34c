-- The scale-out recipes in examples/ci/: the GitHub Actions and GitLab CI files have the shape
-- they claim (one run per issue, the run folder kept as an artifact always, a retry resumed by
-- the shared script); their own step commands, run for real against a project, the simulators
-- and the gh stand-in, do a fresh run, then resume on a "retry" — a fresh clone with the run
-- folder restored — a run killed part-way, to the same outcome; and the pool config passes the
-- doctor against two servers, and with one of them down.
local support = require "support"
local fs = require "codeassist.fs"
local yaml = require "codeassist.yaml"
local cjson = require "cjson"
local loop = require "loop_support"

local CI = support.root .. "/examples/ci"
local KEY = "sk-ant-ci-recipes-0123456789"

local function load_yaml(name)
  local doc, err = yaml.load_file(CI .. "/" .. name)
  assert(doc, err and err.message)
  return doc
end

local function contains(list, value)
  for _, v in ipairs(type(list) == "table" and list or {}) do if v == value then return true end end
  return false
end

-- The GitHub job's steps by what they do, each with its position.
local function github_steps(job)
  local found = {}
  for i, s in ipairs(job.steps) do
    local uses, run = s.uses or "", s.run or ""
    local key = uses:match("^actions/checkout@") and "checkout" or uses:match("^actions/download%-artifact@") and "restore"
      or uses:match("^actions/upload%-artifact@") and "upload" or run:match("codeassist%-ci%.sh run ") and "run"
      or run:match("codeassist%-ci%.sh save ") and "save" or run:match("codeassist report") and "report" or nil
    if key then
      assert.is_nil(found[key], "two steps do " .. key)
      found[key] = s
      s.index = i
    end
  end
  return found
end

-- A scenario whose every reply depends only on what was asked, so that a resumed agent gets the
-- same answers: the agent edits calc.sh, runs the tests, and is done. The edit is left
-- uncommitted while the tests run — a kill then loses it unless the retry brings it back.
local function scenario()
  local doc = loop.scenario{ models = loop.HYBRID_MODELS }
  local keep = {}
  for _, c in ipairs(doc.conversations) do
    if c.gate ~= "implement" then keep[#keep + 1] = c end
  end
  local function agent(match, reply) keep[#keep + 1] = { gate = "implement", match = match, replies = { reply } } end
  agent("not ok 1", { text = "The test still fails." })
  agent("ok 1 - add", { text = "Done: add() adds." })
  local run_tests = { tool_calls = { { name = "bash", input = { command = "make test" } } } }
  agent("replaced 1 occurrence", run_tests)
  agent("old_string was not found", run_tests)
  agent("(iteration 1)", { tool_calls = { { name = "edit",
    input = { path = "calc.sh", old_string = "$1 - $2", new_string = "$1 + $2" } } } })
  doc.conversations = keep
  return doc
end

-- A checkout as a CI job has it: the repository (the first one from make_project.sh, or a fresh
-- clone of its remote), the config, and the shared script where both recipes expect it.
local function checkout(p, dir)
  if dir ~= p.dir then
    assert.are.equal(0, support.sh(("git clone -q -b main '%s' '%s'"):format(p.remote, dir)).code)
  end
  support.write(dir .. "/.claude/autonomous.yml", p.config)
  for _, where in ipairs{ ".github/codeassist-ci.sh", "ci/codeassist-ci.sh" } do
    support.write(dir .. "/" .. where, assert(fs.read(CI .. "/codeassist-ci.sh")))
  end
  return dir
end

describe("CI recipes", function()
  teardown(function() support.cleanup() end)

  describe("the workflow files", function()
    it("GitHub Actions: one run per issue on the GPU runner, the run folder always kept, resumed on a re-run", function()
      local doc = load_yaml("github-actions.yml")
      assert.is_true(contains(doc.on.issues.types, "labeled"))
      assert.are.equal(true, doc.on.workflow_dispatch.inputs.issue.required)
      local issue = "${{ github.event.issue.number || inputs.issue }}"
      assert.are.equal("codeassist-issue-" .. issue, doc.concurrency.group)
      assert.are.equal(false, doc.concurrency["cancel-in-progress"])
      local job = doc.jobs.codeassist
      assert.are.same({ "self-hosted", "gpu" }, job["runs-on"])
      assert.matches("github.event.label.name == 'codeassist'", job["if"], 1, true)
      assert.are.equal(issue, job.env.ISSUE)   -- the run works on the issue the group is keyed by
      assert.are.equal("${{ secrets.ANTHROPIC_API_KEY }}", job.env.ANTHROPIC_API_KEY)
      assert.are.equal("${{ vars.OLLAMA_HOST }}", job.env.OLLAMA_HOST)
      assert.matches("github%.token", job.env.GH_TOKEN)

      local s = github_steps(job)
      for _, k in ipairs{ "checkout", "restore", "run", "save", "upload" } do assert.is_table(s[k], k) end
      assert.is_true(s.checkout.index < s.restore.index and s.restore.index < s.run.index and s.run.index < s.save.index
        and s.save.index < s.upload.index, "the steps' order")
      assert.are.equal(0, s.checkout.with["fetch-depth"])
      -- restored on a retry (or from a named run), never failing the job when there is nothing to restore
      assert.matches("github.run_attempt != '1'", s.restore["if"], 1, true)
      assert.are.equal(true, s.restore["continue-on-error"])
      assert.are.equal(".codeassist/runs", s.restore.with.path)
      assert.are.equal(s.upload.with.name, s.restore.with.name)
      assert.matches("env.ISSUE", s.upload.with.name, 1, true)   -- one artifact per issue
      -- the branch kept and the folder uploaded whatever the run's exit (BLOCKED fails the job)
      assert.are.equal("always()", s.save["if"])
      assert.are.equal("always()", s.upload["if"])
      assert.are.equal(".codeassist/runs", s.upload.with.path)
      assert.are.equal(true, s.upload.with["include-hidden-files"])
      assert.are.equal(true, s.upload.with.overwrite)
      assert.are.equal('sh .github/codeassist-ci.sh run "$ISSUE"', s.run.run)
      assert.are.equal('sh .github/codeassist-ci.sh save "$ISSUE"', s.save.run)
    end)

    it("GitLab CI: a resource group per issue, GPU tags, the run folder always kept, retried with resume", function()
      local job = load_yaml("gitlab-ci.yml").codeassist
      assert.matches("$ISSUE", job.rules[1]["if"], 1, true)
      assert.are.equal("codeassist-issue-$ISSUE", job.resource_group)
      assert.is_true(contains(job.tags, "gpu"))
      assert.are.equal("always", job.artifacts.when)
      assert.is_true(contains(job.artifacts.paths, ".codeassist/runs/"))
      -- a retry is a new job: the cache carries the run folder to it, per pipeline and issue
      assert.are.equal("always", job.cache.when)
      assert.is_true(contains(job.cache.paths, ".codeassist/runs/"))
      assert.matches("$CI_PIPELINE_ID", job.cache.key, 1, true)
      assert.matches("$ISSUE", job.cache.key, 1, true)
      assert.is_true(job.retry.max >= 1)
      assert.is_true(contains(job.retry.when, "runner_system_failure"))
      assert.is_true(contains(job.retry.exit_codes, 137))
      assert.is_false(contains(job.retry.exit_codes, 1))   -- BLOCKED would end the same way again
      assert.are.equal("0", job.variables.GIT_DEPTH)
      assert.is_true(contains(job.script, 'sh ci/codeassist-ci.sh run "$ISSUE"'))
      assert.is_true(contains(job.after_script, 'sh ci/codeassist-ci.sh save "$ISSUE"'))
    end)

    it("the shared script is POSIX sh and refuses bad arguments with exit 2", function()
      assert.are.equal(0, support.sh("sh -n " .. CI .. "/codeassist-ci.sh").code)
      for _, args in ipairs{ "", "run", "run x7", "save", "save 7 8", "resume 7" } do
        local r = support.sh("sh " .. CI .. "/codeassist-ci.sh " .. args, { cwd = support.tmpdir() })
        assert.are.equal(2, r.code, args)
        assert.matches("usage: codeassist%-ci%.sh run ISSUE", r.stderr, nil, args)
      end
    end)
  end)

  describe("codeassist-ci.sh with the recipes' own commands", function()
    local sim, claude
    setup(function()
      sim = support.simulator()
      claude = support.simulator("--flavor anthropic --api-key " .. KEY)
    end)
    teardown(function() sim:stop(); claude:stop() end)
    before_each(function()
      sim:reset(); claude:reset()
      sim:control("/_sim/scenario", scenario())
      claude:control("/_sim/scenario", scenario())
    end)

    local function project()
      local p = loop.project()
      p.config = loop.ollama_config(sim.url):gsub("default: ollama", "default: claude")
      checkout(p, p.dir)
      p.bin = p.top .. "/bin"   -- codeassist on PATH, as the runner has it
      assert.are.equal(0, support.sh(("mkdir -p '%s' && ln -s '%s' '%s/codeassist'"):format(p.bin, support.bin, p.bin)).code)
      return p
    end

    -- One step's command, in the checkout, with the job's own variables (its secrets and the
    -- runner's variables given here).
    local function step(p, dir, job_env, command, extra)
      local env = { PATH = p.bin .. ":" .. support.root .. "/tests/fakes:" .. os.getenv("PATH"), FAKE_FORGE_DIR = p.forge,
                    ISSUE = "7", ANTHROPIC_API_KEY = KEY, ANTHROPIC_BASE_URL = claude.url, OLLAMA_HOST = false,
                    GH_TOKEN = false, GITHUB_STEP_SUMMARY = p.top .. "/summary.md" }
      for k, v in pairs(job_env) do
        if type(v) == "string" and not v:find("${{", 1, true) and env[k] == nil then env[k] = v end
      end
      for k, v in pairs(extra or {}) do env[k] = v end
      return support.sh(command, { cwd = dir, env = env, timeout = 120 })
    end

    local github = load_yaml("github-actions.yml").jobs.codeassist
    local gs = github_steps(github)
    local gitlab = load_yaml("gitlab-ci.yml").codeassist

    -- A job's attempt, as its recipe runs it: the main command (with `extra` in its environment),
    -- then the always-steps; the run folder, as uploaded, copied to `artifact`.
    local function github_attempt(p, dir, artifact, extra)
      local r = step(p, dir, github.env, gs.run.run, extra)
      assert.are.equal(0, step(p, dir, github.env, gs.save.run).code)
      step(p, dir, github.env, gs.report.run)
      assert.are.equal(0, support.sh(("rm -rf '%s' && cp -R '%s/.codeassist/runs' '%s'"):format(artifact, dir, artifact)).code)
      return r
    end
    local function gitlab_attempt(p, dir, artifact, extra)
      local r = step(p, dir, gitlab.variables, table.concat(gitlab.script, "\n"), extra)
      assert.are.equal(0, step(p, dir, gitlab.variables, table.concat(gitlab.after_script, "\n")).code)
      assert.are.equal(0, support.sh(("rm -rf '%s' && cp -R '%s/.codeassist/runs' '%s'"):format(artifact, dir, artifact)).code)
      return r
    end

    -- the newest run (as `codeassist runs` orders them: two may start in the same second)
    local function state_of(dir)
      local runs = require("codeassist.runs").list(dir)
      assert.is_true(#runs > 0, "no run folder in " .. dir)
      return runs[1].state, runs[1].paths.dir, #runs
    end

    local function chats()
      local n = 0
      for _, s in ipairs{ sim, claude } do
        for _, e in ipairs(s:log()) do
          if (e.path == "/api/chat" or e.path == "/v1/messages") and e.body and e.body.messages then n = n + 1 end
        end
      end
      return n
    end

    local function delivered_once(p, label)
      local log = support.sh("git log --format=%s main..feature/7-add-subtracts-instead-of-adding", { cwd = p.remote }).stdout
      assert.are.equal("fix: add subtracts instead of adding (#7)\n", log, label)
      assert.are.equal(1, #cjson.decode(fs.read(p.forge .. "/prs.json")), label)
    end

    it("runs fresh the first time; a re-run of a job that ended done reports it, with no second pull request", function()
      local p = project()
      local r = github_attempt(p, p.dir, p.top .. "/artifact")
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("codeassist%-ci: no earlier run of issue #7 in %.codeassist/runs: starting one", r.stderr)
      assert.matches("✓ Done: score 100/95 after 1 iteration", r.stdout)
      local state, _, count = state_of(p.dir)
      assert.are.equal("done", state.outcome.status)
      assert.are.equal("ollama_hybrid", state.preset)   -- the recipe's preset, from the job's env
      delivered_once(p, "fresh")
      assert.matches("Closes #7", fs.read(p.top .. "/summary.md"))   -- the report step's job summary
      -- re-run: the artifact is back in a fresh checkout
      local again = checkout(p, p.top .. "/rerun")
      assert.are.equal(0, support.sh(("mkdir -p '%s/.codeassist' && cp -R '%s/artifact' '%s/.codeassist/runs'")
        :format(again, p.top, again)).code)
      r = github_attempt(p, again, p.top .. "/artifact2")
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("run .- of issue #7 ended done: reporting it", r.stderr)
      assert.matches("already ended: done — https://", r.stdout)
      assert.are.equal(count, select(3, state_of(again)))
      delivered_once(p, "re-run")
    end)

    -- the kill points: 3 = the agent's edit made, not committed, while it runs the tests;
    -- 6 = the iteration committed, in the gates; 15 = the pull request open, its state half written
    for _, case in ipairs{ { at = "3", recipe = "github", step = "implement" }, { at = "6", recipe = "gitlab", step = "gates" },
                           { at = "15:mid", recipe = "github", step = "delivering" } } do
      it(("resumes on a %s retry, in a fresh clone, a run killed at state write %s (%s), to the same outcome")
          :format(case.recipe, case.at, case.step), function()
        local attempt = case.recipe == "github" and github_attempt or gitlab_attempt
        local p = project()
        local art = p.top .. "/artifact"
        local killed = attempt(p, p.dir, art, { CODEASSIST_CRASH_AT = case.at })
        assert.are.equal(137, killed.code, killed.stdout .. killed.stderr)
        local state, dir = state_of(p.dir)
        assert.are.equal(case.step, state.step)
        assert.is_nil(state.outcome)
        -- the save step noted the branch; its commits, when it had some, are in the bundle, and
        -- an edit not committed yet is in the patch
        assert.matches("^feature/7%-add%-subtracts%-instead%-of%-adding %x+\n$", fs.read(dir .. "/ci-branch"))
        if case.step == "implement" then
          assert.matches("calc.sh", support.sh("git status --porcelain", { cwd = p.dir }).stdout)
          assert.matches("^diff %-%-git a/calc%.sh b/calc%.sh\n", fs.read(dir .. "/ci-worktree.patch"))
        else
          assert.is_truthy(fs.stat(dir .. "/ci-branch.bundle"))
          assert.is_nil(fs.stat(dir .. "/ci-worktree.patch"))
        end
        -- the retry: a new runner's clone, the run folder restored from the artifact
        local retry = checkout(p, p.top .. "/retry")
        assert.are.equal(0, support.sh(("mkdir -p '%s/.codeassist' && cp -R '%s' '%s/.codeassist/runs'"):format(retry, art, retry)).code)
        local r = attempt(p, retry, p.top .. "/artifact2")
        assert.are.equal(0, r.code, r.stdout .. r.stderr)
        assert.matches("codeassist%-ci: resuming run " .. state.run_id:gsub("%p", "%%%0") .. " of issue #7 %(unfinished%)", r.stderr)
        assert.matches("resuming run .- at iteration 1", r.stdout)
        local final = state_of(retry)
        assert.are.equal("done", final.outcome.status)
        assert.are.equal(1, final.iteration)
        assert.are.equal(100, final.last_total)
        delivered_once(p, case.at)
        -- every call of both attempts is in the one ledger
        local calls = 0
        for _ in (fs.read(select(2, state_of(retry)) .. "/ledger.jsonl") or ""):gmatch("[^\n]+") do calls = calls + 1 end
        assert.are.equal(chats(), calls)
      end)
    end

    it("starts anew, saying why, when the retry has the run folder but not the run's branch", function()
      local p = project()
      local killed = step(p, p.dir, github.env, gs.run.run, { CODEASSIST_CRASH_AT = "6" })   -- no save step ran
      assert.are.equal(137, killed.code, killed.stdout .. killed.stderr)
      local retry = checkout(p, p.top .. "/retry")
      assert.are.equal(0, support.sh(("mkdir -p '%s/.codeassist' && cp -R '%s/.codeassist/runs' '%s/.codeassist/runs'")
        :format(retry, p.dir, retry)).code)
      local r = step(p, retry, github.env, gs.run.run)
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("cannot be resumed here: its branch feature/7%-add%-subtracts%-instead%-of%-adding could not be restored", r.stderr)
      local state, _, count = state_of(retry)
      assert.are.equal("done", state.outcome.status)
      assert.are.equal(2, count)   -- the killed run's folder, and the new run's
      delivered_once(p, "anew")
    end)
  end)

  describe("examples/ci/pool.yml", function()
    local a, b
    setup(function() a = support.simulator(); b = support.simulator() end)
    teardown(function() a:stop(); b:stop() end)

    local function doctor(path)
      return support.codeassist({ "doctor", "--config", path }, { cwd = support.tmpdir(), timeout = 60,
        env = { NO_COLOR = "1", ANTHROPIC_API_KEY = false, ANTHROPIC_AUTH_TOKEN = false, OLLAMA_HOST = false } })
    end

    it("passes the doctor on two servers, and with one of them down still counts the pool usable", function()
      local text = assert(fs.read(CI .. "/pool.yml"))
      local servers = {}
      for url in text:gmatch("\n%s+%- (http://%S+)") do servers[#servers + 1] = url end
      assert.are.equal(2, #servers)
      text = text:gsub(servers[1]:gsub("%p", "%%%0"), a.url):gsub(servers[2]:gsub("%p", "%%%0"), b.url)
      local path = support.write(support.tmpdir() .. "/pool.yml", text)
      local r = doctor(path)
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("Ollama %(" .. a.url:gsub("%p", "%%%0") .. "%):\n  ✓ Server reachable", r.stdout)
      assert.matches("Ollama %(" .. b.url:gsub("%p", "%%%0") .. "%):\n  ✓ Server reachable", r.stdout)
      assert.matches("✓ All providers healthy", r.stdout)
      assert.are.equal("", r.stderr)   -- no warning about a key of the file
      b:stop()
      r = doctor(path)
      assert.are.equal(0, r.code, r.stdout .. r.stderr)
      assert.matches("Connection refused at " .. b.url:gsub("%p", "%%%0") .. " %(another server of the pool serves it%)", r.stdout)
      assert.matches("✓ Every required route is usable%.", r.stdout)
    end)
  end)
end)
