-- `codeassist init`: a commented .claude/autonomous.yml and a presets/mine.lua that extends a
-- built-in preset, from what the doctor would find — the Ollama server (asked with the
-- doctor's own collector and short timeouts), what each installed model can do (/api/show:
-- tools, context window, size), an Anthropic key in the environment, and the GPU memory given
-- with --vram. Each gate the base preset sends to Ollama gets an installed model that can
-- serve it: the base's own choice when the server has it, else the best one by the
-- catalogue's tiers and capabilities. When the server cannot be reached, the files name the
-- setup guide's models and the output says what to run. Existing files are never overwritten
-- without --force.
local fs = require "codeassist.fs"
local api = require "codeassist.ollama_api"
local task = require "codeassist.task"
local config = require "codeassist.config"
local preset = require "codeassist.preset"
local catalogue = require "codeassist.catalogue"
local models = require "codeassist.models_core"
local errors = require "codeassist.errors"
local schema = require "codeassist.schema"
local json = require "codeassist.json"
local term = require "codeassist.term"
local tty = require "codeassist.tty"
local shown = require("codeassist.http").redact   -- URLs shown never carry credentials

local M = {}

M.CONFIG_FILE = config.DEFAULT_PATH
M.PRESET_FILE = "presets/mine.lua"
M.DEFAULT_OLLAMA = "http://127.0.0.1:11434"
M.TIMEOUT = 3               -- seconds per server check: init asks, it does not wait for a cold server
M.MAIN_MODEL = "qwen3-coder"   -- the setup guide's default model (providers.ollama.model)
M.DEFAULT_VRAM = 24         -- as `codeassist models`: the guide's main table when --vram is not given

-- Gates that judge design prefer a reasoning model; the others a coding one.
M.PREFERS = { architect = "reasoning", mentor = "reasoning" }

local GB = catalogue.GB
local TIER_RANK = { large = 3, medium = 2, small = 1, unknown = 0 }
-- A model name that can go into a Lua string and a YAML scalar as it is (a server may answer
-- anything; a name that is not this is left out).
local SAFE_NAME = "^[%w][%w._:/+-]*$"
-- The gates in the order the files list them: the agent first.
local ORDER = { "implement" }
for _, g in ipairs(config.GATES) do ORDER[#ORDER + 1] = g end

-- ===== what is there =====

-- Which Anthropic credential the environment has (its name), if any.
function M.anthropic_key(getenv)
  for _, name in ipairs{ "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN" } do
    local v = getenv(name)
    if v and v:match("%S") then return name end
  end
end

-- The Ollama server to ask: --ollama, else OLLAMA_HOST (read as config.lua reads it), else
-- the default. Returns the URL and where it came from.
function M.ollama_url(flag, getenv)
  local url, origin
  if flag then
    local why
    url, why = config.ollama_host_url(flag)
    if not url then
      errors.usage("--ollama: %s (e.g. --ollama http://gpu-box:11434 or --ollama gpu-box)",
        why or "give the server's address")
    end
    origin = "--ollama"
  else
    local why
    url, why = config.ollama_host_url(getenv("OLLAMA_HOST"))
    if why then errors.config("OLLAMA_HOST=%s (e.g. OLLAMA_HOST=gpu-box:11434 or http://gpu-box:11434)", why) end
    origin = url and "OLLAMA_HOST" or "default"
    url = url or M.DEFAULT_OLLAMA
  end
  if api.has_v1(url) then
    errors.usage("%s: %s ends in /v1; give the server root, e.g. %s", origin == "default" and "base URL" or origin,
      shown(url), shown((url:gsub("/v1/?$", ""))))
  end
  return url, origin
end

-- What the server is and has: {url, origin, reachable, version, models = {{name, size,
-- parameter_size, parameters, tier, capability, facts = /api/show facts | nil}}, skipped =
-- names left out, problem = {message, remedy} when it could not be asked}.
function M.survey(url, origin, timeout)
  local collect = require "codeassist.doctor.collect"
  local client = { base_url = url, timeout = timeout or M.TIMEOUT }
  local s = collect.server(url, client, origin)
  local survey = { url = url, origin = origin, models = {}, skipped = {} }
  if s.error then
    survey.problem = require("codeassist.providers.ollama").unreachable_problem(url, s.error, origin)
    return survey
  end
  if s.tags_error then
    survey.problem = { message = "Could not list models: " .. s.tags_error.message,
                       remedy = "Check the server's log (`journalctl -u ollama`)" }
    return survey
  end
  survey.reachable, survey.version = true, s.version
  survey.answer_problems = s.answer_problems   -- fields of its answers left out: said as warnings
  local jobs, gate = {}, task.semaphore(8)
  for _, m in ipairs(s.models) do
    if m.name:match(SAFE_NAME) then
      local entry = { name = m.name, size = m.size, parameter_size = m.parameter_size, parameters = m.parameters,
                      tier = m.tier, capability = m.capability }
      survey.models[#survey.models + 1] = entry
      jobs[#jobs + 1] = task.spawn(function()
        gate:with(function() entry.facts = api.show(client, m.name) end)
      end)
    else
      survey.skipped[#survey.skipped + 1] = tty.printable(m.name)
    end
  end
  task.join_all(jobs)
  return survey
end

-- ===== choosing =====

-- Why a model cannot serve a gate (nil when it can). Without /api/show facts, the name says
-- whether it calls tools.
local function unfit(m, gate, vram_gb)
  local f = m.facts
  if f and f.has_capabilities and not f.capabilities.completion then return "does not generate text" end
  if gate.tools then
    local tools
    if f and f.has_capabilities then tools = f.capabilities.tools else tools = catalogue.calls_tools(m.name) end
    if not tools then return "cannot call tools" end
  end
  if f and f.context_length and gate.context and f.context_length < gate.context then
    return ("has a %d-token context; the gate needs about %d"):format(f.context_length, gate.context)
  end
  if vram_gb and m.size and m.size > 0 then
    local weights = models.vram_estimate(m.size, 0, f and f.layers or 0, f and f.kv_width or 0)
    if weights > vram_gb * GB then
      return ("needs about %.1f GB; the GPU has %g GB"):format(weights / GB, vram_gb)
    end
  end
end

-- Whether the model, with the gate's context, would spill onto the CPU.
local function spills(m, gate, vram_gb)
  if not (vram_gb and m.size and m.size > 0) then return false end
  local f = m.facts or {}
  return models.vram_estimate(m.size, gate.context or 8192, f.layers or 0, f.kv_width or 0) > vram_gb * GB
end

-- What the file says about a chosen model: "calls tools, 262144-token context, coding, large".
local function describe(m)
  local parts = {}
  local f = m.facts
  if f and f.has_capabilities and f.capabilities.tools then parts[#parts + 1] = "calls tools" end
  if f and f.context_length then parts[#parts + 1] = ("%d-token context"):format(f.context_length) end
  if m.capability then parts[#parts + 1] = m.capability end
  if m.tier and m.tier ~= "unknown" then parts[#parts + 1] = m.tier end
  return table.concat(parts, ", ")
end

-- The candidates when the server could not be asked: the guide's models for this GPU, in
-- the guide's order.
local function recommended_candidates(vram_gb)
  local list = {}
  for i, r in ipairs(catalogue.recommendations(vram_gb or M.DEFAULT_VRAM).models) do
    list[i] = { name = r[1], order = i, tier = "unknown", capability = catalogue.capability(r[1]), use = r[3] }
  end
  return list
end

local function find(list, name)
  local names = {}
  for i, m in ipairs(list) do names[i] = m.name end
  local match = models.match(name, names)
  if not match then return nil end
  for _, m in ipairs(list) do if m.name == match then return m end end
end

-- The model for one gate: {model, installed (true | false | nil: not known), why, instead =
-- why the base's own choice was not taken, missing = nothing available can serve it}.
function M.pick(name, gate, survey, preferred, vram_gb)
  local list = survey.reachable and survey.models or recommended_candidates(vram_gb)
  local installed = survey.reachable or nil
  local instead
  if preferred then
    local m = find(list, preferred)
    local why = m and unfit(m, gate, vram_gb)
    if m and not why then
      return { model = m.name, installed = installed, preferred = true,
               why = survey.reachable and describe(m) or ("the setup guide's choice: " .. (m.use or "")) }
    end
    if survey.reachable then
      instead = m and ("%s %s"):format(m.name, why) or ("%s is not installed"):format(preferred)
    else
      instead = ("%s is not among the setup guide's models for %g GB"):format(preferred, vram_gb or M.DEFAULT_VRAM)
    end
  end
  local want = M.PREFERS[name] or "coding"
  local function score(m)
    local fit = spills(m, gate, vram_gb) and 0 or 1000
    local cap = m.capability == want and 2 or (m.capability == "coding" and 1 or 0)
    return fit + TIER_RANK[m.tier or "unknown"] * 100 + cap * 10
  end
  local eligible = {}
  for _, m in ipairs(list) do
    if not unfit(m, gate, vram_gb) then eligible[#eligible + 1] = m end
  end
  table.sort(eligible, function(a, b)
    local sa, sb = score(a), score(b)
    if sa ~= sb then return sa > sb end
    if (a.order or 0) ~= (b.order or 0) then return (a.order or 0) < (b.order or 0) end
    if (a.size or 0) ~= (b.size or 0) then return (a.size or 0) > (b.size or 0) end
    return a.name < b.name
  end)
  local best = eligible[1]
  if best then
    return { model = best.name, installed = installed, instead = instead,
             why = survey.reachable and describe(best) or ("the setup guide's choice: " .. (best.use or "")) }
  end
  -- nothing there can serve it: name the model to pull, and let the doctor say so too
  local fallback = preferred or M.MAIN_MODEL
  if survey.reachable then
    -- the guide's model that would serve it on this GPU, chosen as with no server (the
    -- preferred one may be installed but too big for it)
    local offline = M.pick(name, gate, { reachable = false }, nil, vram_gb)
    if not offline.missing then fallback = offline.model end
  end
  return { model = fallback, installed = false, missing = true, instead = instead,
           why = ("nothing %s can serve it (it needs%s a %d-token context%s): ollama pull %s"):format(
             survey.reachable and "installed" or "recommended", gate.tools and " tool calling and" or "",
             gate.context or 0, vram_gb and (", within %g GB"):format(vram_gb) or "", fallback) }
end

-- The built-in preset to extend, and why.
function M.choose_preset(requested, key, reachable)
  if requested then
    for _, name in ipairs(preset.BUILTIN) do
      if name == requested then return requested, "--preset" end
    end
    errors.usage("--preset: no built-in preset named '%s'%s; built-in presets: %s", requested,
      schema.did_you_mean(requested, preset.BUILTIN), table.concat(preset.BUILTIN, ", "))
  end
  if key and reachable then return "ollama_hybrid", "an Anthropic key is set and the Ollama server answered" end
  if reachable then return "ollama_only", "the Ollama server answered and no Anthropic key is set" end
  if key then return "claude", "an Anthropic key is set and no Ollama server answered" end
  return "ollama_only", "no Anthropic key is set: local models, once the server runs"
end

-- The routes for mine.lua: every gate the base preset sends to Ollama, with a model chosen
-- for it; the others stay as the base routes them. Returns {main, routes = {{gate, spec,
-- pick}}, kept = {gate = provider label}, base}.
function M.choose(base_name, survey, opts)
  local cfg = config.defaults()
  cfg.source = { path = M.CONFIG_FILE, found = false, warnings = {}, origins = {} }
  local main = M.pick("implement", preset.ROLES.implement, survey, M.MAIN_MODEL, opts.vram_gb)
  local o = cfg.providers.ollama
  o.enabled, o.base_url, o.model, o.vram_gb = true, survey.url, main.model, opts.vram_gb
  cfg.providers.default = opts.key and "claude" or "ollama"
  local base = preset.load(base_name, cfg)
  local plan = preset.plan(base, cfg)
  local out = { main = main, routes = {}, kept = {}, base = base, default = cfg.providers.default }
  for _, gate in ipairs(ORDER) do
    local route = plan.routes[gate]
    if route and route.provider == "ollama" then
      local chosen = gate == "implement" and main or M.pick(gate, plan.gates[gate], survey, route.model, opts.vram_gb)
      local spec = { provider = "ollama", model = chosen.model, floor = route.floor }
      local base_spec = base.routes[gate] or base.default_route
      if type(base_spec) == "table" and base_spec.fallback ~= nil then spec.fallback = config.deep_copy(base_spec.fallback) end
      out.routes[#out.routes + 1] = { gate = gate, spec = spec, pick = chosen }
    elseif route then
      out.kept[#out.kept + 1] = { gate = gate, provider = preset.provider_label(route.provider) }
    end
  end
  out.uses_ollama = #out.routes > 0
  -- The agent is not local and nothing installed could be: the config's model is then one of
  -- the installed ones the routes use, so the doctor does not report a missing model.
  if main.missing and (out.routes[1] or {}).gate ~= "implement" then
    for _, r in ipairs(out.routes) do
      if not r.pick.missing then out.main = r.pick; break end
    end
  end
  if not out.uses_ollama then out.default = "claude" end   -- Ollama stays off: nothing may be routed there
  return out
end

-- A model other than review's, for the example hook: another chosen one, else the biggest
-- other installed one.
function M.other_model(choice, survey)
  local review
  for _, r in ipairs(choice.routes) do if r.gate == "review" then review = r.spec.model end end
  for _, r in ipairs(choice.routes) do
    if r.spec.model ~= review then return r.spec.model end
  end
  local best
  for _, m in ipairs(survey.models) do
    if m.name ~= review and (not best or (m.size or 0) > (best.size or 0)) then best = m end
  end
  return best and best.name
end

-- `ollama pull` lines: {needed = the models the files name that are not installed,
-- recommended = the guide's others for this GPU that are not}.
function M.pulls(survey, choice, vram_gb)
  local needed, recommended, seen = {}, {}, {}
  local names = {}
  for _, m in ipairs(survey.models) do names[#names + 1] = m.name end
  local function missing(name) return not (survey.reachable and models.match(name, names)) end
  local function add(list, name)
    local key = models.display(name) or name
    if not seen[key] and missing(name) then seen[key] = true; list[#list + 1] = name end
  end
  if choice.uses_ollama then
    add(needed, choice.main.model)
    for _, r in ipairs(choice.routes) do add(needed, r.pick.model) end
  end
  for _, r in ipairs(catalogue.recommendations(vram_gb or M.DEFAULT_VRAM).models) do add(recommended, r[1]) end
  return { needed = needed, recommended = recommended }
end

-- ===== the files =====

local function lua_literal(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for _, k in ipairs{ "provider", "model", "default_model", "floor", "fallback" } do
    if v[k] ~= nil then parts[#parts + 1] = ("%s = %s"):format(k, lua_literal(v[k])) end
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- A YAML flow scalar: plain when that reads back as the same string, else double-quoted (a
-- JSON string is valid YAML).
local YAML_WORDS = { ["true"] = true, ["false"] = true, yes = true, no = true, on = true, off = true,
                     null = true, ["~"] = true }
local function yaml_scalar(s)
  if type(s) ~= "string" then return tostring(s) end
  local plain = s:match("^[%w_][%w._/:+-]*$") or s:match("^[%w_][%w._/ -]*[%w._/-]$")
    or s:match("^https?://[%w.:%[%]_~%%/-]+$")
  if plain and not s:find(":$") and not tonumber(s) and not YAML_WORDS[s:lower()] then return s end
  return json.encode(s)
end

local function yaml_list(list)
  local parts = {}
  for i, s in ipairs(list) do parts[i] = yaml_scalar(s) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function lines()
  local L = {}
  return L, function(fmt, ...)
    L[#L + 1] = select("#", ...) > 0 and fmt:format(...) or fmt
  end
end

-- What was found, one fact a line, for the files' headers.
local function found_lines(f)
  local s = f.survey
  return {
    s.reachable and ("Ollama %s at %s: %d models"):format(tty.printable(s.version or "?"), shown(s.url), #s.models)
      or ("no Ollama server answered at %s"):format(shown(s.url)),
    f.key and (f.key .. " set in the environment") or "no Anthropic key in the environment",
    f.vram_gb and ("%g GB of GPU memory (--vram)"):format(f.vram_gb) or "GPU memory not given (--vram)",
  }
end

function M.config_text(f)
  local d = config.defaults()
  local c = f.choice
  local L, add = lines()
  add("# codeassist's configuration for this repository, written by `codeassist init` on %s", f.date)
  add("# from what it found:")
  for _, l in ipairs(found_lines(f)) do add("#   %s", l) end
  add("#")
  add("# Every key is optional: a line left commented out keeps the default it shows. One precedence:")
  add("#   built-in defaults < environment < this file < the preset < command-line flags")
  add("# so the routes in %s beat gate_providers here. `codeassist doctor %s`", M.PRESET_FILE, M.PRESET_FILE)
  add("# checks this file (a mistake is named with its line and column) and every route.")
  add("#")
  add("# No API key belongs in this file: Claude reads ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN)")
  add("# from the environment, and ANTHROPIC_BASE_URL for a server other than api.anthropic.com.")
  add("")
  add("# The weighted score (0-100) that ends a run successfully. Default: %s.", d.target_score)
  add("# target_score: %s", d.target_score)
  add("# Iterations (1-100) before a run that has not reached it stops BLOCKED. Default: %s.", d.max_iterations)
  add("# max_iterations: %s", d.max_iterations)
  add("# Seconds (0-300) between iterations. Default: %s.", d.iteration_delay)
  add("# iteration_delay: %s", d.iteration_delay)
  add("")
  add("providers:")
  add("  # Who serves a gate that neither the preset nor gate_providers routes: claude | ollama.")
  add("  # Default: %s.", d.providers.default)
  add("  default: %s", c.default)
  add("  ollama:")
  add("    # Whether gates may use Ollama at all. Default: false.")
  add("    enabled: %s", tostring(c.uses_ollama))
  add("    # The server root (never .../v1); a list of URLs is a pool that fails over.")
  add("    # Default: OLLAMA_HOST, else %s.%s", d.providers.ollama.base_url,
    f.survey.reachable and "" or " (Not reached when this was written.)")
  if f.survey.origin == "--ollama" then
    add("    base_url: %s", yaml_scalar(f.survey.url))
  else
    -- the environment stays in charge: a later OLLAMA_HOST must not be beaten by this file
    add("    # (%s now, read from %s at each run; uncomment to fix the address here)", f.survey.url,
      f.survey.origin == "OLLAMA_HOST" and "OLLAMA_HOST" or "the default")
    add("    # base_url: %s", yaml_scalar(f.survey.url))
  end
  add("    # The model of an Ollama route that names none (the preset's routes name theirs).")
  add("    # No default.")
  add("    model: %s", yaml_scalar(c.main.model))
  add("    # GPU memory in GB: the doctor's fit checks and the loop's model scheduling. No default")
  add("    # (`nvidia-smi --query-gpu=memory.total --format=csv` shows it).")
  if f.vram_gb then add("    vram_gb: %g", f.vram_gb) else add("    # vram_gb: %d", M.DEFAULT_VRAM) end
  add("    # How Ollama is called: native (/api/chat, which sizes the context window per request)")
  add("    # or anthropic (Ollama's /v1/messages, 0.14.0 or newer). Default: %s.", d.providers.ollama.protocol)
  add("    # protocol: %s", d.providers.ollama.protocol)
  add("    # How long Ollama keeps a model loaded after a call (\"30m\", seconds, -1 for ever).")
  add("    # Default: the server's own (OLLAMA_KEEP_ALIVE, 5 minutes).")
  add("    # keep_alive: 30m")
  add("    # api_key: only for a reverse proxy in front of Ollama (sent to base_url alone). init")
  add("    # writes none; if you add one, keep this file out of version control.")
  add("  # Claude: the server root (default: ANTHROPIC_BASE_URL, else %s)", d.providers.anthropic.base_url)
  add("  # and the model of Claude routes (default: %s).", d.providers.anthropic.model)
  add("  # anthropic:")
  add("  #   base_url: %s", d.providers.anthropic.base_url)
  add("  #   model: %s", d.providers.anthropic.model)
  add("  # Routes per gate, for gates no preset routes (%s routes its gates, so these", M.PRESET_FILE)
  add("  # would not be used; the doctor notes each one that is not): claude | ollama, or")
  add("  # {provider, model, fallback, floor}.")
  add("  # gate_providers:")
  add("  #   review: { provider: ollama, model: %s, fallback: claude, floor: degradable }", c.main.model)
  add("")
  add("# The gates: %s.", table.concat(config.GATES, ", "))
  add("# Per gate: weight (0-100), required (a run cannot pass while it fails), auto_fix (its")
  add("# findings go back to the agent), parallel_group (gates of a group run together),")
  add("# timeout_ms (default 300000), tools and context (what its model must do and hold),")
  add("# thresholds.pass (a required gate passes at it; default 80). build and test take command")
  add("# (shell text, or {command, report}: a JUnit/TAP file it writes); test takes")
  add("# thresholds.min_coverage (default: none). The default layout:")
  local layout = {}
  for _, g in ipairs(config.GATES) do
    local gd = d.gates[g]
    layout[#layout + 1] = ("%s %d%s"):format(g, gd.weight, gd.required and " required" or "")
  end
  add("#   %s,", table.concat(layout, ", ", 1, 4))
  add("#   %s.", table.concat(layout, ", ", 5))
  if f.detected and (f.detected.build or f.detected.test) then
    add("# build and test commands are detected from the project; found now: %s.", table.concat(f.detected.list, ", "))
  else
    add("# build and test commands are detected from the project (Makefile, package.json, Cargo.toml,")
    add("# go.mod, pyproject.toml, pom.xml, build.gradle, composer.json); none was found yet.")
  end
  add("# gates:")
  add("#   build:")
  add("#     command: %s", yaml_scalar(f.detected and f.detected.build or "make"))
  add("#   test:")
  add("#     command: %s", yaml_scalar(f.detected and f.detected.test or "make test"))
  add("#     thresholds: { pass: 80, min_coverage: 70 }")
  add("#   ux:")
  add("#     weight: 0")
  add("")
  add("# Budgets. max_cost_usd: a run stops BLOCKED before a Claude call once it has spent this")
  add("# many dollars (local calls cost nothing); default: no limit. max_api_calls_per_hour:")
  add("# Claude calls in any hour (the run waits, or stops); default: %d.", d.safety.max_api_calls_per_hour)
  add("# safety:")
  add("#   max_cost_usd: 5")
  add("#   max_api_calls_per_hour: %d", d.safety.max_api_calls_per_hour)
  add("")
  add("# Git: branches a run never pushes to, which branch a pull request targets, and commit")
  add("# message lines that are removed (auto_strip) or, with auto_strip off, refused.")
  add("# git_rules:")
  add("#   protected_branches: %s", yaml_list(d.git_rules.protected_branches))
  local flow = d.git_rules.branch_flow
  add("#   branch_flow: { feature: %s, develop: %s, staging: %s, hotfix: %s }", flow.feature, flow.develop,
    flow.staging, flow.hotfix)
  add("#   commit_rules:")
  add("#     forbidden_patterns: %s", yaml_list(d.git_rules.commit_rules.forbidden_patterns))
  add("#     auto_strip: %s", tostring(d.git_rules.commit_rules.auto_strip))
  add("")
  add("# The agent. sandbox: auto (bubblewrap where it runs, else unsandboxed with a loud warning),")
  add("# required (refuses to run without it) or off; network: whether its commands reach the")
  add("# network; bash_timeout: seconds per command; max_turns: per iteration.")
  add("# agent:")
  add("#   sandbox: %s", d.agent.sandbox)
  add("#   network: %s", tostring(d.agent.network))
  add("#   bash_timeout: %d", d.agent.bash_timeout)
  add("#   max_turns: %d", d.agent.max_turns)
  return table.concat(L, "\n") .. "\n"
end

local BASE_SUMMARY = {
  ollama_hybrid = "Claude for the agent, test, security and mentor; Ollama for the rest, each local gate falling back to Claude",
  ollama_only = "every gate and the agent on local Ollama models, no cloud calls",
  escalate = "ollama_hybrid, and a local gate moves to Claude after two failures in a row",
  claude = "every gate and the agent on Claude",
  production = "strict targets (98 in 20 iterations), routing from the config",
  prototype = "quick targets (80 in 5 iterations), routing from the config",
}

function M.preset_text(f)
  local c = f.choice
  local L, add = lines()
  add("-- My preset, written by `codeassist init` on %s from what it found:", f.date)
  for _, l in ipairs(found_lines(f)) do add("--   %s", l) end
  add("-- It extends the built-in %s:", f.base)
  add("--   %s.", BASE_SUMMARY[f.base] or "a built-in preset")
  if c.uses_ollama then
    add(f.survey.reachable and "-- Each local gate below is routed to a model this server has."
      or "-- The local gates below name the setup guide's models: the server was not reached.")
  end
  add("--")
  add("--   codeassist doctor %s          checks every route (--probe: a tiny request each)", M.PRESET_FILE)
  add("--   codeassist run %s --issue N   runs the loop with it", M.PRESET_FILE)
  add("--")
  add("-- A route: provider (claude | ollama), model, floor and fallback. floor \"degradable\": when the")
  add("-- model cannot be used, the gate goes to its fallback; \"critical\": never served by another")
  add("-- model (the run stops instead). Connection settings stay in %s.", M.CONFIG_FILE)
  add("-- The preset author's reference: docs/PRESETS.md (routes, floors, hooks and their ctx).")
  add("local preset = require \"codeassist.preset\"")
  add("")
  add("return preset.define{")
  add("  name = \"mine\",")
  add("  extends = %q,", f.base)
  add("  -- target_score = 95,     -- else %s's, else %s's", f.base, M.CONFIG_FILE)
  add("  -- max_iterations = 15,")
  if c.uses_ollama then
    add("  routes = {")
    for _, r in ipairs(c.routes) do
      local p = r.pick
      local note = p.missing and ("NOT INSTALLED: " .. p.why) or p.instead and (p.instead .. "; " .. p.why) or p.why
      add("    -- %s", tty.printable(note))
      add("    %s = %s,", r.gate, lua_literal(r.spec))
    end
    add("  },")
  else
    local example = f.best_local or M.MAIN_MODEL
    add("  -- routes = {   -- a gate on a local model, falling back to Claude when it cannot be used")
    add("  --   review = { provider = \"ollama\", model = %q, floor = \"degradable\", fallback = \"claude\" },", example)
    add("  -- },")
  end
  if #c.kept > 0 then
    local by = {}
    for _, k in ipairs(c.kept) do
      by[k.provider] = by[k.provider] or {}
      table.insert(by[k.provider], k.gate)
    end
    for _, provider in ipairs(schema.sorted_keys(by)) do
      add("  -- %s: %s, as %s routes them.", table.concat(by[provider], ", "), provider, f.base)
    end
  end
  add("")
  add("  -- A hook, called before each model call of a gate: return a route to use instead.")
  if f.key then
    add("  -- This one moves review to Claude after two failures in a row.")
    add("  -- route = function(gate, ctx)")
    add("  --   if gate == \"review\" and ctx.failures(\"review\") >= 2 then return { provider = \"claude\" } end")
  else
    add("  -- This one gives review another local model after two failures in a row.")
    add("  -- route = function(gate, ctx)")
    add("  --   if gate == \"review\" and ctx.failures(\"review\") >= 2 then")
    add("  --     return { provider = \"ollama\", model = %q }", f.other_model or c.main.model)
    add("  --   end")
  end
  add("  -- end,")
  add("}")
  return table.concat(L, "\n") .. "\n"
end

-- ===== the command =====

local function is_git(root)
  local git = require "codeassist.git"
  return git.open(root):output{ "rev-parse", "--git-dir" } ~= nil
end

-- The project's build and test commands, as the measured gates would find them.
local function detect_commands(root)
  local ok, plan = pcall(function() return require("codeassist.gates.measure").detect(root) end)
  if not ok or type(plan) ~= "table" then return nil end
  local d = { list = {} }
  d.build = plan.build and plan.build.command
  d.test = plan.test and plan.test.command
  if d.build then d.list[#d.list + 1] = "build: " .. d.build end
  if d.test then d.list[#d.list + 1] = "test: " .. d.test end
  return d
end

local function shell_quote(s)
  if s:match("^[%w_./-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- What it found, what it wrote (or would), and what to run next.
local function report(f, p, out)
  local function say(fmt, ...) out:write(select("#", ...) > 0 and fmt:format(...) or fmt, "\n") end
  local s = f.survey
  say("Found:")
  if s.reachable then
    say("  %s", p.ok(("Ollama %s at %s (%s): %d models"):format(tty.printable(s.version or "?"), shown(s.url),
      s.origin, #s.models)))
    for _, m in ipairs(s.models) do
      say("      %-28s %s", tty.printable(m.name), describe(m))
    end
    if #s.skipped > 0 then say("  %s", p.warn("left out (names init cannot write safely): " .. table.concat(s.skipped, ", "))) end
    for _, text in ipairs(s.answer_problems or {}) do say("  %s", p.warn(tty.printable(text))) end
  else
    say("  %s", p.bad(("Ollama was not reached at %s (%s): %s"):format(shown(s.url), s.origin, s.problem.message)))
    say("    → %s", s.problem.remedy)
  end
  say("  %s", f.key and p.ok(f.key .. " is set: Claude routes can be used")
    or p.warn("No Anthropic key (ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN): local models only"))
  say("  %s", f.vram_gb and p.ok(("GPU memory: %g GB (--vram)"):format(f.vram_gb))
    or ("· GPU memory not given: no fit checks (--vram GB adds them); recommendations for %d GB"):format(M.DEFAULT_VRAM))
  if f.git then
    say("  %s", p.ok(f.root .. " is a git repository"))
  else
    say("  %s", p.warn(f.root .. " is not a git repository: the doctor works, but `codeassist run` needs one (git init)"))
  end

  say("")
  say("Preset: mine extends %s (%s)", f.base, f.base_why)
  for _, r in ipairs(f.choice.routes) do
    local pk = r.pick
    local mark = pk.missing and p.bad("") or pk.instead and p.warn("") or pk.installed == nil and "· " or p.ok("")
    local why = pk.missing and pk.why or pk.instead
    say("  %s%-10s ollama %s%s", mark, r.gate, r.spec.model, why and (" — " .. why) or "")
  end
  if #f.choice.kept > 0 then
    local names = {}
    for _, k in ipairs(f.choice.kept) do names[#names + 1] = k.gate .. " (" .. k.provider .. ")" end
    say("  as %s routes them: %s", f.base, table.concat(names, ", "))
  end
  if f.choice.kept_claude and not f.key then
    say("  %s", p.warn(("%s routes gates to Claude and no key is set: export ANTHROPIC_API_KEY=... before running")
      :format(f.base)))
  end

  say("")
  say(f.dry_run and "Would write (--dry-run; nothing written):" or "Wrote:")
  for _, file in ipairs(f.files) do
    say("  %s%s", file.path, file.existed and " (replaced: --force)" or "")
  end
  if f.dry_run then
    for _, file in ipairs(f.files) do
      say("")
      say("----- %s -----", file.path)
      out:write(file.text)
    end
  end

  local pulls = f.pulls
  if not s.reachable then
    say("")
    say("The server was not reached, so the files name the setup guide's models. Then:")
    say("  ollama serve                     (or: sudo systemctl start ollama; another host: --ollama URL)")
    for _, name in ipairs(pulls.needed) do say("  ollama pull %s", name) end
    say("  codeassist models                (what is installed, and what the guide recommends)")
  else
    if #pulls.needed > 0 then
      say("")
      say("The files name models that are not installed; to complete the setup:")
      for _, name in ipairs(pulls.needed) do say("  ollama pull %s", name) end
    end
    if #pulls.recommended > 0 then
      say("")
      say("The setup guide's other models for %g GB (pull them, then `codeassist init --force` chooses again):",
        f.vram_gb or M.DEFAULT_VRAM)
      for _, name in ipairs(pulls.recommended) do say("  ollama pull %s", name) end
    end
  end

  say("")
  say("Next:")
  if f.root ~= fs.cwd() and f.root ~= "." then say("  cd %s", shell_quote(f.root)) end
  if not f.git then say("  git init") end
  say("  codeassist doctor %s", M.PRESET_FILE)
  say("  codeassist run %s --issue N", M.PRESET_FILE)
end

-- opts: {repo, force, preset, ollama, vram_gb, dry_run, timeout, env}; returns the exit code.
function M.main(opts)
  local getenv = opts.env or os.getenv
  local root = opts.repo or fs.cwd()
  local st = fs.stat(root)
  if not st or st.type ~= "dir" then errors.usage("--repo %s: %s", root, st and "not a folder" or "no such folder") end
  root = root:gsub("(.)/+$", "%1")

  local files = { { path = M.CONFIG_FILE }, { path = M.PRESET_FILE } }
  local existing = {}
  for _, file in ipairs(files) do
    file.full = root .. "/" .. file.path
    file.existed = fs.stat(file.full) ~= nil
    if file.existed then existing[#existing + 1] = file.path end
  end
  if #existing > 0 and not opts.force and not opts.dry_run then
    errors.usage("init: %s already exist%s in %s; init never overwrites a file: give --force to replace %s",
      table.concat(existing, " and "), #existing == 1 and "s" or "", root, #existing == 1 and "it" or "them")
  end
  if opts.preset then M.choose_preset(opts.preset) end   -- a wrong --preset is said before the server is asked

  local url, origin = M.ollama_url(opts.ollama, getenv)
  local f = { root = root, key = M.anthropic_key(getenv), vram_gb = opts.vram_gb, dry_run = opts.dry_run,
              date = os.date("%Y-%m-%d"), git = is_git(root) }
  f.survey = M.survey(url, origin, opts.timeout)
  f.base, f.base_why = M.choose_preset(opts.preset, f.key, f.survey.reachable)
  f.choice = M.choose(f.base, f.survey, { key = f.key, vram_gb = f.vram_gb })
  for _, k in ipairs(f.choice.kept) do
    if k.provider == "claude" then f.choice.kept_claude = true end
  end
  if not f.choice.uses_ollama and f.survey.reachable then
    f.best_local = M.pick("review", config.GATE_DEFAULTS.review, f.survey, nil, f.vram_gb).model
  end
  f.other_model = M.other_model(f.choice, f.survey)
  f.pulls = M.pulls(f.survey, f.choice, f.vram_gb)
  f.detected = detect_commands(root)
  files[1].text, files[2].text = M.config_text(f), M.preset_text(f)
  f.files = files

  if not opts.dry_run then
    for _, file in ipairs(files) do
      local dir = file.full:match("^(.*)/[^/]*$")
      local ok, err = fs.mkdir_p(dir)
      if ok then ok, err = fs.write_atomic(file.full, file.text) end
      if not ok then errors.usage("init: cannot write %s: %s", file.full, tostring(err)) end
    end
  end
  report(f, tty.painter(term.color("stdout")), io.stdout)
  return 0
end

return M
