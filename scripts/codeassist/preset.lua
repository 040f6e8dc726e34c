-- Presets: Lua files that turn the loaded config into a plan.
--
-- A preset file returns a table (see define) or a function(cfg) returning a plan. Built-in
-- presets (presets/*.lua, also compiled in as `presets.<name>`) change routing and targets
-- only; connection facts (base URLs, the default model, keys) come from config and
-- environment. Routes the user wrote in `providers.gate_providers` win over a preset's.
--
-- A plan: { name, target_score, max_iterations, iteration_delay,
--           gates = { <gate> = {weight, required, parallel_group, tools, context, ...} },
--           routes = { <gate or "implement"> = {provider, model, fallback, floor} } }
local config = require "codeassist.config"
local errors = require "codeassist.errors"

local M = {}

-- The implementing agent is routed like a gate but is not scored.
M.ROLES = { implement = { tools = true, context = 65536, required = true, parallel_group = 0,
                          description = "Implements the issue (agent with edit tools)" } }

local function route_for(cfg, gate, spec, force)
  local user = not force and cfg.providers.gate_providers[gate]
  return config.route(cfg, gate, user or spec)
end

-- spec: { name, description, target_score, max_iterations, gates = {<gate> = {weight, required}},
--         routes = {<gate> = "claude" | "ollama" | {provider, model, fallback, floor}},
--         default_route = same (for gates not listed),
--         force_routes = true (ignore the user's gate_providers) }
function M.define(spec)
  return function(cfg)
    local plan = {
      name = spec.name, description = spec.description,
      target_score = spec.target_score or cfg.target_score,
      max_iterations = spec.max_iterations or cfg.max_iterations,
      iteration_delay = cfg.iteration_delay,
      gates = {}, routes = {},
    }
    for name, g in pairs(cfg.gates) do plan.gates[name] = config.deep_copy(g) end
    for name, g in pairs(spec.gates or {}) do
      plan.gates[name] = plan.gates[name] or {}
      config.merge(plan.gates[name], g)
    end
    for name, role in pairs(M.ROLES) do plan.gates[name] = config.deep_copy(role) end
    for name in pairs(plan.gates) do
      plan.routes[name] = route_for(cfg, name, (spec.routes or {})[name] or spec.default_route, spec.force_routes)
    end
    return plan
  end
end

-- Where built-in presets live on disk next to the binary's sources, for listing.
M.BUILTIN = { "claude", "ollama_hybrid", "ollama_only", "production", "prototype" }

-- Loads a preset: a path to a Lua file, or the name of a built-in one.
-- Returns the plan built from cfg.
function M.load(ref, cfg)
  local fn, where
  if ref == nil then
    fn, where = M.define{ name = "config" }, "the config file"
  elseif ref:find("/") or ref:find("%.lua$") then
    local chunk, err = loadfile(ref)
    if not chunk then
      if err:find("^cannot open") then errors.usage("preset %s: cannot open it", ref) end
      errors.usage("%s", err)
    end
    fn, where = chunk(), ref
  else
    local ok, mod = pcall(require, "presets." .. ref)
    if not ok then
      local hint = config.suggest(ref, M.BUILTIN)
      errors.usage("no built-in preset named '%s'%s; built-in presets: %s", ref,
        hint and (" — did you mean '" .. hint .. "'?") or "", table.concat(M.BUILTIN, ", "))
    end
    fn, where = mod, "presets/" .. ref .. ".lua"
  end
  local plan = M.from_value(fn, cfg, where)
  plan.name = plan.name or (ref and ref:match("([^/]+)%.lua$")) or ref or "config"
  return plan
end

-- A plan from what a preset file returned: a table (see define) or a function of the config.
function M.from_value(value, cfg, where)
  if type(value) == "table" then value = M.define(value) end
  if type(value) ~= "function" then
    errors.usage("%s must return a preset (a table or a function of the config), not %s", where, type(value))
  end
  local plan = value(cfg)
  if type(plan) ~= "table" or type(plan.routes) ~= "table" then
    errors.usage("%s returned no plan with routes", where)
  end
  plan.name = plan.name or (where:match("([^/]+)%.lua$"))
  return plan
end

return M
