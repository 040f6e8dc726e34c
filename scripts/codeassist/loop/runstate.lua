-- The loop's side of a run folder (codeassist.runs): what of the run's state is kept and
-- given back on --resume, the checkpoint after every step, the ledger and trace of every
-- model call, the budgets, and the report at the end.
local errors = require "codeassist.errors"
local events = require "codeassist.events"
local json = require "codeassist.json"
local clock = require "codeassist.clock"
local config = require "codeassist.config"
local runs = require "codeassist.runs"
local report = require "codeassist.report"
local prices = require "codeassist.prices"
local render = require "codeassist.loop.render"

local M = {}

-- The fields of the loop's state a resumed run needs; everything else is rebuilt.
local KEPT = { "preset", "preset_source", "issue", "issue_file", "platform", "branch", "slug", "base", "base_name",
               "target", "start", "remote_tip", "untracked_at_start", "iteration", "step", "history", "findings",
               "last_total", "last_results", "done_results", "agent_messages", "agent_turns", "same", "last_signature",
               "baseline_counts", "head", "routing", "outcome", "started_at", "started_wall", "elapsed", "changed_files", "target_score",
               "max_iterations", "checkpoints" }

-- A gate result as the state keeps it: without the measured command's whole output.
local function compact(r)
  local c = {}
  for k, v in pairs(r) do c[k] = v end
  if type(r.measured) == "table" then
    c.measured = { score = r.measured.score, reason = r.measured.reason,
                   report = type(r.measured.report) == "string" and r.measured.report:sub(1, 20000) or nil }
  end
  c.usage = nil
  return c
end

local function compact_map(results)
  if not results then return nil end
  local out = {}
  for k, r in pairs(results) do out[k] = compact(r) end
  return out
end

function M.saved(state)
  local s = {}
  for _, k in ipairs(KEPT) do s[k] = state[k] end
  s.last_results = state.last_results and compact_map(state.last_results)
  s.done_results = state.done_results and compact_map(state.done_results)
  s.elapsed = (state.elapsed_before or 0) + (clock.monotonic() - state.clock_started)
  s.routing = { breaker = state.router and state.router.breaker.export and state.router.breaker.export() or nil }
  return s
end

-- The checkpoint after a step: state.json written atomically with HEAD as it is now. A write
-- that fails (a full disk) stops the run; the previous state stays as it was.
function M.checkpoint(state, step)
  if not state.run then return end
  state.step = step or state.step
  state.head = (state.repo:output{ "rev-parse", "HEAD" } or ""):gsub("%s+$", "")
  state.checkpoints = (state.checkpoints or 0) + 1   -- steps saved, over every process of the run
  local ok, err = state.run:checkpoint(M.saved(state))
  if not ok then
    errors.goal("cannot save the run's state in %s: %s — the run stops; its last saved state is intact "
      .. "(free some space, then resume with --resume %s)", state.run.paths.state, err.message, state.run.id)
  end
end

-- ===== model calls: the ledger, the trace, the budgets =====

local TRACE_LINE_CAP = 1000000

-- After every attempt of every model call: a ledger line and a trace line.
function M.recorder(state)
  local trace = io.open(state.run.paths.trace, "a")
  state.trace_file = trace
  return function(call)
    local route, m = call.route, call.message
    state.ledger:record{ gate = call.gate, iteration = state.iteration, provider = route.provider, model = route.model,
      endpoint = m and m.base_url and require("codeassist.http").redact(m.base_url) or nil,
      usage = m and m.usage or {}, seconds = call.seconds, ok = m ~= nil, replayed = state.replay ~= nil }
    if trace then
      local line = json.encode{ time = clock.wall(), gate = call.gate, iteration = state.iteration, attempt = call.attempt,
        provider = route.provider, model = route.model, seconds = call.seconds, request = call.request,
        response = m and { content = m.content, usage = m.usage, stop_reason = m.stop_reason } or nil,
        error = call.error and { kind = call.error.kind, message = call.error.message } or nil }
      if line then
        if #line > TRACE_LINE_CAP then
          line = json.encode{ time = clock.wall(), gate = call.gate, iteration = state.iteration, attempt = call.attempt,
            provider = route.provider, model = route.model, seconds = call.seconds, truncated = #line } or ""
        end
        trace:write(events.scrub(line), "\n")
        trace:flush()
      end
    end
  end
end

-- Before every call: a Claude call over the dollar budget, or over the calls-per-hour budget
-- for longer than a short wait, is refused and stops the run. Local calls are free: they
-- never count.
function M.budget(state)
  local safety = state.cfg.safety or {}
  return function(route, gate)
    if route.provider ~= "anthropic" then return nil end
    local totals = state.ledger.totals
    local max_usd = tonumber(safety.max_cost_usd)
    if max_usd and totals.usd >= max_usd then
      state.budget_exceeded = ("the cost budget is spent: %s of safety.max_cost_usd %s (%d Claude calls)"):format(
        report.money(totals.usd), report.money(max_usd), totals.paid_calls)
      return errors.failure("unavailable", state.budget_exceeded, { budget = true })
    end
    local per_hour = tonumber(safety.max_api_calls_per_hour)
    if per_hour and per_hour > 0 and state.ledger:paid_calls_since(clock.wall() - 3600) >= per_hour then
      local frees = state.ledger:window_frees_at(per_hour) or clock.wall()
      local wait = frees - clock.wall()
      if wait > 60 then
        state.budget_exceeded = ("the call budget is spent: %d Claude calls in the last hour (safety.max_api_calls_per_hour "
          .. "%d); resume after %s, or raise it"):format(state.ledger:paid_calls_since(clock.wall() - 3600), per_hour,
          os.date("%H:%M", math.floor(frees)))
        return errors.failure("unavailable", state.budget_exceeded, { budget = true })
      end
      render.note(state.bus, ("%s: waiting %.0f s for the hourly call budget (safety.max_api_calls_per_hour %d)")
        :format(gate, wait, per_hour), "info")
      require("codeassist.task").sleep(math.max(0, wait))
    end
  end
end

-- ===== the end =====

-- report.json and report.md, from the saved state and the ledger; returns the report.
function M.write_report(state)
  local saved = M.saved(state)
  saved.run_id = state.run and state.run.id
  local doc = report.build(saved, state.ledger and state.ledger.totals, { prices_taken = prices.TAKEN })
  if state.run then
    local fs = require "codeassist.fs"
    fs.write_atomic(state.run.paths.report_json, (json.encode(doc) or "{}") .. "\n")
    fs.write_atomic(state.run.paths.report_md, report.markdown(doc))
  end
  return doc
end

-- Records how the run ended, writes the report and closes the files.
function M.finish(state, outcome)
  state.outcome = outcome
  if state.run then
    pcall(M.checkpoint, state)   -- the step stays: a run stopped part-way resumes there
  end
  local doc = M.write_report(state)
  if state.ledger then state.ledger:close() end
  if state.trace_file then state.trace_file:close(); state.trace_file = nil end
  return doc
end

-- ===== resume =====

-- Puts a saved state back into the loop's state, after checking the repository still is
-- where the run left it. Nothing is overwritten: a mismatch is an error saying what differs.
function M.restore(state, saved)
  local repo = state.repo
  local current = repo:current_branch()
  if current ~= saved.branch then
    errors.usage("run %s works on %s, but %s is checked out: check out %s (git checkout %s), then resume",
      state.run.id, tostring(saved.branch), tostring(current), tostring(saved.branch), tostring(saved.branch))
  end
  local head = (repo:output{ "rev-parse", "HEAD" } or ""):gsub("%s+$", "")
  local step = saved.step
  local function tree(ref) return (repo:output{ "rev-parse", ref .. "^{tree}" } or ""):gsub("%s+$", "") end
  if head ~= saved.head and step == "delivering" and saved.head and tree("HEAD") == tree(saved.head) then
    -- the delivery had squashed the work into its one commit: the same content, go on with it
  elseif head ~= saved.head then
    -- the run's own commits since its last checkpoint are fine: an iteration's commit, or the
    -- commit of the work kept when it was stopped
    local ours = saved.head and repo:run{ "merge-base", "--is-ancestor", saved.head, "HEAD" }
    local subjects = ours and ours.code == 0 and repo:output{ "log", "--format=%s", saved.head .. "..HEAD" } or nil
    local all_ours, last = subjects ~= nil, nil
    for line in (subjects or ""):gmatch("[^\n]+") do
      if not line:find("^codeassist: iteration %d+ of ") then all_ours = false end
      last = last or line
    end
    if not all_ours then
      errors.usage("%s moved since run %s stopped (it left %s, HEAD is now %s): resume needs the branch as the run "
        .. "left it — start a new run instead", saved.branch, state.run.id, tostring(saved.head):sub(1, 12), head:sub(1, 12))
    end
    if (step == "implement" or step == "next") and last and not last:find("%(%a+%)$") then step = "gates" end
  end
  -- uncommitted edits to tracked files only where the run was interrupted inside the agent
  local modified = require("codeassist.loop.worktree").worktree_changes(repo)
  if #modified > 0 and step ~= "implement" and step ~= "next" then   -- (next: the agent may have begun)
    errors.usage("the worktree has changes run %s did not make (%s): commit or stash them, then resume", state.run.id,
      require("codeassist.loop.worktree").listing(modified))
  end
  for _, k in ipairs(KEPT) do
    if saved[k] ~= nil then state[k] = config.deep_copy(saved[k]) end
  end
  if step ~= saved.step then   -- the agent had finished: its iteration commit is there
    state.agent_messages, state.agent_turns, state.done_results = nil, nil, {}
  end
  state.step = step
  state.elapsed_before = tonumber(saved.elapsed) or 0
  state.baseline = saved.baseline_counts and { tests = saved.baseline_counts, exit = saved.baseline_counts.exit } or nil
  state.resumed = true
end

return M
