-- `.claude/autonomous.yml`: the original runner's format, validated with file:line:col errors.
--
--   local config = require "codeassist.config"
--   local cfg, problems = config.load{ path = ".claude/autonomous.yml", env = os.getenv }
--   -- cfg: defaults < environment < the file; problems.errors / problems.warnings
--
-- Errors (wrong types, out-of-range numbers, unknown providers) stop the run with exit 2;
-- unknown keys are warnings with a "did you mean"; keys the original's template carried but
-- never used are accepted and ignored. Nothing falls back silently to defaults.
local yaml = require "codeassist.yaml"
local fs = require "codeassist.fs"
local errors = require "codeassist.errors"

local M = {}

M.DEFAULT_PATH = ".claude/autonomous.yml"
M.GATES = { "test", "security", "build", "review", "mentor", "architect", "ux", "devops" }

-- The balanced layout of the original (original-runner.md §3.2), plus what the doctor needs:
-- whether a gate's model must call tools, and the prompt size it must fit (tokens).
local GATE_DEFAULTS = {
  test      = { weight = 20, required = true,  auto_fix = true,  parallel_group = 1, tools = true,  context = 32768, description = "Tests pass + coverage" },
  security  = { weight = 20, required = true,  auto_fix = true,  parallel_group = 1, tools = false, context = 32768, description = "No critical vulnerabilities" },
  build     = { weight = 10, required = true,  auto_fix = true,  parallel_group = 1, tools = true,  context = 16384, description = "Project compiles" },
  review    = { weight = 15, required = false, auto_fix = true,  parallel_group = 2, tools = false, context = 32768, description = "Code quality, smells" },
  mentor    = { weight = 15, required = true,  auto_fix = false, parallel_group = 2, tools = false, context = 32768, description = "Architecture review" },
  architect = { weight = 10, required = false, auto_fix = false, parallel_group = 3, tools = false, context = 32768, description = "System security & performance" },
  ux        = { weight = 5,  required = false, auto_fix = false, parallel_group = 3, tools = false, context = 16384, description = "Accessibility (frontend)" },
  devops    = { weight = 5,  required = false, auto_fix = false, parallel_group = 3, tools = false, context = 16384, description = "CI/CD review" },
}
M.GATE_DEFAULTS = GATE_DEFAULTS

M.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
M.ANTHROPIC_MODEL = "claude-sonnet-4-5"
M.OLLAMA_BASE_URL = "http://localhost:11434"

-- ===== schema =====
-- A node: { type = "number"|"integer"|"boolean"|"string"|"url"|"table"|"list", min, max,
--           enum = {...}, fields = {...} (table), each = node (table values / list items),
--           legacy = true (accepted, unused), either = {node, node} }

local function num(min, max) return { type = "number", min = min, max = max } end
local function int(min, max) return { type = "integer", min = min, max = max } end
local bool = { type = "boolean" }
local str = { type = "string" }
local strings = { type = "list", each = str }
local legacy = { legacy = true }

local route_node = { either = {
  { type = "string", enum = { "claude", "anthropic", "ollama" } },
  { type = "table", fields = {
    provider = { type = "string", enum = { "claude", "anthropic", "ollama" }, required = true },
    model = str,
    fallback = { either = { { type = "string", enum = { "claude", "anthropic", "ollama", "none" } },
                            { type = "table", fields = { provider = { type = "string", enum = { "claude", "anthropic", "ollama" } }, model = str } } } },
    floor = { type = "string", enum = { "critical", "degradable" } },
  } },
} }

local gate_node = { type = "table", fields = {
  weight = num(0, 100), required = bool, auto_fix = bool, parallel_group = int(0, 100),
  timeout_ms = int(1, 86400000), command = str, description = str,
  thresholds = { type = "table", each = { type = "number" } },
  tools = bool, context = int(512, 10000000),
  on_fail = legacy, creates_issues_for = legacy, remediation = legacy, trigger = legacy,
  applies_to = legacy, output = legacy,
} }

local SCHEMA = { type = "table", fields = {
  target_score = num(0, 100),
  max_iterations = int(1, 100),
  iteration_delay = num(0, 300),
  gates = { type = "table", each = gate_node },
  presets = { type = "table", each = { type = "table", open = true } },
  providers = { type = "table", fields = {
    default = { type = "string", enum = { "claude", "anthropic", "ollama" } },
    ollama = { type = "table", fields = {
      enabled = bool,
      base_url = { either = { { type = "url" }, { type = "list", each = { type = "url" } } } },
      model = str,
      api_key = str,
      protocol = { type = "string", enum = { "native", "anthropic" } },
      vram_gb = num(0, 100000),
      keep_alive = { either = { str, { type = "number" } } },
    } },
    anthropic = { type = "table", fields = { base_url = { type = "url" }, model = str } },
    claude = { type = "table", fields = { model = str } },
    gate_providers = { type = "table", each = route_node },
  } },
  safety = { type = "table", fields = {
    max_api_calls_per_hour = int(1, 1000),
    max_issues_created_per_run = int(0, 50),
    forbidden = strings,
    max_cost_usd = num(0, 1000000),
    max_file_changes_per_iteration = legacy,
  } },
  git_rules = { type = "table", fields = {
    protected_branches = strings,
    branch_flow = { type = "table", fields = { feature = str, develop = str, staging = str, hotfix = str } },
    commit_rules = { type = "table", fields = { forbidden_patterns = strings, auto_strip = bool,
                                                format = legacy, max_length = legacy } },
    pr_required = legacy, pr_review_required = legacy,
  } },
  scoring = legacy, auto_issues = legacy, intervention = legacy, preset = legacy,
} }
M.SCHEMA = SCHEMA

-- ===== validation =====

-- The closest of the known names, if it is close enough to be a typo.
function M.suggest(name, known)
  local best, best_d
  local distance = require("codeassist.models_core").distance
  for _, k in ipairs(known) do
    local limit = math.max(1, math.floor(#k / 4)) + 1
    local d = distance(name, k, limit)
    if d <= limit and (not best_d or d < best_d) then best, best_d = k, d end
  end
  return best
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function type_name(v)
  if v == yaml.null then return "null" end
  if type(v) == "table" then return #v > 0 and "a list" or "a mapping" end
  return ("a %s (%s)"):format(type(v), tostring(v))
end

local function is_url(v)
  return type(v) == "string" and v:match("^https?://[^/%s]+") ~= nil
end

-- Checks value against node; reports through problems(kind, path, message, parent, key).
local function check(value, node, path, report, parent, key)
  if node.legacy then return end
  if node.either then
    local first_problem
    for _, alt in ipairs(node.either) do
      local failed
      check(value, alt, path, function(kind, ...) if kind == "error" then failed = failed or { ... } end end, parent, key)
      if not failed then
        check(value, alt, path, report, parent, key)
        return
      end
      first_problem = first_problem or failed
    end
    return report("error", path, first_problem[2], parent, key)
  end
  local t = node.type
  if t == "number" or t == "integer" then
    if type(value) ~= "number" then return report("error", path, "expected a number, found " .. type_name(value), parent, key) end
    if t == "integer" and value % 1 ~= 0 then return report("error", path, "expected a whole number, found " .. value, parent, key) end
    if (node.min and value < node.min) or (node.max and value > node.max) then
      return report("error", path, ("must be between %s and %s, found %s"):format(node.min, node.max, value), parent, key)
    end
  elseif t == "boolean" then
    if type(value) ~= "boolean" then return report("error", path, "expected true or false, found " .. type_name(value), parent, key) end
  elseif t == "string" then
    if type(value) ~= "string" then return report("error", path, "expected a string, found " .. type_name(value), parent, key) end
    if node.enum then
      for _, e in ipairs(node.enum) do if e == value then return end end
      local hint = M.suggest(value, node.enum)
      return report("error", path, ("'%s' is not one of %s%s"):format(value, table.concat(node.enum, ", "),
        hint and (" — did you mean '" .. hint .. "'?") or ""), parent, key)
    end
  elseif t == "url" then
    if not is_url(value) then
      return report("error", path, ("expected an http:// or https:// address, found %s"):format(type_name(value)), parent, key)
    end
  elseif t == "list" then
    if type(value) ~= "table" or (next(value) ~= nil and #value == 0) then
      return report("error", path, "expected a list, found " .. type_name(value), parent, key)
    end
    for i, item in ipairs(value) do check(item, node.each, path .. "[" .. i .. "]", report, value, i) end
  elseif t == "table" then
    if type(value) ~= "table" or (#value > 0) then
      return report("error", path, "expected a mapping of keys to values, found " .. type_name(value), parent, key)
    end
    if node.open then return end
    for _, k in ipairs(sorted_keys(value)) do
      local child = node.fields and node.fields[k] or node.each
      local child_path = path == "" and k or (path .. "." .. k)
      if child then
        check(value[k], child, child_path, report, value, k)
      else
        local hint = node.fields and M.suggest(k, sorted_keys(node.fields))
        report("warning", child_path, "unknown key" .. (hint and (" — did you mean '" .. hint .. "'?") or " (ignored)"), value, k)
      end
    end
    for k, child in pairs(node.fields or {}) do
      if child.required and value[k] == nil then
        report("error", path, ("'%s' is required"):format(k), parent, key)
      end
    end
  end
end

-- Validates a decoded document. marks come from yaml.load; name is the file for messages.
function M.validate(doc, marks, name)
  local problems = { errors = {}, warnings = {} }
  local function where(parent, key)
    local m = parent and marks and marks[parent]
    local at = m and (m.keys and m.keys[key] or m)
    if type(key) == "number" and m then at = m end
    if at then return ("%s:%d:%d"):format(name, at.line, at.col) end
    return name
  end
  check(doc, SCHEMA, "", function(kind, path, message, parent, key)
    local list = kind == "error" and problems.errors or problems.warnings
    list[#list + 1] = ("%s: %s%s"):format(where(parent, key), path ~= "" and (path .. ": ") or "", message)
  end, nil, nil)
  -- Routes to Ollama need Ollama enabled: say so where "enabled" is written.
  local p = type(doc) == "table" and doc.providers
  if type(p) == "table" and type(p.ollama) == "table" and p.ollama.enabled == false then
    local routed = p.default == "ollama"
    for _, r in pairs(type(p.gate_providers) == "table" and p.gate_providers or {}) do
      routed = routed or r == "ollama" or (type(r) == "table" and r.provider == "ollama")
    end
    if routed then
      problems.errors[#problems.errors + 1] = ("%s: providers.ollama.enabled: false, but gates are routed to Ollama; set it to true")
        :format(where(p.ollama, "enabled"))
    end
  end
  -- In file order: by line, then column.
  local function position(msg)
    local line, col = msg:match(":(%d+):(%d+): ")
    return (tonumber(line) or 0) * 100000 + (tonumber(col) or 0)
  end
  local function by_position(a, b) return position(a) < position(b) end
  table.sort(problems.errors, by_position)
  table.sort(problems.warnings, by_position)
  return problems
end

-- ===== loading =====

local function deep_copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deep_copy(v) end
  return c
end
M.deep_copy = deep_copy

-- Merges src into dst: tables merge key by key, lists and scalars replace.
local function merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" and type(dst[k]) == "table" and #v == 0 and next(v) ~= nil then
      merge(dst[k], v)
    elseif v ~= yaml.null then
      dst[k] = deep_copy(v)
    end
  end
  return dst
end
M.merge = merge

function M.defaults()
  local gates = {}
  for name, g in pairs(GATE_DEFAULTS) do gates[name] = deep_copy(g); gates[name].timeout_ms = 300000 end
  return {
    target_score = 95, max_iterations = 15, iteration_delay = 5,
    gates = gates, presets = {},
    providers = {
      default = "claude",
      ollama = { enabled = false, base_url = M.OLLAMA_BASE_URL, protocol = "native" },
      anthropic = { base_url = M.ANTHROPIC_BASE_URL, model = M.ANTHROPIC_MODEL },
      gate_providers = {},
    },
    safety = { max_api_calls_per_hour = 100, max_issues_created_per_run = 10,
               forbidden = { "force_push", "push_to_main", "auto_merge" } },
    git_rules = {
      protected_branches = { "main", "master", "staging" },
      branch_flow = { feature = "develop", develop = "staging", staging = "main", hotfix = "main" },
      commit_rules = { forbidden_patterns = { "Co-Authored-By: Claude", "Co-Authored-By:.*anthropic",
                                              "Generated by Claude", "AI-generated" }, auto_strip = true },
    },
  }
end

-- OLLAMA_HOST as Ollama's own client reads it: "host", "host:port", "http://host:port",
-- "0.0.0.0" (a bind address: means this machine).
function M.ollama_host_url(value)
  if not value or value == "" then return nil end
  local scheme, rest = value:match("^(https?)://(.*)$")
  rest = (rest or value):gsub("/+$", "")
  local host, port = rest:match("^%[?([^%]]*)%]?:(%d+)$")
  host = host or rest
  if host == "" or host == "0.0.0.0" then host = "127.0.0.1" end
  port = port or (scheme == "https" and "443" or "11434")
  return ("%s://%s:%s"):format(scheme or "http", host, port)
end

-- Reads the environment into the config (between the defaults and the file).
local function apply_env(cfg, getenv)
  local host = M.ollama_host_url(getenv("OLLAMA_HOST"))
  if host then cfg.providers.ollama.base_url = host end
  local base = getenv("ANTHROPIC_BASE_URL")
  if base and base ~= "" then cfg.providers.anthropic.base_url = base end
  cfg.providers.anthropic.api_key = getenv("ANTHROPIC_API_KEY")
  cfg.providers.anthropic.auth_token = getenv("ANTHROPIC_AUTH_TOKEN")
  if cfg.providers.anthropic.api_key == "" then cfg.providers.anthropic.api_key = nil end
  if cfg.providers.anthropic.auth_token == "" then cfg.providers.anthropic.auth_token = nil end
end

-- Loads and validates the file (a missing file means defaults, said in cfg.source).
-- Raises a config error (exit 2) listing every problem with its position.
function M.load(opts)
  opts = opts or {}
  local path = opts.path or M.DEFAULT_PATH
  local getenv = opts.env or os.getenv
  local cfg = M.defaults()
  apply_env(cfg, getenv)
  cfg.source = { path = path, found = false, warnings = {} }

  local st = fs.stat(path)
  if not st then
    if opts.path then errors.config("config file %s: not found", path) end
    return cfg
  end
  local marks = {}
  local doc, err = yaml.load_file(path, { marks = marks })
  if doc == nil then errors.config("%s", err) end
  if doc == yaml.null then doc = {} end
  local problems = M.validate(doc, marks, path)
  if #problems.errors > 0 then
    local lines = {}
    for _, e in ipairs(problems.errors) do lines[#lines + 1] = e end
    for _, w in ipairs(problems.warnings) do lines[#lines + 1] = "warning: " .. w end
    errors.config("%s has %d problem%s:\n  %s", path, #problems.errors, #problems.errors == 1 and "" or "s",
      table.concat(lines, "\n  "))
  end
  cfg.source.found = true
  cfg.source.warnings = problems.warnings
  cfg.source.marks = marks
  cfg.source.doc = doc
  -- Short-form gate routes become tables; "claude" is the anthropic provider.
  merge(cfg, doc)
  return cfg
end

-- ===== routes =====

local function provider_name(p)
  if p == "claude" then return "anthropic" end
  return p
end
M.provider_name = provider_name

-- The provider settings for a route's provider name.
function M.provider_settings(cfg, name)
  return cfg.providers[name == "anthropic" and "anthropic" or name]
end

-- A route for a gate from the config alone: gate_providers, else providers.default.
-- {provider = "anthropic"|"ollama", model, fallback = route|nil, floor}
function M.route(cfg, gate, spec)
  spec = spec or cfg.providers.gate_providers[gate] or cfg.providers.default
  if type(spec) == "string" then spec = { provider = spec } end
  local provider = provider_name(spec.provider)
  local model = spec.model
  if not model then
    model = provider == "ollama" and cfg.providers.ollama.model
      or (cfg.providers.claude and cfg.providers.claude.model) or cfg.providers.anthropic.model
  end
  local route = { provider = provider, model = model, floor = spec.floor, gate = gate }
  if spec.fallback and spec.fallback ~= "none" then
    local fb = spec.fallback
    route.fallback = M.route(cfg, gate, type(fb) == "string" and { provider = fb } or fb)
  end
  return route
end

return M
