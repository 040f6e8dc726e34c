-- The doctor's facts: what each Ollama server is, has and has loaded, what each routed model
-- is, and whether Claude credentials are there. Facts only, no verdicts (those are the
-- providers' assess_* functions), so the loop's scheduler can reuse them.
--
--   local facts = collect.run(cfg, plan, { timeout = 5, bus = bus, on_server = fn })
--   facts.ollama[url]   -- {url, origin, v1, error, latency, version, models, names, by_name, loaded,
--                           answer_problems (fields of the server's answers that were left out)}
--   facts.ollama_list   -- the same, in config order
--   facts.models[url .. "|" .. name]   -- {requested, name (matched) | nil, nearest, size, ..., show | show_error}
--   facts.claude        -- {base_url, origin, key_set, token_set} when a route uses Claude
local api = require "codeassist.ollama_api"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local models = require "codeassist.models_core"
local providers = require "codeassist.providers"
local preset = require "codeassist.preset"
local config = require "codeassist.config"
local schema = require "codeassist.schema"
local shown = require("codeassist.http").redact   -- URLs shown never carry credentials

local M = {}

-- Which providers, and which Ollama models, the plan's routes (fallbacks included) use.
function M.uses(plan, cfg)
  local used = { ollama = false, anthropic = false, ollama_models = {} }
  for _, name in ipairs(schema.sorted_keys(plan.routes)) do
    for r in preset.route_chain(plan.routes[name]) do
      used[r.provider] = true
      if r.provider == "ollama" and r.model and not used.ollama_models[r.model] then
        used.ollama_models[r.model] = true
        used.ollama_models[#used.ollama_models + 1] = r.model
      end
    end
  end
  local default = cfg.providers.ollama.model
  if used.ollama and default and not used.ollama_models[default] then
    used.ollama_models[default] = true
    used.ollama_models[#used.ollama_models + 1] = default
  end
  return used
end

-- Facts about one installed (or missing) model on a server.
local function collect_model(server, name)
  local m = { requested = name }
  local match, nearest = models.match(name, server.names)
  m.nearest = nearest or {}
  if not match then return m end
  m.name = match
  for k, v in pairs(server.by_name[match]) do if m[k] == nil then m[k] = v end end
  local facts, err = api.show(server.client, match)
  if facts then
    m.show = facts
    if not m.parameters and facts.parameters then m.parameters = facts.parameters end
  else
    m.show_error = err
  end
  return m
end

-- Facts about one server: version (and latency), models, what is loaded.
function M.server(url, client, origin)
  local s = { url = url, origin = origin, client = client, models = {}, names = {}, by_name = {} }
  if api.has_v1(url) then
    s.v1 = true      -- nothing is sent to a base URL we know is wrong
    return s
  end
  local t0 = clock.monotonic()
  local v, err = api.version(client)
  if not v then
    s.error = err
    return s
  end
  s.latency, s.version = clock.monotonic() - t0, v.version
  -- fields of the server's answers that were left out (wrong types): warnings, said once
  s.answer_problems = {}
  local function note(list) for _, p in ipairs(list or {}) do s.answer_problems[#s.answer_problems + 1] = p end end
  note(v.problems)
  local list
  list, err = api.tags(client)
  if not list then
    s.tags_error = err
    return s
  end
  s.models = list
  note(list.problems)
  for _, m in ipairs(list) do
    s.names[#s.names + 1] = m.name
    s.by_name[m.name] = m
  end
  local loaded, problems = api.ps(client)
  s.loaded = loaded or {}
  if loaded then note(problems) end
  return s
end

-- Runs every check concurrently; on_claude(claude) hears of the Claude facts at once,
-- on_server(server, facts) of each server as soon as it and its models are done. bus
-- (optional) gets progress for the slow steps.
function M.run(cfg, plan, opts)
  opts = opts or {}
  local bus = opts.bus
  local facts = { ollama = {}, ollama_list = {}, models = {}, probes = {} }
  local used = M.uses(plan, cfg)
  if used.anthropic then
    local a = cfg.providers.anthropic
    facts.claude = { base_url = a.base_url, key_set = a.api_key ~= nil, token_set = a.auth_token ~= nil,
                     origin = config.origin(cfg, "providers.anthropic.base_url") }
    if opts.on_claude then opts.on_claude(facts.claude) end
  end
  if not used.ollama then return facts end

  local origin = config.origin(cfg, "providers.ollama.base_url")
  local jobs = {}
  for _, url in ipairs(providers.base_urls(cfg, "ollama")) do
    local client = { base_url = url, api_key = cfg.providers.ollama.api_key, timeout = opts.timeout or 5 }
    jobs[#jobs + 1] = task.spawn(function()
      local progress = bus and bus:progress("checking Ollama at " .. shown(url))
      local s = M.server(url, client, origin)
      facts.ollama[url] = s
      if not s.error and not s.v1 and not s.tags_error then
        local inner = {}
        for _, name in ipairs(used.ollama_models) do
          inner[#inner + 1] = task.spawn(function()
            local p = bus and bus:progress(("reading %s on %s"):format(name, shown(url)))
            facts.models[url .. "|" .. name] = collect_model(s, name)
            if p then p:done() end
          end)
        end
        task.join_all(inner)
      end
      if progress then progress:done() end
      if opts.on_server then opts.on_server(s, facts) end
    end)
  end
  task.join_all(jobs)
  for _, url in ipairs(providers.base_urls(cfg, "ollama")) do facts.ollama_list[#facts.ollama_list + 1] = facts.ollama[url] end
  return facts
end

return M
