-- The measured gates' commands as the loop runs them: the build and the tests in the agent's
-- sandbox, scored from what they did; and the test count before any change, which a later run
-- must not fall below.
local errors = require "codeassist.errors"
local render = require "codeassist.loop.render"

local M = {}

-- The most a test run scores when fewer tests ran than at the start of the run.
local BASELINE_CAP = 50

-- The measured steps, as the gates ask for them: score, reason, and a report for the model.
function M.measurer(state)
  local measure = require "codeassist.gates.measure"
  return function(step)
    local s = state.measure_plan and state.measure_plan[step]
    if not s then
      if step == "build" then
        return { score = 100, reason = "no build step found: nothing to compile", skip_model = true }
      end
      return { score = 50, reason = "no test command found (" .. tostring(state.measure_plan and state.measure_plan.why)
        .. "): add gates.test.command to .claude/autonomous.yml", skip_model = true }
    end
    local settings = state.plan.gates[step] or {}
    -- the gate's own timeout ends the command (the task is cancelled, its process group with
    -- it); this one only backs it up
    -- one measured command at a time: the build and the tests write the same outputs (a
    -- `make` and a `make test` at once race on the binary they both build)
    state.measure_lock = state.measure_lock or require("codeassist.task").semaphore(1)
    local r, stopped = state.measure_lock:with(measure.run, s, { root = state.root, sandbox = state.sandbox,
      timeout = (settings.timeout_ms or 300000) / 1000 + 10 })
    if not r then error(stopped, 0) end   -- interrupted while waiting for the other command
    local sc, why
    if step == "build" then sc, why = measure.score_build(r)
    else
      sc, why = measure.score_test(r, { min_coverage = settings.thresholds and settings.thresholds.min_coverage })
      -- tests that ran before the change and no longer run (deleted, skipped, a test script
      -- rewritten to exit 0) do not make the change pass
      local before = state.baseline and state.baseline.tests and state.baseline.tests.total or 0
      local now = r.tests and r.tests.total or 0
      if before > 0 and now < before and sc > BASELINE_CAP then
        sc, why = BASELINE_CAP, ("%s; but fewer tests ran than when the run started (%d, was %d): tests that no longer "
          .. "run do not count as passing"):format(why, now, before)
      end
    end
    local report = {}
    report[#report + 1] = ("$ %s\n%s"):format(s.command, r.timed_out and "(timed out)" or ("exit code " .. tostring(r.exit)))
    for _, f in ipairs(r.tests and r.tests.failures or {}) do
      report[#report + 1] = ("FAILED %s%s: %s"):format(tostring(f.name), f.file and (" (" .. f.file .. (f.line and (":" .. f.line) or "") .. ")") or "",
        tostring(f.message or ""))
    end
    if sc < 100 then report[#report + 1] = r.output or "" end
    return { score = sc, reason = why, skip_model = sc >= 100, report = table.concat(report, "\n"), run = r }
  end
end

-- The tests as they stood before the agent changed anything on this branch: measured when
-- the branch starts from its base, and kept in the repository's git folder (which the agent
-- cannot write) so a later run on the same branch compares with the same count.
function M.baseline(state)
  local fs, json = require "codeassist.fs", require "codeassist.json"
  local command = state.measure_plan.test.command
  local gitdir = (state.repo:output{ "rev-parse", "--absolute-git-dir" } or ""):gsub("%s+$", "")
  local file = gitdir ~= "" and ("%s/codeassist/baseline/%s.json"):format(gitdir, state.branch:gsub("[^%w%-_.]", "_")) or nil
  local saved = file and json.decode(fs.read(file) or "")
  if type(saved) == "table" and saved.base == state.base and saved.command == command then
    state.baseline = { tests = { total = tonumber(saved.total) or 0, passed = tonumber(saved.passed) or 0 }, exit = saved.exit }
    state.baseline_counts = { total = state.baseline.tests.total, passed = state.baseline.tests.passed, exit = saved.exit }
    render.note(state.bus, ("when work on this branch began, `%s`: %d of %d tests passed"):format(command,
      state.baseline.tests.passed, state.baseline.tests.total), "info")
    return
  end
  local progress = state.bus:progress("running the tests before any change")
  local settings = state.plan.gates.test or {}
  state.baseline = require("codeassist.gates.measure").run(state.measure_plan.test, { root = state.root,
    sandbox = state.sandbox, timeout = (settings.timeout_ms or 300000) / 1000 })
  progress:done()
  local t = state.baseline.tests
  state.baseline_counts = { total = t and t.total or 0, passed = t and t.passed or 0, exit = state.baseline.exit }
  render.note(state.bus, ("before any change, `%s`: %s"):format(command,
    t and t.total > 0 and ("%d of %d tests passed"):format(t.passed or 0, t.total)
      or ("exit %s, no test count could be read"):format(tostring(state.baseline.exit))), "info")
  -- only a branch that starts here gets its count kept: a continued one was already changed
  local fresh = (state.repo:output{ "rev-parse", "HEAD" } or ""):gsub("%s+$", "") == state.base
  if file and fresh then
    fs.mkdir_p(file:match("^(.*)/[^/]*$"))
    fs.write_atomic(file, json.encode{ base = state.base, command = command, total = t and t.total or 0,
                                       passed = t and t.passed or 0, exit = state.baseline.exit } or "{}")
  end
end

return M
