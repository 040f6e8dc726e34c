-- Presets: checked, inspectable values that say which gate runs where and what counts as done.
-- The reference for preset authors is docs/PRESETS.md.
--
--   local preset = require "codeassist.preset"
--   return preset.define{
--     name = "my_hybrid", extends = "ollama_hybrid",
--     target_score = 90,
--     routes = { review = { provider = "claude", floor = "critical" } },
--     route = function(gate, ctx) ... end,          -- hooks: route, score, on_iteration, on_gate
--   }
--
-- define() checks every key at once and raises a config error (exit 2) naming the file, the
-- key path (routes.architect.floor) and the nearest valid word. The value it returns is a
-- plain table (with a metatable only for printing): read it, copy it, extend it.
--
-- One precedence, everywhere: built-in defaults < environment < .claude/autonomous.yml <
-- the preset (and what it extends) < command-line flags. M.plan applies it and records where
-- every route and target came from (plan.origins, route.origin).
local config = require "codeassist.config"
local errors = require "codeassist.errors"
local schema = require "codeassist.schema"

local M = {}

M.BUILTIN = { "claude", "escalate", "ollama_hybrid", "ollama_only", "production", "prototype" }

-- The hooks a preset may define; the loop calls them (docs/PRESETS.md says when).
M.HOOKS = {
  route = "route(gate, ctx)", score = "score(results, ctx)",
  on_iteration = "on_iteration(ctx)", on_gate = "on_gate(result, ctx)",
}
M.HOOK_NAMES = { "route", "score", "on_iteration", "on_gate" }

-- What the implementing agent needs: it is routed and checked like a gate, never scored.
M.ROLES = { implement = { tools = true, context = 65536, required = true, parallel_group = 0,
                          description = "Implements the issue (agent with edit tools)" } }

-- ===== the schema of a preset =====

local str = { type = "string" }
local token = { type = "string", token = true }   -- a model name: no spaces or line breaks
local provider_node = { type = "string", enum = config.PROVIDERS }
local route_table = { type = "table", fields = {
  provider = { type = "string", enum = config.PROVIDERS, required = true },
  model = token,
  default_model = token,        -- used when neither the route nor the config names a model
  floor = { type = "string", enum = config.FLOORS },
} }
local fallback_node = { either = { { type = "string", enum = { "claude", "anthropic", "ollama", "none" } }, route_table } }
route_table.fields.fallback = fallback_node   -- a fallback may have its own fallback
local route_node = { either = { provider_node, route_table } }
M.route_node = route_node

local function hook(name, instead)
  return { type = "function", what = ("a function (the %s hook)"):format(M.HOOKS[name]), instead = instead }
end

local SCHEMA = { type = "table", fields = {
  name = str, description = str,
  extends = { type = "any" },   -- a built-in name, a file, or a preset value: checked in resolve_base
  target_score = { type = "number", min = 0, max = 100 },
  max_iterations = { type = "integer", min = 1, max = 100 },
  iteration_delay = { type = "number", min = 0, max = 300 },
  gates = { type = "table", each = { type = "table", fields = config.gate_fields },
            known = config.GATES, known_what = "gate", unknown = "error" },
  routes = { type = "table", each = route_node, known = config.ROUTABLE, known_what = "gate", unknown = "error" },
  default_route = route_node,
  route = hook("route", { table = "routes", string = "default_route" }),
  score = hook("score", { number = "target_score" }),
  on_iteration = hook("on_iteration"),
  on_gate = hook("on_gate", { table = "gates" }),
} }
M.SCHEMA = SCHEMA

-- ===== preset values =====

local Preset = {}
Preset.__index = Preset
Preset.__tostring = function(p) return ("preset %s (%s)"):format(tostring(p.name), tostring(p.source)) end

function M.is_preset(v)
  return getmetatable(v) == Preset
end

local deep_copy = config.deep_copy

-- The preset files being run (a stack: a preset may load its base).
local loading = {}

-- What `require` puts in package.loaded[name] while it runs that module (LuaJIT's sentinel),
-- learnt once by requiring a module that looks at it.
local SENTINEL
package.preload["codeassist.preset.sentinel"] = function(name) SENTINEL = package.loaded[name] return true end
require "codeassist.preset.sentinel"
package.loaded["codeassist.preset.sentinel"], package.preload["codeassist.preset.sentinel"] = nil, nil

-- The file of the module `require` is loading now, if there is exactly one.
local function module_being_required()
  local found
  for name, v in pairs(package.loaded) do
    if rawequal(v, SENTINEL) and type(name) == "string" then
      if found then return nil end   -- several at once: cannot tell which
      found = name
    end
  end
  if not found then return nil end
  local builtin = found:match("^presets%.([%w_]+)$")
  return package.searchpath(found, package.path) or (builtin and ("presets/" .. builtin .. ".lua"))
end

-- "file:line" of the code that called define/extend. `return preset.define{...}` is a tail
-- call, which leaves no frame for its file: then the file being loaded is the answer.
local function caller_position(level)
  local info = debug.getinfo(level + 1, "Sl")
  local src = info and info.source:sub(1, 1) == "@" and info.source:sub(2)
  if not src or src:find("^scripts/codeassist/") then
    -- the file being loaded as a preset, required as a module, or run by `codeassist run`
    return loading[#loading] or module_being_required() or (rawget(_G, "arg") and arg[0]) or "the preset"
  end
  return info.currentline > 0 and (src .. ":" .. info.currentline) or src
end

local function file_of(where)
  return (tostring(where):gsub(":%d+$", ""))
end

local function problems_error(where, problems)
  errors.config("%s: the preset has %d problem%s:\n  %s", where, #problems, #problems == 1 and "" or "s",
    table.concat(problems, "\n  "))
end

local resolve_base

-- Builds a preset value from a spec; where names the spec for errors and origins.
local function build(spec, where)
  local problems = schema.problems(spec, SCHEMA, { unknown = "error", lua = true })
  local list = problems.errors
  local base
  if spec.extends ~= nil and #list == 0 then
    local ok, b = pcall(resolve_base, spec.extends, where)
    if not ok then
      if errors.is(b) and b.code == 2 then list[#list + 1] = "extends: " .. b.message
      else error(b, 0) end
    else
      base = b
    end
  end
  if #list > 0 then problems_error(where, list) end

  local p = setmetatable({ origins = {} }, Preset)
  local src = file_of(where)
  if base then
    -- everything but its identity: an extending preset has its own name and description
    for k, v in pairs(base) do
      if k ~= "origins" and k ~= "base" and k ~= "name" and k ~= "description" then p[k] = deep_copy(v) end
    end
    for k, v in pairs(base.origins) do p.origins[k] = v end
    p.base, p.extends = base, base.name
  end
  for _, key in ipairs{ "name", "description", "target_score", "max_iterations", "iteration_delay", "default_route" } do
    if spec[key] ~= nil then p[key], p.origins[key] = deep_copy(spec[key]), src end
  end
  for _, name in ipairs(M.HOOK_NAMES) do
    if spec[name] ~= nil then p[name], p.origins[name] = spec[name], src end
  end
  p.gates = p.gates or {}
  for gate, g in pairs(spec.gates or {}) do
    p.gates[gate] = p.gates[gate] or {}
    for k, v in pairs(g) do p.gates[gate][k] = deep_copy(v) end
    p.origins["gates." .. gate] = src
  end
  p.routes = p.routes or {}
  for gate, r in pairs(spec.routes or {}) do
    p.routes[gate], p.origins["routes." .. gate] = deep_copy(r), src
  end
  p.source = src
  p.name = p.name or src:match("([^/]+)%.lua$") or src
  return p
end

-- preset.define{...}: checks the spec and returns the preset value.
function M.define(spec)
  local where = caller_position(2)
  if type(spec) ~= "table" then
    errors.config("%s: preset.define: give a table {name = ..., routes = {...}}, not %s", where,
      spec == nil and "nothing" or ("a " .. type(spec)))
  end
  local p = build(spec, where)
  M.last_made = where   -- run_file names it when a preset file forgot its `return`
  return p
end

-- preset.extend(base, spec_or_fn): a preset built on another. base is a built-in name, a
-- file, or a preset value. With a table, its keys override the base's (gates merge per
-- field, routes per gate). With a function, it receives a copy of the base (hooks included)
-- to change in place or to return a new spec from.
function M.extend(base_ref, change)
  local where = caller_position(2)
  if type(change) ~= "table" and type(change) ~= "function" then
    errors.config("%s: preset.extend: the second argument must be a table of changes or a function(base), not %s",
      where, change == nil and "nothing" or ("a " .. type(change)))
  end
  local base = resolve_base(base_ref, where)
  if type(change) == "table" then
    local spec = {}
    for k, v in pairs(change) do spec[k] = v end
    spec.extends = base
    local p = build(spec, where)
    M.last_made = where
    return p
  end
  local copy = M.to_spec(base)
  local result = errors.call_user(file_of(where), change, copy)
  if result == nil then result = copy end
  if type(result) ~= "table" then
    errors.config("%s: the function given to preset.extend returned a %s; return nothing or a preset table", where, type(result))
  end
  local p = build(M.to_spec(result), where)
  p.extends, p.base = base.name, base
  M.last_made = where
  return p
end

-- A plain spec (what define takes) from a preset value: everything but its bookkeeping.
function M.to_spec(p)
  local spec = {}
  for k, v in pairs(p) do
    if k ~= "origins" and k ~= "base" and k ~= "source" and k ~= "extends" then spec[k] = deep_copy(v) end
  end
  return spec
end

local current_cfg   -- the config being planned with, for bases that are functions of it

-- What a preset that is a function of the config receives: a copy, keys only said to be set
-- (a preset must not change where calls go, nor be able to print a key).
function M.config_view(cfg)
  if cfg == nil then return nil end
  local view = deep_copy(cfg)
  local a, o = view.providers.anthropic, view.providers.ollama
  a.api_key, a.auth_token = a.api_key and true or nil, a.auth_token and true or nil
  o.api_key = o.api_key and true or nil
  return view
end

-- A preset from what a preset file returned: a preset value, a spec table, or a function of
-- the loaded config returning either.
function M.from_value(value, cfg, where)
  if cfg ~= nil then current_cfg = cfg end
  cfg = cfg or current_cfg
  if type(value) == "function" and not M.is_preset(value) then
    -- a base met while a script's own define runs, before anyone loaded the config
    if cfg == nil then cfg = config.load{}; current_cfg = cfg end
    -- a define{} it tail-calls leaves no frame for its file: name the file being loaded
    loading[#loading + 1] = where
    local ok, v = pcall(errors.call_user, where, value, M.config_view(cfg))
    loading[#loading] = nil
    if not ok then error(v, 0) end
    value = v
    if type(value) == "function" then
      errors.usage("%s: the function it returned must return a preset, not another function", where)
    end
  end
  if M.is_preset(value) then
    -- checked again: a preset value is a plain table that code may have changed since
    local problems = schema.problems(M.to_spec(value), SCHEMA, { unknown = "error", lua = true })
    if #problems.errors > 0 then problems_error(value.source or where, problems.errors) end
    return value
  end
  if type(value) == "table" then return build(value, where) end
  errors.usage("%s must return a preset (preset.define{...}, a table, or a function of the config), not %s",
    where, (value == nil or value == true) and "nothing" or ("a " .. type(value)))
end

-- Runs a preset chunk, remembering which file it is for define's messages.
local function run_chunk(chunk, path)
  for _, p in ipairs(loading) do
    if p == path then
      local chain = table.concat(loading, " → ") .. " → " .. path
      errors.config("%s: extends itself through %s (a cycle)", path, chain)
    end
  end
  loading[#loading + 1] = path
  local ok, value = pcall(errors.call_user, path, chunk)
  loading[#loading] = nil
  if not ok then error(value, 0) end
  return value
end

local function load_file(path)
  -- like `codeassist run`: a preset can require the modules next to it
  local dir = path:match("^(.*)/[^/]*$") or "."
  local entry = dir .. "/?.lua;"
  if package.path:sub(1, #entry) ~= entry then package.path = entry .. dir .. "/?/init.lua;" .. package.path end
  local st, why = require("codeassist.fs").stat(path)
  if st and st.type ~= "file" then errors.usage("preset %s: not a regular file", path) end
  if not st and why.kind ~= "not_found" then errors.usage("preset %s: %s", path, why.message) end
  local chunk, err = loadfile(path)
  if not chunk then
    if err:find("^cannot open") then errors.usage("preset %s: cannot open it (no such file?)", path) end
    errors.usage("%s", err)   -- a syntax error: "file:line: message"
  end
  return run_chunk(chunk, path)
end

local function looks_like_path(ref)
  return ref:find("/", 1, true) or ref:find("%.lua$")
end

-- A built-in preset by name.
local function builtin(name)
  loading[#loading + 1] = "presets/" .. name .. ".lua"
  local ok, mod = pcall(require, "presets." .. name)
  loading[#loading] = nil
  if ok then return mod end
  if tostring(mod):find("loop or previous error loading module", 1, true) then
    errors.config("presets/%s.lua extends itself (a cycle), or failed to load before", name)
  end
  if tostring(mod):find("module 'presets%." .. name:gsub("%p", "%%%0") .. "' not found") then
    errors.usage("no built-in preset named '%s'%s; built-in presets: %s", name,
      schema.did_you_mean(name, M.BUILTIN), table.concat(M.BUILTIN, ", "))
  end
  error(mod, 0)
end

local resolving = {}   -- base files being resolved now, to catch a cycle of extends

resolve_base = function(ref, where)
  if M.is_preset(ref) then return ref end
  if type(ref) ~= "string" then
    errors.usage("%s: extends must be the name of a built-in preset, a preset file, or a preset value, not a %s",
      where, type(ref))
  end
  local value
  if looks_like_path(ref) then
    local path = ref
    if not path:find("^/") then
      local dir = file_of(where):match("^(.*)/[^/]*$")
      if dir then path = dir .. "/" .. path end
    end
    if resolving[path] then errors.config("%s: extends %s, which extends it again (a cycle)", file_of(where), path) end
    resolving[path] = true
    local ok, v = pcall(function() return M.from_value(load_file(path), nil, path) end)
    resolving[path] = nil
    if not ok then error(v, 0) end
    value = v
  else
    value = M.from_value(builtin(ref), nil, "presets/" .. ref .. ".lua")
  end
  return value
end

-- Loads a preset: nil (routes from the config alone), a path to a Lua file, or the name of a
-- built-in one. cfg is handed to a preset that is a function of the config.
function M.load(ref, cfg)
  current_cfg = cfg
  if ref == nil then return build({ name = "config" }, "(no preset)") end
  errors.argcheck(type(ref) == "string", "preset.load: give a preset's name or file, not a %s", type(ref))
  -- a file of that name here wins, as with `codeassist run NAME`
  local st = require("codeassist.fs").stat(ref)
  if looks_like_path(ref) or (st and st.type == "file") then return M.from_value(load_file(ref), cfg, ref) end
  return M.from_value(builtin(ref), cfg, "presets/" .. ref .. ".lua")
end

-- ===== from a preset to a plan =====

-- Users say "claude"; the provider (and its module) is "anthropic". Shown as users say it.
local function provider_name(p)
  return p == "claude" and "anthropic" or p
end
M.provider_name = provider_name

function M.provider_label(provider)
  return provider == "anthropic" and "claude" or provider
end

-- A route as people read it, everywhere it is shown: "claude claude-sonnet-4-5".
function M.route_label(route)
  return tostring(M.provider_label(route.provider)) .. " " .. tostring(route.model)
end

local function default_model(cfg, provider)
  if provider == "ollama" then return cfg.providers.ollama.model end
  return (cfg.providers.claude and cfg.providers.claude.model) or cfg.providers.anthropic.model
end

-- A route spec ("claude", {provider, model, fallback, floor, default_model}) made concrete:
-- {provider = "anthropic"|"ollama", model, floor, fallback = route|nil, gate, origin}.
function M.resolve_route(cfg, gate, spec, origin, required)
  if type(spec) == "string" then spec = { provider = spec } end
  local provider = provider_name(spec.provider)
  local route = {
    provider = provider, gate = gate, origin = origin,
    model = spec.model or default_model(cfg, provider) or spec.default_model,
    floor = spec.floor or (required and "critical" or "degradable"),
  }
  local fb = spec.fallback
  if fb and fb ~= "none" then
    if type(fb) == "string" then fb = { provider = fb } end
    route.fallback = M.resolve_route(cfg, gate, fb, origin, false)   -- a fallback is degradable unless it says
  end
  return route
end

local TARGETS = { "target_score", "max_iterations", "iteration_delay" }
-- The flags of `codeassist run` that set them (the loop's; plan() takes them already).
local FLAG_NAMES = { target_score = "--target-score", max_iterations = "--max-iterations",
                     iteration_delay = "--iteration-delay" }

-- The plan: the preset applied to the config and the flags, with where each value came from.
-- flags: { target_score, max_iterations, iteration_delay, routes = {gate = spec} } (checked by the CLI)
function M.plan(p, cfg, flags)
  errors.argcheck(M.is_preset(p), "preset.plan: the first argument must be a preset (from preset.load or define), not %s",
    type(p))
  errors.argcheck(type(cfg) == "table" and type(cfg.providers) == "table",
    "preset.plan: the second argument must be the loaded config (config.load)")
  flags = flags or {}
  if flags.routes then
    local problems = schema.problems(flags.routes, SCHEMA.fields.routes, { unknown = "error", lua = true })
    if #problems.errors > 0 then
      errors.usage("--route: %s", table.concat(problems.errors, "; "))
    end
  end
  local plan = {
    name = p.name, description = p.description, source = p.source, extends = p.extends,
    gates = {}, routes = {}, origins = {}, notes = {},
  }
  for _, name in ipairs(M.HOOK_NAMES) do plan[name] = p[name] end
  for _, key in ipairs(TARGETS) do
    if flags[key] ~= nil then
      plan[key], plan.origins[key] = flags[key], "flag " .. FLAG_NAMES[key]
    elseif p[key] ~= nil then
      plan[key], plan.origins[key] = p[key], "preset " .. (p.origins[key] or p.source)
    else
      plan[key], plan.origins[key] = cfg[key], config.position(cfg, key) or "built-in default"
    end
  end

  -- the file's gates; a name it has wrong was warned about and is not a gate
  for _, name in ipairs(config.GATES) do
    if cfg.gates[name] then plan.gates[name] = deep_copy(cfg.gates[name]) end
  end
  for name, g in pairs(p.gates or {}) do
    plan.gates[name] = plan.gates[name] or {}
    config.merge(plan.gates[name], g)
  end
  for name, role in pairs(M.ROLES) do plan.gates[name] = deep_copy(role) end

  local file_routes = cfg.providers.gate_providers
  for name, gate in pairs(plan.gates) do
    local spec, origin
    local file_origin = file_routes[name] ~= nil
      and (config.position(cfg, "providers", "gate_providers", name) or "providers.gate_providers." .. name)
    if flags.routes and flags.routes[name] then
      spec, origin = flags.routes[name], "flag --route"
    elseif p.routes[name] ~= nil then
      spec, origin = p.routes[name], "preset " .. (p.origins["routes." .. name] or p.source)
    elseif p.default_route ~= nil then
      spec, origin = p.default_route, "preset " .. (p.origins.default_route or p.source) .. " (default_route)"
    elseif file_routes[name] ~= nil then
      spec, origin = file_routes[name], file_origin
    else
      spec = cfg.providers.default
      origin = config.position(cfg, "providers", "default") or "built-in default"
      origin = origin .. " (providers.default)"
    end
    if file_origin and origin ~= file_origin then
      plan.notes[#plan.notes + 1] = {
        gate = name,
        message = ("gate_providers.%s (%s) is not used: the %s route wins"):format(name, file_origin,
          origin:match("^flag") and "--route" or "preset's"),
      }
    end
    plan.routes[name] = M.resolve_route(cfg, name, spec, origin, gate.required == true)
  end

  -- The preset may route gates to Ollama while the file says it is off: say so, never reroute.
  if cfg.providers.ollama.enabled == false and config.position(cfg, "providers", "ollama", "enabled") then
    for name, r in pairs(plan.routes) do
      if r.provider == "ollama" and not r.origin:find(cfg.source.path, 1, true) then
        plan.notes[#plan.notes + 1] = { gate = name, message = ("%s sets providers.ollama.enabled: false, "
          .. "but the %s route uses Ollama"):format(config.position(cfg, "providers", "ollama", "enabled"), name) }
      end
    end
  end
  table.sort(plan.notes, function(a, b) return a.gate < b.gate end)
  return plan
end

-- A project's own gates (.codeassist/gates/*.lua), added to a plan that does not route them:
-- their defaults, routed like the config's default provider.
function M.add_project_gates(plan, gates, cfg)
  for name, g in pairs(gates) do
    if not plan.gates[name] then
      plan.gates[name] = { weight = g.weight or 0, required = g.required or false, parallel_group = g.parallel_group or 3,
                           timeout_ms = (g.timeout or 300) * 1000, tools = g.tools, context = g.context,
                           call_timeout = g.call_timeout }
      plan.routes[name] = M.resolve_route(cfg, name, cfg.providers.default, "project gate " .. g.source, false)
    end
  end
end

-- Every route of a gate, the planned one first, then its fallbacks:
--   for route, depth in preset.route_chain(plan.routes.build) do ... end
function M.route_chain(first)
  local route, depth = nil, -1
  return function()
    if depth < 0 then route = first else route = route and route.fallback end
    depth = depth + 1
    if route then return route, depth end
  end
end

-- The ctx a hook receives. The loop fills it as it goes; docs/PRESETS.md lists the fields.
function M.context(plan, fields)
  local ctx = {
    phase = "doctor", iteration = 0, attempt = 1, plan = deep_copy(plan),   -- a hook cannot change the plan
    history = {}, changed_files = {}, issue = nil,
  }
  for k, v in pairs(fields or {}) do ctx[k] = v end
  -- consecutive failures of a gate up to now (iterations where it did not run do not count)
  function ctx.failures(gate)
    local n = 0
    local h = ctx.history[gate] or {}
    for i = #h, 1, -1 do
      if h[i].passed then break end
      if h[i].status ~= "SKIPPED" then n = n + 1 end
    end
    return n
  end
  return ctx
end

return M
