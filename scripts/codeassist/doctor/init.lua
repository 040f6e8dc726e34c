-- `codeassist doctor`: before anything is spent, can every gate's route be served?
--
-- Three steps: collect the facts (doctor/collect.lua: servers, models, credentials, all
-- concurrently), assess them per route (each provider's assess_route: reachable, installed,
-- tools, context, VRAM, credentials; a pool is usable when one server can serve it), and
-- render the report (doctor/render.lua) — as events, so a terminal shows each section as
-- soon as its checks finish, with live lines for slow ones, and --json prints one document.
-- With --probe, every route (fallbacks and warned ones too) gets a one-token request through
-- the router, and a tools gate must really call a tool. A degradable route that cannot be
-- used passes through its fallback. Exit 0 only when a run could start, as the loop's
-- preflight decides: every required gate served (a measured one runs anyway) and the target
-- within reach of the gates that are.
local task = require "codeassist.task"
local gates_mod = require "codeassist.gates"
local clock = require "codeassist.clock"
local term = require "codeassist.term"
local events = require "codeassist.events"
local preset = require "codeassist.preset"
local router = require "codeassist.router"
local collect = require "codeassist.doctor.collect"
local render = require "codeassist.doctor.render"
local anthropic = require "codeassist.providers.anthropic"
local ollama = require "codeassist.providers.ollama"

local M = {}

local ASSESS = { anthropic = anthropic.assess_route, ollama = ollama.assess_route }

local PROBE_TOOL = { name = "report_status", description = "Report that you are ready.",
  input_schema = { type = "object", properties = { ready = { type = "boolean" } }, required = { "ready" } } }

local function probe_key(route, tools)
  return router.key_of(route) .. "|" .. (tools and "tools" or "text")
end

local has_error = require("codeassist.providers").has_error

-- The gate as the checks see it: its settings plus its name.
local function gate_view(plan, name)
  return setmetatable({ name = name }, { __index = plan.gates[name] or {} })
end

-- Problems of one route for one gate, the probe's verdict included.
local function assess(route, gate, facts, cfg, opts)
  local list = ASSESS[route.provider](route, gate, facts, cfg, opts)
  local pr = facts.probes[probe_key(route, gate.tools)]
  if pr and not has_error(list) then
    if pr.err then
      local e = pr.err
      local remedy = "See the message; rerun with --probe after fixing"
      if e.kind:find("^timeout_") then
        remedy = "A cold model load can take minutes: rerun with a larger --probe-timeout; if it never answers, "
          .. "check the server (a proxy in between?)"
      elseif e.kind == "http" and (e.status == 401 or e.status == 403) then
        remedy = route.provider == "anthropic" and "The key was refused: check ANTHROPIC_API_KEY"
          or "The server refused the key: check providers.ollama.api_key (for the proxy in front of Ollama)"
      end
      list[#list + 1] = { check = "probe", severity = "error", message = "Probe failed: " .. e.message, remedy = remedy }
    elseif gate.tools and not pr.tool_called then
      list[#list + 1] = { check = "probe", severity = "error",
        message = ("%s answered but did not call the tool it was given"):format(route.model),
        remedy = "Route this tools gate to a model that calls tools reliably (e.g. qwen3-coder)" }
    end
  end
  return list
end

-- One-token requests along every route of every gate that the cheap checks did not rule out.
local function run_probes(cfg, plan, facts, opts, bus)
  local r = router.new{ cfg = cfg, plan = plan, bus = bus, retry = { attempts = 2, budget = opts.probe_timeout } }
  local jobs, order = {}, {}
  for _, name in ipairs(render.gate_order(plan)) do
    local gate = gate_view(plan, name)
    for route in preset.route_chain(plan.routes[name]) do
      local key = probe_key(route, gate.tools)
      if not jobs[key] and not has_error(ASSESS[route.provider](route, gate, facts, cfg, opts)) then
        local tools = gate.tools
        order[#order + 1] = key
        jobs[key] = task.spawn(function()
          local req = { max_tokens = tools and 64 or 1, messages = { { role = "user", content = tools
            and "Call the report_status tool with ready set to true. Do not answer in text."
            or "Reply with the single word: ok" } } }
          if tools then req.tools = { PROBE_TOOL } end
          local progress = bus:progress(("probing %s%s"):format(router.label(route), tools and " (tools)" or ""))
          local t0 = clock.monotonic()
          local msg, err = r:call_route(route, req, { gate = name, timeout = { connect = opts.timeout,
            first_byte = opts.probe_timeout, idle = opts.probe_timeout, total = opts.probe_timeout } })
          local result = { route = router.label(route), provider = route.provider, model = route.model,
                           tools = tools or false, seconds = clock.monotonic() - t0 }
          if msg then
            result.ok = true
            for _, b in ipairs(msg.content) do if b.type == "tool_use" then result.tool_called = true end end
            if tools and not result.tool_called then result.ok = false end
          else
            result.ok, result.err, result.error = false, err, err.message
          end
          progress:done()
          facts.probes[key] = result
          bus:emit("doctor.probe", { probe = result })
        end)
      end
    end
  end
  if #order > 0 then bus:emit("doctor.probes", { count = #order }) end
  local list, tasks = {}, {}
  for i, key in ipairs(order) do tasks[i] = jobs[key] end
  task.join_all(tasks)
  for _, key in ipairs(order) do list[#list + 1] = facts.probes[key] end
  return list
end

-- Optional gates that cannot be served score 0: the best total a run can reach, and those
-- gates (weight 0 ones cost nothing). A target above it stops a run before it starts.
local function best_total(entries)
  local weights, lost, unserved = 0, 0, {}
  for _, e in ipairs(entries) do
    local weight = tonumber(e.weight) or 0
    weights = weights + weight
    if e.effect == "scores_zero" and weight > 0 then
      lost = lost + weight
      unserved[#unserved + 1] = e.gate
    end
  end
  return weights > 0 and math.floor((weights - lost) / weights * 1000 + 0.5) / 10 or 100, unserved
end

local function target_out_of_reach(entries, plan)
  local best, unserved = best_total(entries)
  if best >= (tonumber(plan.target_score) or 0) then return nil end
  return { check = "target", severity = "error",
    message = ("the target %s cannot be reached: %s cannot be served and will score 0, so the best total is %s")
      :format(plan.target_score, table.concat(unserved, ", "), best),
    remedy = "Fix their routes (above), or lower target_score (or give --target-score)" }
end

-- The report for one gate: its route's problems; when it cannot be used and its floor
-- allows, the first usable route down its fallback chain.
local function gate_entry(name, plan, facts, cfg, opts, gates)
  local gate = gate_view(plan, name)
  local route = plan.routes[name]
  local required = gate.required == true
  local entry = { gate = name, required = required, provider = render.provider_label(route.provider),
                  model = route.model, floor = route.floor, origin = route.origin,
                  group = gate.parallel_group, weight = gate.weight,
                  -- runs its command whatever its route (the model only explains a failure)
                  measured = gates[name] ~= nil and gates[name].kind == "measured" }
  entry.problems = assess(route, gate, facts, cfg, opts)
  entry.usable = not has_error(entry.problems)
  local pr = facts.probes[probe_key(route, gate.tools)]
  if pr then entry.probe = { ok = pr.ok, seconds = pr.seconds, tool_called = pr.tool_called, error = pr.error } end
  if not entry.usable then
    local first = true
    for fb in preset.route_chain(route) do
      if first then first = false else
        local allowed, why = router.may_fall_back(route, fb)
        if not allowed then
          entry.fallback_refused = why
          break
        end
        local problems = assess(fb, gate, facts, cfg, opts)
        entry.fallback = { provider = render.provider_label(fb.provider), model = fb.model, problems = problems,
                           usable = not has_error(problems) }
        if entry.fallback.usable then break end
      end
    end
    entry.via_fallback = entry.fallback and entry.fallback.usable or false
  end
  entry.status = entry.usable and (#entry.problems == 0 and "ok" or "warn")
    or entry.via_fallback and "fallback" or "fail"
  -- what it means for a run, read by the report, its text and the run's preflight alike:
  -- "stops" it, or the gate gets round: "fallback", "measured" (runs anyway), "scores_zero"
  if entry.status == "fallback" then entry.effect = "fallback"
  elseif entry.status == "fail" then
    entry.effect = entry.measured and "measured" or required and "stops" or "scores_zero"
  end
  return entry, required
end

-- With a route(gate, ctx) hook, the routes its first call would choose (ctx.phase "doctor",
-- iteration 0) are the ones to check.
local function hooked_routes(cfg, plan)
  if not plan.route then return end
  local r = router.new{ cfg = cfg, plan = plan }
  for name in pairs(plan.routes) do
    plan.routes[name] = r:route_for(name, preset.context(plan, { phase = "doctor" }))
  end
end

-- Runs every check; returns the report (what --json prints). opts: {timeout (each server
-- check, 5), probe, probe_timeout (each probe's total deadline, its retries included: 120),
-- vram_gb, vram_origin}; bus gets the sections as they finish.
function M.check(cfg, plan, opts, bus)
  opts = opts or {}
  bus = bus or events.new()
  opts.timeout = opts.timeout or 5
  opts.probe_timeout = opts.probe_timeout or 120
  if not opts.vram_gb and cfg.providers.ollama.vram_gb then
    opts.vram_gb, opts.vram_origin = cfg.providers.ollama.vram_gb, "providers.ollama.vram_gb"
  end
  hooked_routes(cfg, plan)
  local report = render.new_report(cfg, plan, opts)
  bus:emit("doctor.header", { report = report })

  -- whether the agent's commands can be sandboxed, found out while the servers are asked
  local sandbox_check = task.spawn(function()
    local settings = cfg.agent or {}
    local section = { mode = settings.sandbox or "auto", network = settings.network == true }
    if section.mode ~= "off" then
      local p = require("codeassist.agent.sandbox").probe()
      section.available, section.version, section.reason = p.available, p.version, p.reason
    end
    section.problems = {}
    if section.mode == "off" then
      section.problems[1] = { check = "sandbox", severity = "warning",
        message = "agent.sandbox is off: the agent's commands run without bubblewrap",
        remedy = "Set agent.sandbox: auto (or required) in .claude/autonomous.yml" }
    elseif not section.available then
      section.problems[1] = { check = "sandbox", severity = section.mode == "required" and "error" or "warning",
        message = section.mode == "required" and (section.reason .. "; agent.sandbox is required, so the agent will not run")
          or (section.reason .. "; the agent's commands would run UNSANDBOXED (only the guardrails apply)"),
        remedy = "Install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces "
          .. "(sysctl kernel.unprivileged_userns_clone=1), or run as root in a container that permits them" }
    end
    report.sandbox = section
    bus:emit("doctor.sandbox", { sandbox = section })
  end)

  local facts = collect.run(cfg, plan, { timeout = opts.timeout, bus = bus,
    on_claude = function(claude)
      report.claude = { base_url = require("codeassist.http").redact(claude.base_url), origin = claude.origin,
                        key_set = claude.key_set, token_set = claude.token_set }
      bus:emit("doctor.claude", { claude = report.claude })
    end,
    on_server = function(s, f)
      local section = render.server_section(s, f, cfg, plan, ollama.assess_server(s, cfg))
      report.servers[#report.servers + 1] = section
      bus:emit("doctor.server", { server = section })
    end })
  render.order_servers(report, facts)
  task.join_all{ sandbox_check }
  for _, pr in ipairs(report.sandbox.problems) do
    if pr.severity == "error" then report.ok = false end
    report.warnings[#report.warnings + 1] = pr
  end

  if opts.probe then report.probes = run_probes(cfg, plan, facts, opts, bus) end
  report.probed = opts.probe and true or false

  local gates = opts.gates or gates_mod.load(nil)   -- {name = gate}: the loaded gates (built-in only when not given)
  for _, name in ipairs(render.gate_order(plan)) do
    local entry, required = gate_entry(name, plan, facts, cfg, opts, gates)
    if entry.effect == "stops" then report.ok = false end
    report.gates[#report.gates + 1] = entry
  end
  local unreachable = target_out_of_reach(report.gates, plan)
  if unreachable then
    report.ok = false
    report.warnings[#report.warnings + 1] = unreachable
  end
  for _, w in ipairs(ollama.assess_groups(report, facts, plan, opts)) do report.warnings[#report.warnings + 1] = w end
  bus:emit("doctor.report", { report = report })
  return report, facts
end

-- opts: {preset = path or name | nil, preset_value, config = path, json, probe, timeout,
--        probe_timeout, flags = {vram_gb, routes}}; returns the exit code.
function M.main(opts)
  local config = require "codeassist.config"
  local cfg = config.load{ path = opts.config }
  local root = config.project_root() or require("codeassist.fs").cwd()
  events.secret(cfg.providers.anthropic.api_key)
  events.secret(cfg.providers.anthropic.auth_token)
  events.secret(cfg.providers.ollama.api_key)
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local p
  if opts.preset_value ~= nil then
    p = preset.from_value(opts.preset_value, cfg, opts.preset or "the preset")
  else
    p = preset.load(opts.preset, cfg)
  end
  local flags = opts.flags or {}
  local plan = preset.plan(p, cfg, flags)
  local gates = gates_mod.load(root)   -- the project's own gates too, as a run loads them
  preset.add_project_gates(plan, gates, cfg)
  local bus = events.new()
  if not opts.json then
    local tty = term.isatty("stdout")
    bus:add(events.text(io.stdout, { formats = render.formats, color = term.color("stdout"), live = tty }))
  end
  -- live lines are erased however the check ends
  local ok, report = pcall(M.check, cfg, plan, { timeout = opts.timeout, probe = opts.probe,
    probe_timeout = opts.probe_timeout, vram_gb = flags.vram_gb, vram_origin = flags.vram_gb and "--vram" or nil,
    gates = gates }, bus)
  bus:close()
  if not ok then error(report, 0) end
  if opts.json then io.stdout:write(render.json(report), "\n") end
  return report.ok and 0 or 1
end

return M
