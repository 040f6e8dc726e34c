-- The doctor's report: its shape (what --json prints) and how each section reads as text.
-- Text comes from formats, one per event (see codeassist.events): the header at once, a
-- section per server as its checks finish, each probe's result, then the gates, problems and
-- verdict. The seed's lines are kept: "✓ Server reachable", "Matched: ...", "Capability: ...".
local json = require "codeassist.json"
local tty = require "codeassist.tty"
local events = require "codeassist.events"
local shown = require("codeassist.http").redact   -- URLs shown never carry credentials

local printable = tty.printable

local M = {}

local GB = require("codeassist.catalogue").GB

M.provider_label = require("codeassist.preset").provider_label

-- Gates in the order they run: parallel group, then name; the agent first.
function M.gate_order(plan)
  local names = {}
  for name in pairs(plan.routes) do names[#names + 1] = name end
  table.sort(names, function(a, b)
    local ga, gb = (plan.gates[a] or {}).parallel_group or 0, (plan.gates[b] or {}).parallel_group or 0
    if ga ~= gb then return ga < gb end
    return a < b
  end)
  return names
end

function M.new_report(cfg, plan, opts)
  local targets = {}
  for _, k in ipairs{ "target_score", "max_iterations", "iteration_delay" } do
    targets[k] = { value = plan[k], origin = plan.origins[k] }
  end
  return {
    preset = printable(plan.name), preset_source = printable(plan.source), extends = printable(plan.extends),
    config = cfg.source and cfg.source.path, found_config = cfg.source and cfg.source.found or false,
    targets = targets, notes = plan.notes,
    vram_gb = opts.vram_gb, vram_origin = opts.vram_origin,
    gates = {}, servers = {}, probes = {}, warnings = {}, ok = true,
  }
end

-- What a server section shows (and --json lists): facts plus the server's own problems.
function M.server_section(s, facts, cfg, plan, problems)
  local section = {
    url = shown(s.url), origin = s.origin, reachable = not s.error and not s.v1 or false,
    latency_ms = s.latency and math.floor(s.latency * 1000 + 0.5), version = printable(s.version),
    models = {}, problems = problems,
  }
  for _, m in ipairs(s.models) do
    section.models[#section.models + 1] = { name = printable(m.name), parameter_size = printable(m.parameter_size),
                                            size = m.size, capability = m.capability, tier = m.tier }
  end
  local default = cfg.providers.ollama.model
  section.configured_model = default
  if default then
    local m = facts.models[s.url .. "|" .. default]
    if m then
      section.configured = { found = m.name ~= nil, name = printable(m.name), parameter_size = printable(m.parameter_size),
                             capability = m.capability, tier = m.tier }
    end
  else
    -- only worth saying when some Ollama route has no model of its own
    for _, r in pairs(plan.routes) do
      for route in require("codeassist.preset").route_chain(r) do
        if route.provider == "ollama" and not route.model then section.needs_default_model = true end
      end
    end
  end
  return section
end

function M.order_servers(report, facts)
  local index = {}
  for i, s in ipairs(facts.ollama_list) do index[shown(s.url)] = i end
  table.sort(report.servers, function(a, b) return (index[a.url] or 0) < (index[b.url] or 0) end)
end

-- ===== text =====

-- A size the server did not give (or gave wrong: a warning says so) is "?".
local function fmt_gb(bytes) return bytes and ("%.1fGB"):format(bytes / GB) or "?GB" end

-- "preset presets/ollama_hybrid.lua" -> "ollama_hybrid.lua"; ".claude/autonomous.yml:12" -> "autonomous.yml:12"
local function short_origin(origin)
  origin = tostring(origin or "")
  local file = origin:match("^preset ([^%s]+)")
  if file then return (file:match("[^/]+$") or file) .. (origin:find("default_route", 1, true) and " (default)" or "") end
  if origin:match("^flag") then return origin:match("(%-%-[%w-]+)") or origin end
  if origin:match("^hook") then return "route() hook" end
  if origin:match("^built%-in default") then return "default" end
  local gate_file = origin:match("^project gate .-([^/]+)$")
  if gate_file then return "project gate " .. gate_file end
  return origin:match("([^/]+:%d+)") or origin
end
M.short_origin = short_origin

-- What the gate table says for each kind of check that failed or warned.
local FAILED = { installed = "not installed", reachable = "unreachable", tools = "no tool calling",
                 context = "context too small", vram = "does not fit in VRAM", credentials = "no API key",
                 probe = "probe failed", version = "server too old", base_url = "base_url ends in /v1",
                 model = "no model set", show = "no model details", models = "no model list",
                 window = "window too small" }
local WARNED = { vram = "partly on the CPU", model_answer = "odd model details" }

local function header(ev, p)
  local r = ev.report
  local lines = {}
  lines[#lines + 1] = p.bold("codeassist doctor") .. " — preset " .. tostring(r.preset)
    .. (r.extends and (" (extends " .. r.extends .. ")") or "") .. ", config " .. tostring(r.config)
    .. (r.found_config and "" or " (not found: defaults; `codeassist init` writes one)")
  local t = r.targets
  lines[#lines + 1] = ("Target: score %s (%s), at most %s iterations (%s), %ss apart (%s)"):format(
    t.target_score.value, short_origin(t.target_score.origin), t.max_iterations.value,
    short_origin(t.max_iterations.origin), t.iteration_delay.value, short_origin(t.iteration_delay.origin))
  return table.concat(lines, "\n")
end

local function claude_section(ev, p)
  local c = ev.claude
  local lines = { "", "Claude API (" .. shown(c.base_url) .. "):" }
  if c.key_set then lines[#lines + 1] = "  " .. p.ok("ANTHROPIC_API_KEY is set")
  elseif c.token_set then lines[#lines + 1] = "  " .. p.ok("ANTHROPIC_AUTH_TOKEN is set")
  else lines[#lines + 1] = "  " .. p.bad("ANTHROPIC_API_KEY not set") end
  return table.concat(lines, "\n")
end

local function server_text(ev, p)
  local s = ev.server
  local lines = { "", "Ollama (" .. s.url .. "):" }
  local function say(x) lines[#lines + 1] = x end
  if not s.reachable then
    for _, pr in ipairs(s.problems) do say("  " .. p.bad(printable(pr.message))) end
    return table.concat(lines, "\n")
  end
  say("  " .. p.ok("Server reachable"))
  say("  " .. p.ok(("Response time: %dms"):format(s.latency_ms or 0)))
  say("  " .. p.ok("Server version: " .. tostring(s.version)))
  say("  " .. (#s.models > 0 and p.ok or p.warn)("Available models: " .. #s.models))
  for _, m in ipairs(s.models) do
    say(("    - %s (%s, %s)  %s, %s"):format(m.name, m.parameter_size or "?", fmt_gb(m.size), m.capability, m.tier))
  end
  for _, pr in ipairs(s.problems) do
    if pr.check ~= "reachable" then say("  " .. (pr.severity == "warning" and p.warn or p.bad)(printable(pr.message))) end
  end
  local c = s.configured
  if s.configured_model and c then
    if c.found then
      say("  " .. p.ok("Configured model: " .. s.configured_model))
      say(("    Matched: %s (%s)"):format(c.name, c.parameter_size or "?"))
      say(("    Capability: %s | Tier: %s"):format(c.capability, c.tier))
    else
      say("  " .. p.bad(('Configured model "%s" NOT FOUND'):format(s.configured_model)))
    end
  elseif s.needs_default_model then
    say("  " .. p.warn("No model configured. Add 'model: <name>' under providers.ollama."))
  end
  return table.concat(lines, "\n")
end

local function sandbox_text(ev, p)
  local s = ev.sandbox
  local lines = { "", "Agent sandbox (agent.sandbox: " .. s.mode .. "):" }
  if s.mode == "off" then
    lines[#lines + 1] = "  " .. p.warn("off: the agent's commands run without bubblewrap")
  elseif s.available then
    lines[#lines + 1] = "  " .. p.ok(("bubblewrap %s: commands run with the root read-only, the repository writable, %s")
      :format(tostring(s.version), s.network and "network allowed (agent.network)" or "no network"))
  else
    lines[#lines + 1] = "  " .. (s.mode == "required" and p.bad or p.warn)(printable(s.reason))
  end
  return table.concat(lines, "\n")
end

local function probes_header(ev)
  return ("\nProbes (%d request%s, one per route):"):format(ev.count, ev.count == 1 and "" or "s")
end

local function probe_text(ev, p)
  local r = ev.probe
  local what = r.route .. (r.tools and " (tools)" or "")
  if r.ok then
    return "  " .. p.ok(("%s: %s in %.1fs"):format(what, r.tools and "called the tool" or "answered", r.seconds))
  end
  if r.error then return "  " .. p.bad(("%s: %s"):format(what, printable(r.error))) end
  return "  " .. p.bad(("%s: answered but did not call the tool"):format(what))
end

local function status_text(e)
  if e.status == "ok" then return "✓ ok" end
  if e.status == "warn" then
    local first = e.problems[1]
    return "⚠ " .. (WARNED[first.check] or FAILED[first.check] or first.check)
  end
  if e.status == "fallback" then return "⚠ via fallback " .. e.fallback.provider .. " " .. (e.fallback.model or "(no model)") end
  local first
  for _, pr in ipairs(e.problems) do if pr.severity == "error" then first = first or pr end end
  first = first or e.problems[1]
  -- the run goes on without these: an optional gate scores 0, a measured one runs unexplained
  if e.effect == "measured" then return "⚠ " .. (FAILED[first.check] or first.check) .. " (measured anyway)" end
  if e.effect == "scores_zero" then return "⚠ " .. (FAILED[first.check] or first.check) .. " (scores 0)" end
  return "✗ " .. (FAILED[first.check] or first.check)
end

local function report_text(ev, p)
  local r = ev.report
  local lines = { "", "Gates:" }
  local function say(x) lines[#lines + 1] = x end
  local rows = { { "GATE", "REQUIRED", "ROUTE", "FROM", "STATUS" } }
  for _, e in ipairs(r.gates) do
    rows[#rows + 1] = { e.gate, e.required and "yes" or "no", e.provider .. " " .. (e.model or "(no model)"),
                        short_origin(e.origin), status_text(e) }
  end
  for _, line in ipairs(tty.columns(rows, "  ")) do say(line) end

  if #r.notes > 0 then
    say("")
    say("Notes:")
    for _, n in ipairs(r.notes) do say("  - " .. n.message) end
  end

  -- Problems, each said once with the gates it concerns. ✗ marks what stops a run (a required
  -- gate with no usable route, or a fault of no gate); an error every gate it concerns gets
  -- round (by its fallback, or by being optional) is ⚠ and says how, so the list never
  -- contradicts the verdict below it.
  local problems, seen = {}, {}
  local function add(pr, gate, effect)
    local key = pr.severity .. "|" .. pr.message .. "|" .. tostring(pr.remedy)
    local item = seen[key]
    if not item then
      item = { pr = pr, gates = {}, groups = {}, group_of = {} }   -- the gates it concerns, by effect
      seen[key] = item
      problems[#problems + 1] = item
    end
    effect = effect or "stops"
    local group = item.group_of[effect]
    if not group then
      group = { effect = effect, gates = {} }
      item.group_of[effect] = group
      item.groups[#item.groups + 1] = group
    end
    if gate then
      item.gates[#item.gates + 1] = gate
      group.gates[#group.gates + 1] = gate
    end
  end
  for _, e in ipairs(r.gates) do
    local effect = e.effect or "fallback_only"   -- a usable gate's problems can only be its fallback's
    for _, pr in ipairs(e.problems) do add(pr, e.gate, effect) end
    if e.fallback then
      for _, pr in ipairs(e.fallback.problems) do
        add(pr, e.gate .. " (fallback)", effect == "fallback" and "fallback_only" or effect)
      end
    end
    if e.fallback_refused and not e.usable then
      add({ severity = "warning", message = e.fallback_refused, remedy = "Make the route degradable to let it fall back" },
          e.gate, effect)
    end
  end
  for _, w in ipairs(r.warnings) do add(w, nil) end
  local GOT_ROUND = { fallback = "the fallback runs instead", scores_zero = "optional: it will score 0",
                      measured = "measured: it runs, but a failure will not be explained",
                      fallback_only = "only the fallback is affected" }
  if #problems > 0 then
    say("")
    say("Problems:")
    for _, item in ipairs(problems) do
      local label = #item.gates > 0 and (table.concat(item.gates, ", ") .. ": ") or ""
      local text, mark = label .. printable(item.pr.message), p.warn
      if item.pr.severity == "error" then
        if item.group_of.stops or #item.gates == 0 then
          mark = p.bad
        else
          -- one way round for all, or each gate's: "(build — measured: …; ux — optional: …)"
          local how = {}
          for _, group in ipairs(item.groups) do
            how[#how + 1] = #item.groups == 1 and GOT_ROUND[group.effect]
              or (table.concat(group.gates, ", ") .. " — " .. GOT_ROUND[group.effect])
          end
          text = text .. " (" .. table.concat(how, "; ") .. ")"
        end
      end
      say("  " .. mark(text))
      if item.pr.remedy then say("      → " .. printable(item.pr.remedy)) end
    end
  end
  say("")
  if r.ok then
    local measured_unserved = false
    for _, e in ipairs(r.gates) do measured_unserved = measured_unserved or (e.effect == "measured" and e.required) end
    say(p.ok(#problems == 0 and "All providers healthy: every route is usable."
      or measured_unserved and "A run can start: every required gate is served, or measured (it runs its command anyway)."
      or "Every required route is usable."))
  else
    local n = 0
    for _, e in ipairs(r.gates) do if e.effect == "stops" then n = n + 1 end end
    if n > 0 then
      say(p.bad(("Some providers are unhealthy: %d required route%s not usable."):format(n, n == 1 and " is" or "s are")))
    else
      say(p.bad("A run with this preset would stop before it starts: see the problems above."))
    end
  end
  return table.concat(lines, "\n")
end

M.formats = {
  ["doctor.header"] = header,
  ["doctor.claude"] = claude_section,
  ["doctor.sandbox"] = sandbox_text,
  ["doctor.server"] = server_text,
  ["doctor.probes"] = probes_header,
  ["doctor.probe"] = probe_text,
  ["doctor.report"] = report_text,
}

-- ===== JSON =====

-- Fields that are lists, so they stay [] when empty; failures keep kind and message only.
local LISTS = { problems = true, models = true, gates = true, servers = true, warnings = true, nearest = true,
                probes = true, notes = true }

local function plain(v, key, depth)
  if type(v) ~= "table" then
    if type(v) == "function" then return nil end
    return v
  end
  if depth > 10 then return nil end
  if v.kind and v.message and getmetatable(v) then return { kind = v.kind, message = v.message } end
  local out = LISTS[key] and json.array{} or {}
  for k, x in pairs(v) do
    if type(k) == "string" or type(k) == "number" then out[k] = plain(x, k, depth + 1) end
  end
  return out
end

-- The report as JSON (keys are only said to be set, never shown).
function M.json(report)
  return events.scrub(assert(json.encode(plain(report, nil, 0))))
end

return M
