-- The one client of Ollama's HTTP API, shared by the provider, the doctor and `models`:
-- what the server is, what it has, what it has loaded, and the chat stream.
--
--   local ollama = require "codeassist.ollama_api"
--   local v, err = ollama.version(server)            -- {version = "0.32.15", problems}
--   local list = ollama.tags(server)                 -- models, with size, tier, capability; list.problems
--   local facts = ollama.show(server, "qwen3-coder:latest")   -- facts.problems
--   local loaded, problems = ollama.ps(server)       -- name -> {context_length, size_vram, ...}
--   local res = ollama.chat(server, body, timeout)   -- an NDJSON response (http.request)
--
-- server = {base_url, api_key, timeout}: api_key (for a reverse proxy in front of Ollama) goes
-- only to that base URL; timeout is seconds for each check. Every call returns nil and a
-- failure when the server cannot answer.
local http = require "codeassist.http"
local json = require "codeassist.json"
local models = require "codeassist.models_core"
local catalogue = require "codeassist.catalogue"

local M = {}

-- The server root without trailing slashes.
function M.root(url)
  return (url:gsub("/+$", ""))
end

-- A base URL that ends in /v1 (the OpenAI-style path people paste) is the most common mistake.
function M.has_v1(url)
  return url:match("/v1/?$") ~= nil
end

function M.headers(server, extra)
  local h = {}
  for k, v in pairs(extra or {}) do h[k] = v end
  local key = server.api_key
  if key and key ~= "" and key ~= "ollama" then h.authorization = "Bearer " .. key end
  return h
end

-- A check's deadlines: the whole answer within 1.5 times its first byte's, so a server that
-- sends a byte a second holds a check for little longer than a silent one.
local function timeouts(server, scale)
  local t = server.timeout or 5
  return { connect = t, first_byte = t * scale, total = t * 1.5 * scale }
end

local errors = require "codeassist.errors"

local function check_server(server, fname)
  if type(server) ~= "table" or type(server.base_url) ~= "string" then
    error(("ollama_api.%s: the first argument must be {base_url = \"http://host:11434\", api_key, timeout}"):format(fname), 3)
  end
end

-- The answer as a JSON object, or nil and a failure (a server may answer anything).
local function get(server, path, body, scale)
  local url = M.root(server.base_url) .. path
  local doc, err = http.json(url, { body = body, headers = M.headers(server), timeout = timeouts(server, scale or 1) })
  if doc == nil then return nil, err end
  if type(doc) ~= "table" or #doc > 0 then
    return nil, errors.failure("protocol", ("%s %s: the answer is not a JSON object"):format(body and "POST" or "GET",
      http.redact(url)))
  end
  return doc
end

-- A server's JSON is checked before use: any field may hold anything. A field of the wrong
-- type (or a number that is NaN, infinite or negative) is left out and said in a problem that
-- names it: '/api/tags: models[3].size is "big", expected a number of bytes'. Absent fields
-- (and null) are simply unknown.
local describe, is_count, absent = json.describe, json.is_count, json.absent

local function say(problems, where, field, value, expected)
  problems[#problems + 1] = ("%s: %s is %s, expected %s"):format(where, field, describe(value), expected)
end

-- v when it is a string; nil (with a problem when it is something else).
local function str(v, problems, where, field)
  if type(v) == "string" then return v end
  if not absent(v) and problems then say(problems, where, field, v, "a string") end
  return nil
end

-- v when it is a number >= 0; nil (with a problem when it is something else).
local function count(v, problems, where, field, what)
  if is_count(v) then return v end
  if not absent(v) then say(problems, where, field, v, what or "a number >= 0") end
  return nil
end

-- The list a field holds ({} when absent), or nil and a failure when it holds something else.
local function list_field(doc, field, method, url)
  local v = doc[field]
  if absent(v) then return {} end
  if type(v) == "table" and (next(v) == nil or #v > 0) then return v end
  return nil, errors.failure("protocol", ("%s %s: %s is %s, expected a list"):format(method, http.redact(url), field,
    describe(v)))
end

-- {version = "0.32.15" | nil, problems = {...}}
function M.version(server)
  check_server(server, "version")
  local doc, err = get(server, "/api/version")
  if not doc then return nil, err end
  local problems = {}
  return { version = str(doc.version, problems, "/api/version", "version"), problems = problems }
end

-- The installed models: {name, size, family, parameter_size, parameters, tier, capability,
-- problems}; the list's `problems` says every field left out, of every model.
function M.tags(server)
  check_server(server, "tags")
  local doc, err = get(server, "/api/tags")
  if not doc then return nil, err end
  local entries
  entries, err = list_field(doc, "models", "GET", M.root(server.base_url) .. "/api/tags")
  if not entries then return nil, err end
  local list = { problems = {} }
  for i, m in ipairs(entries) do
    local at = ("models[%d]"):format(i)
    local problems = {}
    if type(m) ~= "table" then
      say(problems, "/api/tags", at, m, "an object")
      m = {}
    end
    local name = str(m.name, problems, "/api/tags", at .. ".name") or str(m.model, problems, "/api/tags", at .. ".model")
    if not name and type(entries[i]) == "table" and absent(m.name) and absent(m.model) then
      problems[#problems + 1] = ("/api/tags: %s has no name"):format(at)
    end
    local d = m.details
    if not absent(d) and type(d) ~= "table" then say(problems, "/api/tags", at .. ".details", d, "an object") end
    d = type(d) == "table" and d or {}
    local size = count(m.size, problems, "/api/tags", at .. ".size", "a number of bytes")
    local parameter_size = str(d.parameter_size, problems, "/api/tags", at .. ".details.parameter_size")
    local family = str(d.family, problems, "/api/tags", at .. ".details.family")
    local quantization = str(d.quantization_level, problems, "/api/tags", at .. ".details.quantization_level")
    if name then
      local params = models.parameters(parameter_size)
      list[#list + 1] = {
        name = name, size = size, family = family, parameter_size = parameter_size,
        quantization = quantization, parameters = params,
        tier = catalogue.tier(params), capability = catalogue.capability(name, family),
      }
    end
    for _, p in ipairs(problems) do list.problems[#list.problems + 1] = p end
  end
  return list
end

-- /api/show, reduced to what decisions need: capabilities (a set; has_capabilities says
-- whether the server reports them at all), context_length, the shape for VRAM estimates, and
-- problems (fields left out).
function M.show(server, name)
  check_server(server, "show")
  errors.argcheck(type(name) == "string", "ollama_api.show: the model name must be a string")
  local doc, err = get(server, "/api/show", { model = name }, 2)
  if not doc then return nil, err end
  local problems = {}
  local where = "/api/show " .. name
  local facts = { capabilities = {}, has_capabilities = false, problems = problems }
  local caps = doc.capabilities
  if type(caps) == "table" and (next(caps) == nil or #caps > 0) then
    facts.has_capabilities = true
    for i, c in ipairs(caps) do
      c = str(c, problems, where, ("capabilities[%d]"):format(i))
      if c then facts.capabilities[c] = true end
    end
  elseif not absent(caps) then
    say(problems, where, "capabilities", caps, "a list")
  end
  local info = doc.model_info
  if not absent(info) and type(info) ~= "table" then say(problems, where, "model_info", info, "an object") end
  info = type(info) == "table" and info or {}
  local arch = str(info["general.architecture"], problems, where, 'model_info["general.architecture"]')
  local function field(key)
    return count(info[key], problems, where, ('model_info["%s"]'):format(key), "a number")
  end
  if arch then
    facts.context_length = field(arch .. ".context_length")
    facts.layers = field(arch .. ".block_count")
    local heads, kv_heads = field(arch .. ".attention.head_count"), field(arch .. ".attention.head_count_kv")
    local width = field(arch .. ".embedding_length")
    if heads and kv_heads and width and heads > 0 then facts.kv_width = math.floor(kv_heads * width / heads) end
  end
  facts.parameters = field("general.parameter_count")
  return facts
end

-- What the server has loaded now: name -> {context_length, size, size_vram, expires_at}, and
-- the problems (entries and fields left out); or nil and a failure.
function M.ps(server)
  check_server(server, "ps")
  local doc, err = get(server, "/api/ps")
  if not doc then return nil, err end
  local entries
  entries, err = list_field(doc, "models", "GET", M.root(server.base_url) .. "/api/ps")
  if not entries then return nil, err end
  local loaded, problems = {}, {}
  for i, m in ipairs(entries) do
    local at = ("models[%d]"):format(i)
    if type(m) ~= "table" then
      say(problems, "/api/ps", at, m, "an object")
    elseif type(m.name) ~= "string" then
      if absent(m.name) then problems[#problems + 1] = ("/api/ps: %s has no name"):format(at)
      else say(problems, "/api/ps", at .. ".name", m.name, "a string") end
    else
      loaded[m.name] = { context_length = count(m.context_length, problems, "/api/ps", at .. ".context_length"),
                         size = count(m.size, problems, "/api/ps", at .. ".size", "a number of bytes"),
                         size_vram = count(m.size_vram, problems, "/api/ps", at .. ".size_vram", "a number of bytes"),
                         expires_at = str(m.expires_at, problems, "/api/ps", at .. ".expires_at") }
    end
  end
  return loaded, problems
end

-- POST /api/chat, streamed: the response to read with :lines(), or nil and a failure.
-- body is the native chat request (a table); timeout and max_body as http.request takes them.
function M.chat(server, body, timeout, max_body)
  check_server(server, "chat")
  local text, err = json.encode(body)
  if not text then return nil, err end
  return http.request{
    method = "POST", url = M.root(server.base_url) .. "/api/chat", stream = "ndjson",
    headers = M.headers(server, { ["content-type"] = "application/json", accept = "application/x-ndjson" }),
    body = text, timeout = timeout, max_body = max_body,
  }
end

return M
