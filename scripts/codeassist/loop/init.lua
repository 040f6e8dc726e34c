-- The development loop: `codeassist run PRESET --issue N`.
--
--   doctor (a run can start: loop/preflight.lua, or exit 1) -> the issue (gh / glab / a Markdown file)
--   -> branch feature/<issue>-<slug> -> iteration i:
--        implement (the agent, with the failing gates' findings from i = 2)
--        -> commit the iteration -> gates by group -> score -> hooks -> stop? -> iteration_delay
--   -> at the target: one commit, push the feature branch (never a protected one), open the
--      PR/MR and verify it exists -> exit 0; at max_iterations: BLOCKED, exit 1.
--
-- Everything a model could get wrong that matters is done by the runtime and checked:
-- commits, pushes, the PR. Build and test gates are measured. Routes switch only as the
-- preset's floors allow, and every switch is printed with its reason.
local config = require "codeassist.config"
local preset = require "codeassist.preset"
local errors = require "codeassist.errors"
local events = require "codeassist.events"
local router_mod = require "codeassist.router"
local term = require "codeassist.term"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local gates_mod = require "codeassist.gates"
local loop_gates = require "codeassist.loop.gates"
local prompts = require "codeassist.loop.prompts"
local render = require "codeassist.loop.render"
local score = require "codeassist.score"
local worktree = require "codeassist.loop.worktree"
local branch = require "codeassist.loop.branch"
local measured = require "codeassist.loop.measured"
local runstate = require "codeassist.loop.runstate"
local report = require "codeassist.report"
local recording = require "codeassist.recording"
local preset_reload = require "codeassist.loop.preset_reload"

local M = {}

-- Iterations with the same score and findings after which a run stops as stuck.
local STALL_AFTER = 3

local note = render.note

-- The hook context for a gate now.
local function ctx_for(state, gate)
  local ctx = preset.context(state.plan, { phase = gate == "implement" and "implement" or "gates",
    iteration = state.iteration, history = config.deep_copy(state.history), changed_files = config.deep_copy(state.changed_files),
    issue = { number = state.issue.number, title = state.issue.title, labels = state.issue.labels, body = state.issue.body } })
  ctx.measure = state.measure
  return ctx
end

-- The issue: from the platform (whose CLI prepare has checked), or a Markdown file.
local function load_issue(opts, root, platform)
  local forge = require "codeassist.forge"
  if opts.issue_file then
    local issue, err = forge.issue_from_file(opts.issue_file)
    if not issue then errors.usage("--issue-file %s: %s", opts.issue_file, err.message) end
    return issue
  end
  local issue, err = forge.fetch_issue(platform, opts.issue, root)
  if not issue then
    local message = err.message
    if not message:find("#" .. tostring(opts.issue), 1, true) then message = ("issue #%s: %s"):format(tostring(opts.issue), message) end
    errors.goal("%s", message)
  end
  return issue
end

local function supervised_pause(state)
  if not term.isatty("stdin") then
    return "y"   -- said once, when the run started
  end
  io.stdout:write(("\nIteration %d done (score %s). Continue? [y]es / [n]o (stop) / [s]kip the delay: "):format(state.iteration, state.last_total))
  io.stdout:flush()
  local answer = (io.stdin:read("*l") or "n"):lower():sub(1, 1)
  return answer == "" and "y" or answer
end

-- opts: {preset = name/path, preset_value, issue, issue_file, repo, config, dry_run,
--        supervised, resume = true | run id, json, trace = path, record = dir, replay = dir,
--        flags = {target_score, max_iterations, vram_gb, routes}}; returns the exit code.
function M.main(opts)
  local root = config.repo_root(opts.repo)   -- from a subfolder: the project
  local cfgpath = opts.config or (root .. "/" .. config.DEFAULT_PATH)
  local cfg = config.load{ path = cfgpath, missing_ok = not opts.config }
  cfg.source.path = opts.config or config.DEFAULT_PATH
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local p = opts.preset_value ~= nil and preset.from_value(opts.preset_value, cfg, opts.preset) or preset.load(opts.preset, cfg)
  local plan = preset.plan(p, cfg, opts.flags or {})
  for _, s in ipairs{ cfg.providers.anthropic.api_key, cfg.providers.anthropic.auth_token, cfg.providers.ollama.api_key } do
    events.secret(s)
  end

  local bus = events.new()
  if opts.json then
    bus:add(events.json_lines(io.stdout))           -- for machines: every event, one JSON object a line
  else
    local formats = {}
    for k, v in pairs(require("codeassist.doctor.render").formats) do formats[k] = v end
    for k, v in pairs(render.formats) do formats[k] = v end
    local live = term.isatty("stdout")
    if not live then for k, v in pairs(render.log_formats) do formats[k] = v end end
    bus:add(events.text(io.stdout, { formats = formats, color = term.color("stdout"), live = live }))
  end
  local trace
  if opts.trace then
    local err
    trace, err = io.open(opts.trace, "w")
    if not trace then errors.usage("--trace: cannot write %s", tostring(err)) end
    bus:add(events.json_lines(trace))
  end
  local started = clock.monotonic()
  local holder = {}
  local ok, code = pcall(M.run, opts, root, cfg, plan, bus, holder)
  bus:abandon()
  local st = holder.state
  if not ok and st and st.on_branch then
    -- stopped part-way: what the agent wrote so far is kept in a commit on the branch, so the
    -- worktree is clean and the same command (or --resume) goes on from there
    local why = type(code) == "table" and code.code == 130 and "interrupted" or "stopped"
    pcall(worktree.stop_commit, st, why)
    local count = (st.repo:output{ "rev-list", "--count", st.base .. "..HEAD" } or "?"):gsub("%s+$", "")
    local doc = runstate.finish(st, { status = why, exit_code = type(code) == "table" and code.code or 3,
                                      reason = type(code) == "table" and code.message or tostring(code) })
    note(bus, ("%s in iteration %d: the work so far is on %s (%s commit%s since %s)%s"):format(why, st.iteration, st.branch,
      count, count == "1" and "" or "s", st.base_name, st.replay and "" or ("; go on with `codeassist run %s --resume %s`")
      :format(tostring(opts.preset or plan.name), st.run and st.run.id or "")), "warn")
    bus:emit("run.summary", { lines = report.summary(doc) })
  end
  bus:emit("run.finished", { ok = ok, code = ok and code or (type(code) == "table" and code.code) or nil,
    error = not ok and tostring(type(code) == "table" and code.message or code) or nil,
    run_id = st and st.run and st.run.id, seconds = clock.monotonic() - started, peak_rss_kb = M.peak_rss_kb() })
  bus:close()
  if trace then trace:close() end
  if not ok then error(code, 0) end
  return code
end

-- The most memory this process has held (Linux), for the trace.
function M.peak_rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmHWM:%s+(%d+) kB"))
end

-- What every run needs, new or resumed: the gates, the platform, the doctor's verdict.
local function prepare(opts, root, cfg, plan, bus)
  local git = require "codeassist.git"
  local forge = require "codeassist.forge"
  local repo = git.open(root, cfg)
  if not repo:output{ "rev-parse", "--git-dir" } then errors.usage("%s is not a git repository (give --repo DIR)", root) end

  local gates = gates_mod.load(root)
  preset.add_project_gates(plan, gates, cfg)

  local state = {
    cfg = cfg, gates = gates, bus = bus, root = root, repo = repo,
    platform = not opts.issue_file and not opts.replay and forge.detect(root) or nil,   -- a replay touches no forge
    history = {}, changed_files = {}, iteration = 0, vram_gb = (opts.flags or {}).vram_gb or cfg.providers.ollama.vram_gb,
    model_sizes = {}, notes = {}, clock_started = clock.monotonic(), started_at = os.time(),
    started_wall = clock.wall(),   -- orders two runs started in the same second (runs.list)
    progress = {},
  }
  preset_reload.apply(state, plan)

  -- what costs nothing to check comes before the doctor's network checks
  if not opts.resume and not opts.replay then
    if opts.issue_file and not require("codeassist.fs").stat(opts.issue_file) then
      errors.usage("--issue-file %s: no such file", opts.issue_file)
    end
    if state.platform then
      local ok, err = forge.check_cli(state.platform)
      if not ok then errors.goal("%s", err.message) end
    end
  end
  state.record_dir = opts.record
  if opts.record then
    recording.check_place(opts.record, root)
    if not opts.dry_run then recording.check_new(opts.record) end
  end
  if opts.replay then
    -- no model is called, so no server is checked: the recording stands in for them
    state.replay = recording.load(opts.replay)
    for name, size in pairs(type(state.replay.meta.model_sizes) == "table" and state.replay.meta.model_sizes or {}) do
      state.model_sizes[name] = tonumber(size)
    end
    note(bus, ("replaying %d recorded model exchange%s from %s: no model is called"):format(state.replay.count,
      state.replay.count == 1 and "" or "s", opts.replay), "info")
    return state
  end
  -- the doctor first: nothing is spent on a run that cannot be served
  local doctor = require "codeassist.doctor"
  local flags = opts.flags or {}
  local report_, facts = doctor.check(cfg, plan, { timeout = 5, gates = gates, vram_gb = flags.vram_gb,
    vram_origin = flags.vram_gb and "--vram" or nil }, opts.dry_run and bus or events.new())
  for _, s in ipairs(facts.ollama_list or {}) do
    for _, m in ipairs(s.models or {}) do state.model_sizes[m.name] = m.size end
  end
  for name, m in pairs(facts.models or {}) do
    local requested = name:match("|(.*)$")
    if m.name and m.size then state.model_sizes[requested] = m.size end
  end
  require("codeassist.loop.preflight").check(state, report_, opts, bus)
  return state
end

-- A new run: the worktree checked, the issue, the branch; nil for a dry run (done).
local function start(state, opts)
  local repo, bus, root = state.repo, state.bus, state.root
  -- the run commits what the agent changes: the user's own uncommitted edits must not go with it
  local modified, untracked = worktree.worktree_changes(repo)
  if #modified > 0 then
    errors.usage("%s has uncommitted changes to tracked files (%s): commit or stash them (git stash), then run "
      .. "again — the run commits what the agent changes and must not take your edits with it", root, worktree.listing(modified))
  end
  state.untracked_at_start = untracked

  local issue
  if state.replay then
    issue = recording.issue(state.replay, opts.issue)   -- the recorded one: no forge is asked
  else
    issue = load_issue(opts, root, state.platform)   -- read-only, so a dry run checks it too
  end
  state.issue = { number = issue.number, title = issue.title, body = issue.body, labels = issue.labels, url = issue.url }
  state.issue_file = opts.issue_file
  state.slug = require("codeassist.forge").slug(issue.title or "work")
  state.branch = ("feature/%s-%s"):format(issue.number or "local", state.slug)
  if state.replay then
    -- its own branch, left here: a replay never pushes, opens a pull request or comments
    state.branch = ("replay/%s-%s-%s"):format(issue.number or "local", state.slug, os.date("!%Y%m%d-%H%M%S"))
  end
  state.base, state.base_name = branch.resolve_base(state)
  bus:emit("loop.banner", M.plan_facts(state))
  for _, text in ipairs(state.notes) do note(bus, text, "warn") end
  if #untracked > 0 then
    note(bus, ("%d untracked file%s (%s) stay%s out of the run's commits"):format(#untracked, #untracked == 1 and "" or "s",
      worktree.listing(untracked), #untracked == 1 and "s" or ""), "info")
  end
  if opts.dry_run then
    note(bus, "dry run: nothing was changed and no model was called")
    return nil
  end

  -- the feature branch (an existing one is continued)
  local exists = repo:run{ "rev-parse", "--verify", "--quiet", "refs/heads/" .. state.branch }
  local r = exists and exists.code == 0 and repo:run{ "checkout", "-q", state.branch }
    or repo:run{ "checkout", "-q", "-b", state.branch, state.start }
  if not r or r.code ~= 0 then errors.goal("cannot check out %s: %s", state.branch, r and r.stderr or "git failed") end
  state.run = require("codeassist.runs").create(root, { issue = state.issue.number or state.slug })
  note(bus, ("run %s: its state, ledger, trace and report are in %s"):format(state.run.id,
    state.run.paths.dir:sub(#root + 2)), "info")
  state.step = "implement"
  state.iteration = 1
  return state
end

-- A run taken up again from its folder.
local function resume(state, opts)
  local runs = require "codeassist.runs"
  local run, saved = runs.open(state.root, type(opts.resume) == "string" and opts.resume or nil)
  if not run then errors.usage("--resume: %s", saved.message) end
  state.run = run
  if opts.issue and saved.issue and tostring(opts.issue) ~= tostring(saved.issue.number) then
    errors.usage("--resume: run %s works on issue #%s, not #%s", run.id, tostring(saved.issue.number), tostring(opts.issue))
  end
  runstate.restore(state, saved)
  state.outcome = nil
  if saved.preset ~= state.plan.name then
    note(state.bus, ("run %s was started with preset %s; it goes on with %s"):format(run.id, tostring(saved.preset),
      tostring(state.plan.name)), "warn")
    state.preset = state.plan.name
  end
  state.bus:emit("loop.banner", M.plan_facts(state))
  note(state.bus, ("resuming run %s at iteration %d (%s)"):format(run.id, state.iteration, tostring(state.step)), "info")
  return state
end

-- The live line of a step: what it is doing now.
local function live_detail(state, gate, route, chars, tools)
  local p = state.progress[gate]
  if not p then return end
  local parts = { route and (preset.provider_label(route.provider) .. " " .. tostring(route.model)) or nil }
  if chars and chars > 0 then parts[#parts + 1] = ("~%d tokens"):format(math.floor(chars / 4 + 0.5)) end
  if tools and tools > 0 then parts[#parts + 1] = ("%d tool call%s"):format(tools, tools == 1 and "" or "s") end
  p:detail(table.concat(parts, " · "))
end

-- The pieces every iteration uses: the sandbox, the ledger, the router, the measurements.
local function equip(state)
  local cfg, plan, root = state.cfg, state.plan, state.root
  state.on_branch = true
  state.sandbox = assert(require("codeassist.agent.sandbox").new{ root = root, mode = cfg.agent.sandbox,
                                                                   network = cfg.agent.network })
  state.ledger = require("codeassist.ledger").open(state.run.paths.ledger,
    { claude_model = cfg.providers.anthropic.model })
  local audit = io.open(state.run.paths.audit, "a")
  state.audit = function(record)
    if audit then
      audit:write(events.scrub(require("codeassist.json").encode(record) or "{}"), "\n")
      audit:flush()
    end
  end
  state.repo.audit = state.audit
  local function iteration() return state.iteration end
  local complete
  if state.replay then
    complete = recording.player(state.replay, iteration)
  elseif state.record_dir then
    complete = recording.recorder(state.record_dir, require("codeassist.providers").complete, iteration,
      { preset = state.preset, preset_source = state.preset_source, issue = state.issue, model_sizes = state.model_sizes,
        run_id = state.run.id, recorded_at = os.date("!%Y-%m-%dT%H:%M:%SZ") })
    note(state.bus, ("recording every model exchange in %s (replay it with --replay %s)"):format(state.record_dir,
      state.record_dir), "info")
  end
  state.router = router_mod.new{ cfg = cfg, plan = plan, bus = state.bus, before_call = runstate.budget(state), complete = complete,
    on_call = runstate.recorder(state),
    on_stream = function(gate, route, chars)
      state.streamed[gate] = chars
      live_detail(state, gate, route, chars, gate == "implement" and state.tool_calls or nil)
    end }
  state.streamed = {}
  if state.routing and state.routing.breaker then state.router.breaker.import(state.routing.breaker) end
  state.measure = measured.measurer(state)
  -- the tests as they stand before the agent changes anything: a later run with fewer tests
  -- is not a pass (see measurer)
  if not state.baseline and state.measure_plan and state.measure_plan.test then measured.baseline(state) end
  state.ctx_for = function(gate) return ctx_for(state, gate) end
  state.after_gate = function(r)
    if r.budget then return end   -- refused for the budget: run again when resumed
    state.done_results = state.done_results or {}
    state.done_results[r.gate] = r
    runstate.checkpoint(state)
  end
end

-- The agent's step of iteration i, continuing a saved conversation when there is one.
local function implement(state, i)
  local cfg, plan, bus, root = state.cfg, state.plan, state.bus, state.root
  local implement_route = plan.routes.implement
  local agent = require "codeassist.agent"
  state.protected_snapshot = worktree.snapshot(root)
  local messages = state.agent_messages or { { role = "user", content = prompts.implement(state.issue, i, state.findings) } }
  state.tool_calls = 0
  state.progress.implement = bus:progress("implementing")
  live_detail(state, "implement", implement_route)
  local result = agent.run{ cfg = cfg, router = state.router, gate = "implement", ctx = ctx_for(state, "implement"),
    workspace = root, phase = "implement", max_turns = cfg.agent.max_turns, turns_done = state.agent_turns,
    system = prompts.IMPLEMENT_SYSTEM, messages = messages, audit = state.audit,
    context_limit = implement_route.provider == "ollama" and (plan.gates.implement.context or 65536) or nil,
    on_event = function(ev)
      if ev.type == "agent.tool" then
        state.tool_calls = state.tool_calls + 1
        live_detail(state, "implement", implement_route, state.streamed.implement, state.tool_calls)
      end
      bus:emit(ev.type, ev)
    end,
    on_turn = function(msgs, turn)
      state.agent_messages, state.agent_turns = msgs, turn
      runstate.checkpoint(state)
    end }
  state.progress.implement:done()
  state.progress.implement = nil
  local label = result.message and result.message.route and router_mod.label(result.message.route) or router_mod.label(implement_route)
  bus:emit("loop.implement", { result = result, route = label, iteration = i })
  if result.stop_reason == "sandbox" then errors.goal("the agent cannot run: %s", result.error) end
  if state.budget_exceeded then
    worktree.stop_commit(state, "stopped")   -- the work so far, kept for --resume
    return "budget"
  end
  if result.stop_reason == "provider" and implement_route.floor == "critical" and result.failure
     and errors.UNREACHABLE[result.failure.kind] then
    errors.goal("the agent's route is unavailable: %s", result.error)
  end
  worktree.check_after_agent(state)
  worktree.commit_iteration(state, i)
  state.agent_messages, state.agent_turns = nil, nil
  state.done_results = {}
  runstate.checkpoint(state, "gates")
end

-- The gates of iteration i, scored; the findings for the next.
local function judge(state, i)
  local plan, bus = state.plan, state.bus
  state.changed_files = worktree.changed_files(state)
  state.change = worktree.change_of(state)
  state.more_iterations = i < plan.max_iterations
  local results = loop_gates.run(state)
  if state.budget_exceeded then return "budget" end   -- the gates refused stay to be run on --resume
  local total = score.total(results, plan)
  for _, res in ipairs(results) do
    state.history[res.gate] = state.history[res.gate] or {}
    table.insert(state.history[res.gate], { iteration = i, score = res.score, passed = res.passed, status = res.status,
                                            provider = res.provider, model = res.model })
  end
  if plan.score then
    local ctx = ctx_for(state, "score")
    local custom = errors.call_user("the score(results, ctx) hook of " .. tostring(plan.source), plan.score,
      config.deep_copy(results), ctx)
    if type(custom) == "number" then total.total = math.max(0, math.min(100, custom)); total.rules = total.rules .. " (then the preset's score() hook)" end
  end
  state.last_total, state.last_results, state.last_failed_required = total.total, results, total.failed_required
  bus:emit("loop.gates", { results = results, total = total, target = plan.target_score, iteration = i })
  state.findings = loop_gates.findings_for_next(results)
  -- the same score and the same findings three times: more iterations will not help
  local parts = { tostring(total.total) }
  for _, res in ipairs(results) do
    parts[#parts + 1] = ("%s=%s/%s"):format(res.gate, tostring(res.score), tostring(res.status))
    for _, f in ipairs(res.findings or {}) do parts[#parts + 1] = tostring(f.severity) .. ":" .. tostring(f.title) end
  end
  local signature = table.concat(parts, "\0")   -- no measured output: it carries timings
  state.same = signature == state.last_signature and (state.same or 1) + 1 or 1
  state.last_signature = signature
  state.done_results = nil
  runstate.checkpoint(state, "scored")
end

-- After iteration i is scored: an exit code (the run ends), or nil to go on.
local function decide(state, i, opts)
  local plan, bus, findings = state.plan, state.bus, state.findings or {}
  for _, res in ipairs(state.last_results or {}) do
    if res.unavailable then
      return M.blocked(state, ("a critical route is unavailable: the %s gate could not be served by %s — "
        .. "check the server and the model (`codeassist doctor %s`), then run again")
        :format(res.gate, res.unavailable, tostring(opts.preset or plan.name)), findings)
    end
  end
  local reached = (state.last_total or 0) >= plan.target_score and #(state.last_failed_required or {}) == 0
  if state.last_failed_required == nil then   -- a resumed run: judged again from its saved results
    reached = (state.last_total or 0) >= plan.target_score
    for _, res in ipairs(state.last_results or {}) do if res.blocking then reached = false end end
  end
  if plan.on_iteration then
    local go_on, why = errors.call_user("the on_iteration(ctx) hook of " .. tostring(plan.source), plan.on_iteration,
      ctx_for(state, "iteration"))
    if go_on == false and not reached then
      return M.blocked(state, "stopped by the preset" .. (why and (": " .. tostring(why)) or ""), findings)
    end
  end
  if reached then return M.deliver(state) end
  if state.same >= STALL_AFTER and i < plan.max_iterations then
    return M.blocked(state, ("no progress: the same score (%s/%s) and the same findings in the last %d iterations")
      :format(state.last_total, plan.target_score, STALL_AFTER), findings)
  end
  if i < plan.max_iterations then
    if opts.supervised then
      local answer = supervised_pause(state)
      if answer == "n" then return M.blocked(state, "stopped at the supervisor's request", findings) end
      if answer ~= "s" and (plan.iteration_delay or 0) > 0 then task.sleep(plan.iteration_delay) end
    elseif (plan.iteration_delay or 0) > 0 then
      task.sleep(plan.iteration_delay)
    end
    return nil
  end
  return M.blocked(state, ("score %s/%s after %d iteration%s"):format(state.last_total, plan.target_score,
    plan.max_iterations, plan.max_iterations == 1 and "" or "s"), findings)
end

-- A budget refused a call: the run stops, resumable once the budget allows (exit 1).
function M.stopped_for_budget(state, opts)
  local reason = state.budget_exceeded
  local doc = runstate.finish(state, { status = "stopped", exit_code = 1, reason = reason })
  state.bus:emit("loop.outcome", { status = "blocked", reason = reason .. (" — raise it, then go on with `codeassist "
    .. "run %s --resume %s`"):format(tostring(opts.preset or state.plan.name), state.run.id), findings = {} })
  state.bus:emit("run.summary", { lines = report.summary(doc) })
  return 1
end

-- The target is reached: one commit, the push, the pull request, verified.
function M.deliver(state)
  local plan, bus, platform, issue = state.plan, state.bus, state.platform, state.issue
  runstate.checkpoint(state, "delivering")
  local url, err = branch.deliver(state, runstate.write_report(state))
  if not url then
    return M.blocked(state, "the target was reached but delivering failed: " .. err, {},
      ("the target was reached (%s/%s) but delivering the work failed; the run's output says why"):format(state.last_total,
        plan.target_score))
  end
  local doc = runstate.finish(state, { status = "done", exit_code = 0, pr_url = url })
  bus:emit("loop.outcome", { status = "done", total = state.last_total, target = plan.target_score,
                             iterations = state.iteration, pr_url = url, platform = platform })
  bus:emit("run.summary", { lines = require("codeassist.report").summary(doc) })
  if platform and issue.number then
    require("codeassist.forge").comment(platform, issue.number, ("codeassist: done — quality gates %s/%s after %d "
      .. "iteration(s). %s"):format(state.last_total, plan.target_score, state.iteration, url), state.root)
  end
  return 0
end

function M.run(opts, root, cfg, plan, bus, holder)
  if opts.resume then   -- a run that ended is not taken up again (nor checked by the doctor)
    local run, saved = require("codeassist.runs").open(root, type(opts.resume) == "string" and opts.resume or nil)
    if not run then errors.usage("--resume: %s", saved.message) end
    local o = saved.outcome
    if o and (o.status == "done" or o.status == "blocked") then
      note(bus, ("run %s already ended: %s%s"):format(run.id, o.status,
        o.pr_url and (" — " .. o.pr_url) or o.reason and (" — " .. o.reason) or ""), o.status == "done" and nil or "warn")
      return o.status == "done" and 0 or 1
    end
  end
  local state = prepare(opts, root, cfg, plan, bus)
  if opts.resume then
    state = resume(state, opts)
  else
    state = start(state, opts)
    if not state then return 0 end   -- a dry run
  end
  if holder then holder.state = state end
  equip(state)
  preset_reload.watch(state, opts)
  runstate.checkpoint(state)

  if opts.supervised and not term.isatty("stdin") then
    note(bus, "--supervised: no terminal to ask on, so the run will not pause between iterations", "warn")
  end

  -- each iteration: implement -> gates -> scored -> (decide) -> next; a resumed run enters at
  -- the step its state names
  local i = state.iteration
  while i <= state.plan.max_iterations do
    state.iteration = i
    if state.step == "next" then
      state.step = "implement"
      preset_reload.check(state, i)   -- an edited preset takes effect from this iteration
      if i > state.plan.max_iterations then
        state.iteration = i - 1
        return M.blocked(state, ("score %s/%s after %d iteration%s: the edited preset allows at most %d"):format(
          state.last_total, state.plan.target_score, i - 1, i == 2 and "" or "s", state.plan.max_iterations),
          state.findings or {})
      end
    end
    if state.step == "implement" or state.step == "gates" then
      bus:emit("loop.iteration", { iteration = i, max = state.plan.max_iterations })
    end
    if state.step == "implement" and implement(state, i) == "budget" then return M.stopped_for_budget(state, opts) end
    if state.step == "gates" and judge(state, i) == "budget" then return M.stopped_for_budget(state, opts) end
    if state.step == "delivering" then return M.deliver(state) end
    local outcome = decide(state, i, opts)
    if outcome then return outcome end
    i = i + 1
    if i <= state.plan.max_iterations then
      state.iteration = i
      runstate.checkpoint(state, "next")
    end
  end
  local plan = state.plan
  return M.blocked(state, ("score %s/%s after %d iteration%s"):format(state.last_total, plan.target_score,
    plan.max_iterations, plan.max_iterations == 1 and "" or "s"), state.findings or {})
end

-- The plan as plain facts (the banner prints them; a trace records them).
function M.plan_facts(state)
  local plan, label = state.plan, preset.provider_label
  local facts = { preset = plan.name, extends = plan.extends, branch = state.branch, base = state.base_name or state.base:sub(1, 12),
    issue = { number = state.issue.number, title = state.issue.title }, target = plan.target_score,
    max_iterations = plan.max_iterations, platform = state.platform, gates = {},
    measured = state.measure_plan and { build = state.measure_plan.build and state.measure_plan.build.command,
                                        test = state.measure_plan.test and state.measure_plan.test.command } }
  for _, g in ipairs(state.groups) do
    for _, name in ipairs(g.names) do
      local gate, r = plan.gates[name], plan.routes[name]
      facts.gates[#facts.gates + 1] = { name = name, weight = gate.weight or 0, required = gate.required == true, group = g.group,
        measured = state.gates[name].kind == "measured", route = r and (label(r.provider) .. " " .. tostring(r.model)) or nil,
        source = state.gates[name].source }
    end
  end
  return facts
end

-- Text for the issue (which others read): the model servers' addresses taken out.
local function public(state, text)
  local providers = require "codeassist.providers"
  for _, which in ipairs{ "ollama", "anthropic" } do
    for _, url in ipairs(providers.base_urls(state.cfg, which)) do
      url = tostring(url):gsub("/+$", "")
      local at = text:find(url, 1, true)
      while at do
        text = text:sub(1, at - 1) .. "<" .. which .. ">" .. text:sub(at + #url)
        at = text:find(url, at + 1, true)
      end
    end
  end
  return require("codeassist.events").scrub(text)
end

-- public_reason: what the issue is told instead of reason (when reason quotes git or a server)
function M.blocked(state, reason, findings, public_reason)
  local doc = runstate.finish(state, { status = "blocked", exit_code = 1, reason = reason })
  state.bus:emit("loop.outcome", { status = "blocked", reason = reason, findings = findings })
  state.bus:emit("run.summary", { lines = require("codeassist.report").summary(doc) })
  if state.platform and state.issue and state.issue.number then
    local body = ("codeassist: BLOCKED — %s\n\n"):format(public(state, public_reason or reason))
    for _, f in ipairs(findings or {}) do
      -- a finding that quotes a command's output keeps its lines in a code block
      local text = public(state, f)
      local first, rest = text:match("^([^\n]*)\n(.*)$")
      if first and rest:find("%S") then
        local quoted = rest:gsub("%s+$", ""):gsub("```", "` ` `"):gsub("\n", "\n  ")
        body = body .. "- " .. first .. "\n\n  ```\n  " .. quoted .. "\n  ```\n"
      else
        body = body .. "- " .. text .. "\n"
      end
    end
    require("codeassist.forge").comment(state.platform, state.issue.number, body, state.root)
  end
  return 1
end

return M
