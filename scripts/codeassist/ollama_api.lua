-- The one client of Ollama's HTTP API, shared by the provider, the doctor and `models`:
-- what the server is, what it has, what it has loaded, and the chat stream.
--
--   local ollama = require "codeassist.ollama_api"
--   local v, err = ollama.version(server)            -- {version = "0.32.15"}
--   local list = ollama.tags(server)                 -- models, with size, tier, capability
--   local facts = ollama.show(server, "qwen3-coder:latest")
--   local loaded = ollama.ps(server)                 -- name -> {context_length, size_vram, ...}
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

local function timeouts(server, scale)
  local t = server.timeout or 5
  return { connect = t, first_byte = t * scale, total = t * 2 * scale }
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

local function str(v) return type(v) == "string" and v or nil end

function M.version(server)
  check_server(server, "version")
  local doc, err = get(server, "/api/version")
  if not doc then return nil, err end
  return { version = str(doc.version) }
end

-- The installed models: {name, size, family, parameter_size, parameters, tier, capability}.
function M.tags(server)
  check_server(server, "tags")
  local doc, err = get(server, "/api/tags")
  if not doc then return nil, err end
  local list = {}
  for _, m in ipairs(type(doc.models) == "table" and doc.models or {}) do
    m = type(m) == "table" and m or {}
    local d = type(m.details) == "table" and m.details or {}
    local name = str(m.name) or str(m.model)
    if name then
      local size = str(d.parameter_size)
      local params = models.parameters(size)
      list[#list + 1] = {
        name = name, size = tonumber(m.size) or 0, family = str(d.family), parameter_size = size,
        quantization = str(d.quantization_level), parameters = params,
        tier = catalogue.tier(params), capability = catalogue.capability(name, str(d.family)),
      }
    end
  end
  return list
end

-- /api/show, reduced to what decisions need: capabilities (a set; has_capabilities says
-- whether the server reports them at all), context_length, and the shape for VRAM estimates.
function M.show(server, name)
  check_server(server, "show")
  errors.argcheck(type(name) == "string", "ollama_api.show: the model name must be a string")
  local doc, err = get(server, "/api/show", { model = name }, 2)
  if not doc then return nil, err end
  local facts = { capabilities = {}, has_capabilities = type(doc.capabilities) == "table" }
  for _, c in ipairs(facts.has_capabilities and doc.capabilities or {}) do facts.capabilities[c] = true end
  local info = type(doc.model_info) == "table" and doc.model_info or {}
  local arch = str(info["general.architecture"])
  local function field(k) return arch and tonumber(info[arch .. "." .. k]) end
  facts.context_length = field("context_length")
  facts.layers = field("block_count")
  local heads, kv_heads, width = field("attention.head_count"), field("attention.head_count_kv"), field("embedding_length")
  if heads and kv_heads and width and heads > 0 then facts.kv_width = math.floor(kv_heads * width / heads) end
  facts.parameters = tonumber(info["general.parameter_count"])
  return facts
end

-- What the server has loaded now: name -> {context_length, size, size_vram, expires_at}.
function M.ps(server)
  check_server(server, "ps")
  local doc, err = get(server, "/api/ps")
  if not doc then return nil, err end
  local loaded = {}
  for _, m in ipairs(type(doc.models) == "table" and doc.models or {}) do
    if type(m) == "table" and type(m.name) == "string" then
      loaded[m.name] = { context_length = tonumber(m.context_length), size = tonumber(m.size),
                         size_vram = tonumber(m.size_vram), expires_at = m.expires_at }
    end
  end
  return loaded
end

-- POST /api/chat, streamed: the response to read with :lines(), or nil and a failure.
-- body is the native chat request (a table); timeout as http.request takes it.
function M.chat(server, body, timeout)
  check_server(server, "chat")
  local text, err = json.encode(body)
  if not text then return nil, err end
  return http.request{
    method = "POST", url = M.root(server.base_url) .. "/api/chat", stream = "ndjson",
    headers = M.headers(server, { ["content-type"] = "application/json", accept = "application/x-ndjson" }),
    body = text, timeout = timeout,
  }
end

return M
