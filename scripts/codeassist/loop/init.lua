-- The development loop: `codeassist run PRESET --issue N`.
--
--   doctor (every required route usable, or exit 1) -> the issue (gh / glab / a Markdown file)
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

-- The issue: from the platform, or a Markdown file.
local function load_issue(opts, root, platform)
  local forge = require "codeassist.forge"
  if opts.issue_file then
    local issue, err = forge.issue_from_file(opts.issue_file)
    if not issue then errors.usage("--issue-file %s: %s", opts.issue_file, err.message) end
    return issue
  end
  local ok, err = forge.check_cli(platform)
  if not ok then errors.goal("%s", err.message) end
  local issue
  issue, err = forge.fetch_issue(platform, opts.issue, root)
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
--        supervised, flags = {target_score, max_iterations}}; returns the exit code.
function M.main(opts)
  local fs = require "codeassist.fs"
  local root = opts.repo or fs.cwd()
  local st = fs.stat(root)
  if not st or st.type ~= "dir" then
    errors.usage("--repo %s: %s", root, st and "not a folder" or "no such folder")
  end
  local cfgpath = opts.config or (root .. "/" .. config.DEFAULT_PATH)
  local cfg = config.load{ path = cfgpath, missing_ok = not opts.config }
  cfg.source.path = opts.config or config.DEFAULT_PATH
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local p = opts.preset_value ~= nil and preset.from_value(opts.preset_value, cfg, opts.preset) or preset.load(opts.preset, cfg)
  local plan = preset.plan(p, cfg, opts.flags or {})

  local bus = events.new()
  local formats = {}
  for k, v in pairs(require("codeassist.doctor.render").formats) do formats[k] = v end
  for k, v in pairs(render.formats) do formats[k] = v end
  local live = term.isatty("stdout")
  if not live then for k, v in pairs(render.log_formats) do formats[k] = v end end
  bus:add(events.text(io.stdout, { formats = formats, color = term.color("stdout"), live = live }))
  local trace
  if opts.trace then
    local err
    trace, err = io.open(opts.trace, "w")
    if not trace then errors.usage("--trace: cannot write %s", tostring(err)) end
    for _, s in ipairs{ cfg.providers.anthropic.api_key, cfg.providers.anthropic.auth_token, cfg.providers.ollama.api_key } do
      events.secret(s)
    end
    bus:add(events.json_lines(trace))
  end
  local started = clock.monotonic()
  local holder = {}
  local ok, code = pcall(M.run, opts, root, cfg, plan, bus, holder)
  bus:abandon()
  if not ok and holder.state and holder.state.on_branch then
    -- stopped part-way: what the agent wrote so far is kept in a commit on the branch, so the
    -- worktree is clean and the same command goes on from there
    local st = holder.state
    local why = type(code) == "table" and code.code == 130 and "interrupted" or "stopped"
    pcall(worktree.stop_commit, st, why)
    local count = (st.repo:output{ "rev-list", "--count", st.base .. "..HEAD" } or "?"):gsub("%s+$", "")
    note(bus, ("%s in iteration %d: the work so far is on %s (%s commit%s since %s); run the same command again "
      .. "to go on from there"):format(why, st.iteration, st.branch, count, count == "1" and "" or "s", st.base_name), "warn")
  end
  bus:emit("run.finished", { ok = ok, code = ok and code or (type(code) == "table" and code.code) or nil,
    error = not ok and tostring(type(code) == "table" and code.message or code) or nil,
    seconds = clock.monotonic() - started, peak_rss_kb = M.peak_rss_kb() })
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

function M.run(opts, root, cfg, plan, bus, holder)
  local git = require "codeassist.git"
  local forge = require "codeassist.forge"
  local repo = git.open(root, cfg)
  if not repo:output{ "rev-parse", "--git-dir" } then errors.usage("%s is not a git repository (give --repo DIR)", root) end

  local gates = gates_mod.load(root)
  for name, g in pairs(gates) do
    if not plan.gates[name] then
      -- a project's own gate: its defaults, routed like the config's default
      plan.gates[name] = { weight = g.weight or 0, required = g.required or false, parallel_group = g.parallel_group or 3,
                           timeout_ms = (g.timeout or 300) * 1000, tools = g.tools, context = g.context }
      plan.routes[name] = preset.resolve_route(cfg, name, cfg.providers.default, "project gate " .. g.source, false)
    end
  end

  local platform = not opts.issue_file and forge.detect(root) or nil
  local state = {
    cfg = cfg, plan = plan, gates = gates, bus = bus, root = root, repo = repo, platform = platform,
    history = {}, changed_files = {}, iteration = 0, vram_gb = (opts.flags or {}).vram_gb or cfg.providers.ollama.vram_gb,
    model_sizes = {}, notes = {},
  }
  state.groups = loop_gates.groups(plan, gates)
  state.measure_plan = require("codeassist.gates.measure").detect(root,
    { build = (plan.gates.build or {}).command, test = (plan.gates.test or {}).command })

  -- the doctor first: nothing is spent on a run that cannot be served
  local doctor = require "codeassist.doctor"
  local dbus = events.new()
  if opts.dry_run then dbus = bus end
  local report, facts = doctor.check(cfg, plan, { timeout = 5 }, dbus)
  for _, s in ipairs(facts.ollama_list or {}) do
    for _, m in ipairs(s.models or {}) do state.model_sizes[m.name] = m.size end
  end
  for name, m in pairs(facts.models or {}) do
    local requested = name:match("|(.*)$")
    if m.name and m.size then state.model_sizes[requested] = m.size end
  end
  require("codeassist.loop.preflight").check(state, report, opts, bus)

  -- the run commits what the agent changes: the user's own uncommitted edits must not go with it
  local modified, untracked = worktree.worktree_changes(repo)
  if #modified > 0 then
    errors.usage("%s has uncommitted changes to tracked files (%s): commit or stash them (git stash), then run "
      .. "again — the run commits what the agent changes and must not take your edits with it", root, worktree.listing(modified))
  end
  state.untracked_at_start = untracked

  local issue = load_issue(opts, root, platform)   -- read-only, so a dry run checks it too
  state.issue = issue
  state.slug = forge.slug(issue.title or "work")
  state.branch = ("feature/%s-%s"):format(issue.number or "local", state.slug)
  state.base, state.base_name = branch.resolve_base(state)
  bus:emit("loop.banner", M.plan_facts(state))
  for _, text in ipairs(state.notes) do note(bus, text, "warn") end
  if #untracked > 0 then
    note(bus, ("%d untracked file%s (%s) stay%s out of the run's commits"):format(#untracked, #untracked == 1 and "" or "s",
      worktree.listing(untracked), #untracked == 1 and "s" or ""), "info")
  end
  if opts.dry_run then
    note(bus, "dry run: nothing was changed and no model was called")
    return 0
  end

  -- the feature branch (an existing one is continued)
  local exists = repo:run{ "rev-parse", "--verify", "--quiet", "refs/heads/" .. state.branch }
  local r = exists and exists.code == 0 and repo:run{ "checkout", "-q", state.branch }
    or repo:run{ "checkout", "-q", "-b", state.branch, state.start }
  if not r or r.code ~= 0 then errors.goal("cannot check out %s: %s", state.branch, r and r.stderr or "git failed") end
  state.on_branch = true
  if holder then holder.state = state end

  state.sandbox = assert(require("codeassist.agent.sandbox").new{ root = repo.root and root, mode = cfg.agent.sandbox,
                                                                   network = cfg.agent.network })
  state.router = router_mod.new{ cfg = cfg, plan = plan, bus = bus }
  state.measure = measured.measurer(state)
  -- the tests as they stand before the agent changes anything: a later run with fewer tests
  -- is not a pass (see measurer)
  if state.measure_plan and state.measure_plan.test then measured.baseline(state) end
  state.ctx_for = function(gate) return ctx_for(state, gate) end

  if opts.supervised and not term.isatty("stdin") then
    note(bus, "--supervised: no terminal to ask on, so the run will not pause between iterations", "warn")
  end

  local findings = {}
  local implement_route = plan.routes.implement
  for i = 1, plan.max_iterations do
    state.iteration = i
    bus:emit("loop.iteration", { iteration = i, max = plan.max_iterations })
    local agent = require "codeassist.agent"
    state.protected_snapshot = worktree.snapshot(root)
    local progress = bus:progress("implementing")
    local result = agent.run{ cfg = cfg, router = state.router, gate = "implement", ctx = ctx_for(state, "implement"),
      workspace = root, phase = "implement", max_turns = cfg.agent.max_turns,
      system = prompts.IMPLEMENT_SYSTEM, messages = { { role = "user", content = prompts.implement(issue, i, findings) } },
      context_limit = implement_route.provider == "ollama" and (plan.gates.implement.context or 65536) or nil,
      on_event = function(ev) bus:emit(ev.type, ev) end }
    progress:done()
    local label = result.message and result.message.route and router_mod.label(result.message.route) or router_mod.label(implement_route)
    bus:emit("loop.implement", { result = result, route = label, iteration = i })
    if result.stop_reason == "sandbox" then errors.goal("the agent cannot run: %s", result.error) end
    if result.stop_reason == "provider" and implement_route.floor == "critical" and result.failure
       and errors.UNREACHABLE[result.failure.kind] then
      errors.goal("the agent's route is unavailable: %s", result.error)
    end
    worktree.check_after_agent(state)
    worktree.commit_iteration(state, i)
    state.changed_files = worktree.changed_files(state)
    state.change = worktree.change_of(state)

    state.more_iterations = i < plan.max_iterations
    local results = loop_gates.run(state)
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
    state.last_total, state.last_results = total.total, results
    bus:emit("loop.gates", { results = results, total = total, target = plan.target_score, iteration = i })
    findings = loop_gates.findings_for_next(results)
    for _, res in ipairs(results) do
      if res.unavailable then
        return M.blocked(state, ("a critical route is unavailable: the %s gate could not be served by %s — "
          .. "check the server and the model (`codeassist doctor %s`), then run again")
          :format(res.gate, res.unavailable, tostring(opts.preset or plan.name)), findings)
      end
    end

    local reached = total.total >= plan.target_score and #total.failed_required == 0
    if plan.on_iteration then
      local go_on, why = errors.call_user("the on_iteration(ctx) hook of " .. tostring(plan.source), plan.on_iteration,
        ctx_for(state, "iteration"))
      if go_on == false and not reached then
        return M.blocked(state, "stopped by the preset" .. (why and (": " .. tostring(why)) or ""), findings)
      end
    end
    if reached then
      local url, err = branch.deliver(state)
      if not url then
        return M.blocked(state, "the target was reached but delivering failed: " .. err, {},
          ("the target was reached (%s/%s) but delivering the work failed; the run's output says why"):format(total.total,
            plan.target_score))
      end
      bus:emit("loop.outcome", { status = "done", total = total.total, target = plan.target_score, iterations = i, pr_url = url,
                                 platform = platform })
      if platform and issue.number then
        forge.comment(platform, issue.number, ("codeassist: done — quality gates %s/%s after %d iteration(s). %s")
          :format(total.total, plan.target_score, i, url), root)
      end
      return 0
    end
    -- the same score and the same findings three times: more iterations will not help
    local parts = { tostring(total.total) }
    for _, res in ipairs(results) do
      parts[#parts + 1] = ("%s=%s/%s"):format(res.gate, tostring(res.score), tostring(res.status))
      for _, f in ipairs(res.findings or {}) do parts[#parts + 1] = tostring(f.severity) .. ":" .. tostring(f.title) end
    end
    local signature = table.concat(parts, "\0")   -- no measured output: it carries timings
    state.same = signature == state.last_signature and (state.same or 1) + 1 or 1
    state.last_signature = signature
    if state.same >= STALL_AFTER and i < plan.max_iterations then
      return M.blocked(state, ("no progress: the same score (%s/%s) and the same findings in the last %d iterations")
        :format(total.total, plan.target_score, STALL_AFTER), findings)
    end
    if i < plan.max_iterations then
      if opts.supervised then
        local answer = supervised_pause(state)
        if answer == "n" then return M.blocked(state, "stopped at the supervisor's request", findings) end
        if answer ~= "s" and (plan.iteration_delay or 0) > 0 then task.sleep(plan.iteration_delay) end
      elseif (plan.iteration_delay or 0) > 0 then
        task.sleep(plan.iteration_delay)
      end
    end
  end
  return M.blocked(state, ("score %s/%s after %d iteration%s"):format(state.last_total, plan.target_score,
    plan.max_iterations, plan.max_iterations == 1 and "" or "s"), findings)
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
  state.bus:emit("loop.outcome", { status = "blocked", reason = reason, findings = findings })
  if state.platform and state.issue and state.issue.number then
    local body = ("codeassist: BLOCKED — %s\n\n"):format(public(state, public_reason or reason))
    for _, f in ipairs(findings or {}) do body = body .. "- " .. public(state, f) .. "\n" end
    require("codeassist.forge").comment(state.platform, state.issue.number, body, state.root)
  end
  return 1
end

return M
