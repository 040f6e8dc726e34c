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
local schema = require "codeassist.schema"

-- URLs in messages lose their credentials (http.redact), loaded only when one is shown.
local function http_redact(url) return require("codeassist.http").redact(url) end

local M = {}

M.DEFAULT_PATH = ".claude/autonomous.yml"
M.GATES = { "test", "security", "build", "review", "mentor", "architect", "ux", "devops" }

-- The balanced layout of the original (the old runner's default gates), plus what the doctor needs:
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

-- Every model call's deadlines (seconds; the `timeouts` section): a cold local model can take
-- minutes before its first token, and no call may last for ever. And the most an answer may
-- stream (the `limits` section): an answer that never ends stops there with kind too_large.
M.DEFAULT_TIMEOUTS = { connect = 10, first_byte = 900, idle = 180, total = 1800 }
M.DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024

M.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
M.ANTHROPIC_MODEL = "claude-sonnet-4-5"
M.OLLAMA_BASE_URL = "http://localhost:11434"

-- ===== schema (see schema.lua for the node format) =====

local function num(min, max) return { type = "number", min = min, max = max } end
local function int(min, max) return { type = "integer", min = min, max = max } end
local bool = { type = "boolean" }
local str = { type = "string" }
local token = { type = "string", token = true }   -- model names, keys: no spaces or line breaks
local strings = { type = "list", each = str }
local legacy = { legacy = true }

M.PROVIDERS = { "claude", "anthropic", "ollama" }
M.FLOORS = { "critical", "degradable" }
-- What routes may name: the gates, and the implementing agent (routed and checked like a
-- gate, never scored; its needs are preset.ROLES).
M.ROUTABLE = { "implement" }
for _, g in ipairs(M.GATES) do M.ROUTABLE[#M.ROUTABLE + 1] = g end

local provider_node = { type = "string", enum = M.PROVIDERS }

-- A route: "claude" | "ollama", or {provider, model, fallback, floor}.
local route_fields = {
  provider = { type = "string", enum = M.PROVIDERS, required = true },
  model = token,
  fallback = { either = { { type = "string", enum = { "claude", "anthropic", "ollama", "none" } },
                          { type = "table", fields = { provider = provider_node, model = token } } } },
  floor = { type = "string", enum = M.FLOORS },
}
local route_node = { either = { provider_node, { type = "table", fields = route_fields } } }
M.route_node = route_node

local gate_fields = {
  weight = num(0, 100), required = bool, auto_fix = bool, parallel_group = int(0, 100),
  timeout_ms = int(1, 86400000), description = str,
  -- build/test: shell text, or {command, report = a JUnit/TAP file it writes}
  command = { either = { str, { type = "table", fields = { command = { type = "string", required = true }, report = str } } } },
  -- pass: a required gate passes at it; min_coverage: the test gate's coverage floor
  thresholds = { type = "table", fields = { pass = num(0, 100), min_coverage = num(0, 100) } },
  tools = bool, context = int(512, 10000000),
  -- seconds each model call of this gate may take in all (beats timeouts.total)
  call_timeout = num(0.1, 604800),
}
M.gate_fields = gate_fields
-- The file also accepts the old template's gate keys, which nothing ever read.
local file_gate_fields = { on_fail = legacy, creates_issues_for = legacy, remediation = legacy,
                           trigger = legacy, applies_to = legacy, output = legacy }
for k, v in pairs(gate_fields) do file_gate_fields[k] = v end
local gate_node = { type = "table", fields = file_gate_fields }

local SCHEMA = { type = "table", fields = {
  target_score = num(0, 100),
  max_iterations = int(1, 100),
  iteration_delay = num(0, 300),
  gates = { type = "table", each = gate_node, known = M.GATES, known_what = "gate", unknown = "warning" },
  presets = { type = "table", each = { type = "table", open = true } },
  providers = { type = "table", fields = {
    default = provider_node,
    ollama = { type = "table", fields = {
      enabled = bool,
      -- a pool: the doctor checks every server, so a generated list of thousands is refused
      base_url = { either = { { type = "url" }, { type = "list", each = { type = "url" }, min_items = 1, max_items = 64,
                                                  unique = true } } },
      model = token,
      api_key = token,
      protocol = { type = "string", enum = { "native", "anthropic" } },
      vram_gb = num(1, 100000),
      keep_alive = { either = { str, { type = "number" } } },
    } },
    anthropic = { type = "table", fields = { base_url = { type = "url" }, model = token } },
    claude = { type = "table", fields = { model = token } },
    gate_providers = { type = "table", each = route_node, known = M.ROUTABLE, known_what = "gate", unknown = "warning" },
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
  timeouts = { type = "table", fields = {
    connect = num(0.1, 3600), first_byte = num(0.1, 604800), idle = num(0.1, 604800), total = num(0.1, 604800),
  } },
  limits = { type = "table", fields = { max_answer_bytes = int(1024, 1099511627776) } },
  agent = { type = "table", fields = {
    sandbox = { type = "string", enum = { "auto", "required", "off" } },
    network = bool,
    bash_timeout = num(1, 86400),
    max_turns = int(1, 1000),
  } },
  scoring = legacy, auto_issues = legacy, intervention = legacy, preset = legacy,
} }
M.SCHEMA = SCHEMA

-- ===== validation =====


-- A file with thousands of mistakes (a generated or wrong file) gets this many of each
-- listed, in file order, then a count of the rest.
M.MAX_LISTED = 50

-- Validates a decoded document. marks come from yaml.load; name is the file for messages.
-- Returns { errors = {...}, warnings = {...}, error_count = n, warning_count = n }: the
-- lists hold at most MAX_LISTED problems each, then "… and N more" when there are more.
function M.validate(doc, marks, name)
  local found = { error = {}, warning = {} }
  local function at(parent, key)
    local m = parent and marks and marks[parent]
    local mark = m and (m.keys and m.keys[key] or m)
    if type(key) == "number" and m then mark = m end
    return mark
  end
  local function add(kind, mark, text)
    local list = found[kind]
    list[#list + 1] = { line = mark and mark.line or 0, col = mark and mark.col or 0, text = text, order = #list }
  end
  schema.check(doc, SCHEMA, function(kind, path, message, parent, key)
    add(kind, at(parent, key), (path ~= "" and (path .. ": ") or "") .. message)
  end, { unknown = "warning", null = yaml.null })
  -- Routes to Ollama need Ollama enabled: say so where "enabled" is written.
  local p = type(doc) == "table" and doc.providers
  if type(p) == "table" and type(p.ollama) == "table" and p.ollama.enabled == false then
    local routed = p.default == "ollama"
    for _, r in pairs(type(p.gate_providers) == "table" and p.gate_providers or {}) do
      routed = routed or r == "ollama" or (type(r) == "table" and r.provider == "ollama")
    end
    if routed then
      add("error", at(p.ollama, "enabled"), "providers.ollama.enabled: false, but gates are routed to Ollama; set it to true")
    end
  end
  -- In file order: by line, then column (the items of one list share its position: then as found).
  local function by_position(a, b)
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.order < b.order
  end
  local function listed(list, what)
    table.sort(list, by_position)
    local out = {}
    for i = 1, math.min(#list, M.MAX_LISTED) do
      local pr = list[i]
      out[i] = (pr.line > 0 and ("%s:%d:%d"):format(name, pr.line, pr.col) or name) .. ": " .. pr.text
    end
    if #list > M.MAX_LISTED then
      out[#out + 1] = ("%s: … and %d more %s not listed"):format(name, #list - M.MAX_LISTED, what)
    end
    return out
  end
  return { errors = listed(found.error, "errors"), warnings = listed(found.warning, "warnings"),
           error_count = #found.error, warning_count = #found.warning }
end

-- ===== loading =====

-- A copy that keeps sharing and cycles as they are: each table is copied once (a YAML file
-- of aliases of aliases must not grow exponentially here). Metatables are kept.
local function deep_copy(t, copies)
  if type(t) ~= "table" then return t end
  copies = copies or {}
  if copies[t] then return copies[t] end
  local c = {}
  copies[t] = c
  for k, v in pairs(t) do c[deep_copy(k, copies)] = deep_copy(v, copies) end
  return setmetatable(c, getmetatable(t))
end
M.deep_copy = deep_copy

-- Merges src into dst: mappings merge key by key (an empty one changes nothing), lists and
-- scalars replace.
local function merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" and #v == 0 and type(dst[k]) == "table" and #dst[k] == 0 and next(dst[k]) ~= nil then
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
    agent = { sandbox = "auto", network = false, bash_timeout = 120, max_turns = 50 },
    timeouts = deep_copy(M.DEFAULT_TIMEOUTS),
    limits = { max_answer_bytes = M.DEFAULT_MAX_ANSWER_BYTES },
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

-- OLLAMA_HOST as Ollama's own client reads it (envconfig.Host): "host", "host:port",
-- "scheme://host[:port][/path]", "[::1]:port", "0.0.0.0" (a bind address: this machine).
-- Without a port: 11434, or 80/443 when a scheme is given. A path is kept, so a mistaken
-- "/v1" is caught by the doctor instead of being glued onto the port. Returns the URL, or
-- nil and what is wrong.
function M.ollama_host_url(value)
  if not value or value:match("^%s*$") then return nil end
  value = value:match("^%s*(.-)%s*$")
  local scheme, rest = value:match("^(%a[%w+.-]*)://(.*)$")
  local default_port = "11434"
  if scheme then
    scheme = scheme:lower()
    if scheme ~= "http" and scheme ~= "https" then
      return nil, ("'%s' has the scheme %s://; use http:// or https://"):format(value, scheme)
    end
    default_port = scheme == "http" and "80" or "443"
  else
    scheme, rest = "http", value
  end
  local shown = http_redact(value)
  if value:find("[%s%c]") then return nil, ("'%s' contains a space or a control character"):format(shown) end
  if value:find("@", 1, true) then
    return nil, ("'%s' has credentials in it; put a key in providers.ollama.api_key instead"):format(shown)
  end
  local hostport, path = rest:match("^([^/?#]*)(.*)$")
  if path:find("[?#]") then return nil, ("'%s' has a query or fragment; give the server root"):format(shown) end
  local host, port = hostport:match("^%[([^%]]*)%]:(%d*)$")
  if not host then host = hostport:match("^%[([^%]]*)%]$") end
  if not host and not hostport:find("[%[%]]") then
    host, port = hostport:match("^([^:]*):(%d*)$")
    if not host then host = hostport end
  end
  if not host or host:find("[^%w%.%-_:]") or (host:find(":") and not hostport:find("^%[")) then
    return nil, ("'%s' is not a host, host:port or URL"):format(shown)
  end
  if port == "" then port = nil end
  if port and (tonumber(port) < 1 or tonumber(port) > 65535) then
    return nil, ("'%s': port %s is out of range (1-65535)"):format(shown, port)
  end
  if host == "" or host == "0.0.0.0" then host = "127.0.0.1" end
  if host:find(":") then host = "[" .. host .. "]" end
  path = path:gsub("/+$", "")
  return ("%s://%s:%s%s"):format(scheme, host, port or default_port, path)
end

-- Settings the environment gave: cfg.source.origins maps a dotted path to the variable.
local function set_origin(cfg, path, origin)
  cfg.source.origins[path] = origin
end

-- A credential from the environment: surrounding whitespace (a key pasted with its line
-- ending) is dropped; anything else unprintable is a problem, since it cannot go in a header.
local function credential(getenv, name, problems)
  local v = getenv(name)
  if not v then return nil end
  v = v:match("^%s*(.-)%s*$")
  if v == "" then return nil end
  if v:find("[%s%c]") then
    problems[#problems + 1] = ("%s contains a space or a control character inside it; check how it was set"):format(name)
    return nil
  end
  return v
end

-- Reads the environment into the config (between the defaults and the file). A value that
-- cannot be used is a config error naming the variable, never a crash later.
local function apply_env(cfg, getenv)
  local problems = {}
  local raw_host = getenv("OLLAMA_HOST")
  local host, why = M.ollama_host_url(raw_host)
  if host then
    cfg.providers.ollama.base_url = host
    set_origin(cfg, "providers.ollama.base_url", "OLLAMA_HOST")
  elseif why then
    problems[#problems + 1] = "OLLAMA_HOST=" .. why .. " (e.g. OLLAMA_HOST=gpu-box:11434 or http://gpu-box:11434)"
  end
  local base = getenv("ANTHROPIC_BASE_URL")
  if base and not base:match("^%s*$") then
    base = base:match("^%s*(.-)%s*$")
    local problem = schema.url_problem(base)
    if not problem then
      cfg.providers.anthropic.base_url = base
      set_origin(cfg, "providers.anthropic.base_url", "ANTHROPIC_BASE_URL")
    else
      problems[#problems + 1] = ("ANTHROPIC_BASE_URL='%s' %s (e.g. ANTHROPIC_BASE_URL=https://api.anthropic.com)")
        :format(http_redact(base), problem == "expected an http:// or https:// address"
          and "is not an http:// or https:// address" or problem)
    end
  end
  cfg.providers.anthropic.api_key = credential(getenv, "ANTHROPIC_API_KEY", problems)
  cfg.providers.anthropic.auth_token = credential(getenv, "ANTHROPIC_AUTH_TOKEN", problems)
  return problems
end

-- A setting named with where its value came from, for messages: "OLLAMA_HOST",
-- "providers.ollama.base_url (.claude/autonomous.yml:7)", "providers.ollama.base_url (built-in default)".
function M.origin(cfg, dotted)
  local parts = {}
  for part in dotted:gmatch("[^.]+") do parts[#parts + 1] = part end
  local pos = M.position(cfg, unpack(parts))
  if pos then return dotted .. " (" .. pos .. ")" end
  return cfg.source.origins[dotted] or (dotted .. " (built-in default)")
end

-- The file position of a key path ("providers", "gate_providers", "review"), if the file
-- set it: "path:line".
function M.position(cfg, ...)
  local doc, marks = cfg.source.doc, cfg.source.marks
  if not doc or not marks then return nil end
  local node, at = doc, nil
  for i = 1, select("#", ...) do
    local key = select(i, ...)
    if type(node) ~= "table" or node[key] == nil then return nil end
    local m = marks[node]
    at = m and m.keys and m.keys[key] or at
    node = node[key]
  end
  return at and ("%s:%d"):format(cfg.source.path, at.line) or nil
end

-- The top folder of the project holding `dir` (default: the current folder), as git finds it:
-- the nearest folder, upwards, with a .git entry; nil outside a repository. So a command run in
-- a subfolder reads the project's config and run folders, not the subfolder's.
function M.project_root(dir)
  local fs = require "codeassist.fs"
  dir = dir or fs.cwd()
  for _ = 1, 256 do   -- bounded: a path has far fewer levels
    if fs.stat(dir .. "/.git") then return dir end
    local up = dir:match("^(.*)/[^/]+/*$")
    if not up then return nil end
    dir = up ~= "" and up or "/"
    if dir == "/" then return fs.stat("/.git") and "/" or nil end
  end
end

-- The repository a command works on: --repo's folder, else the project this folder is in,
-- else this folder. A --repo that is not a folder is a usage error.
function M.repo_root(repo)
  local fs = require "codeassist.fs"
  local root = repo or M.project_root() or fs.cwd()
  local st = fs.stat(root)
  if not st or st.type ~= "dir" then
    require("codeassist.errors").usage("--repo %s: %s", root, st and "not a folder" or "no such folder")
  end
  return root
end

-- The config file a command reads when none is given: .claude/autonomous.yml here, or at the
-- top of the project when this is a subfolder of one.
function M.default_path()
  local fs = require "codeassist.fs"
  if fs.stat(M.DEFAULT_PATH) then return M.DEFAULT_PATH end   -- the usual case: no walk up
  local cwd = fs.cwd()
  local top = M.project_root(cwd)
  if top and top ~= cwd then return top .. "/" .. M.DEFAULT_PATH end
  return M.DEFAULT_PATH
end

-- Loads and validates the file (a missing file means defaults, said in cfg.source; a path
-- given explicitly must exist unless opts.missing_ok).
-- Raises a config error (exit 2) listing every problem with its position.
function M.load(opts)
  opts = opts or {}
  local path = opts.path or M.default_path()
  local getenv = opts.env or os.getenv
  local cfg = M.defaults()
  cfg.source = { path = path, found = false, warnings = {}, origins = {} }
  local env_problems = apply_env(cfg, getenv)
  if #env_problems > 0 then
    errors.config("the environment has %d problem%s:\n  %s", #env_problems, #env_problems == 1 and "" or "s",
      table.concat(env_problems, "\n  "))
  end

  local st, missing = fs.stat(path)
  if not st then
    if missing.kind ~= "not_found" then errors.config("config file %s: %s", path, missing.message) end
    if opts.path and not opts.missing_ok then errors.config("config file %s: not found", path) end
    return cfg
  end
  if st.type ~= "file" then   -- a FIFO would block the read for ever, a folder cannot be read
    errors.config("config file %s: not a regular file (it is a %s)", path, st.type == "dir" and "folder" or "special file")
  end
  local marks = {}
  local doc, err = yaml.load_file(path, { marks = marks })
  if doc == nil then errors.config("%s", err) end
  if doc == yaml.null then doc = {} end
  local problems = M.validate(doc, marks, path)
  if problems.error_count > 0 then
    local lines = {}
    for _, e in ipairs(problems.errors) do lines[#lines + 1] = e end
    for _, w in ipairs(problems.warnings) do lines[#lines + 1] = "warning: " .. w end
    errors.config("%s has %d problem%s:\n  %s", path, problems.error_count, problems.error_count == 1 and "" or "s",
      table.concat(lines, "\n  "))
  end
  cfg.source.found = true
  cfg.source.warnings = problems.warnings
  cfg.source.marks = marks
  cfg.source.doc = doc
  merge(cfg, doc)
  return cfg
end

return M
