-- The native Ollama adapter: POST {base}/api/chat, streamed as NDJSON. The only path that can
-- size the context window per request (options.num_ctx), keep a model loaded (keep_alive) and
-- constrain a verdict with a JSON schema (format). Internal messages are Anthropic content
-- blocks; this file translates at the edge both ways.
local api = require "codeassist.ollama_api"
local http_excerpt = require("codeassist.http").excerpt
local cjson = require "cjson.safe"

local M = {}

M.MIN_CTX = 4096
M.CTX_STEP = 1024

local failure = require("codeassist.errors").failure

local function text_of(content)
  if type(content) == "string" then return content end
  local parts = {}
  for _, b in ipairs(content or {}) do
    if b.type == "text" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts)
end

-- Anthropic-style messages -> Ollama chat messages.
function M.messages(req)
  local out = {}
  if req.system then
    out[#out + 1] = { role = "system", content = type(req.system) == "string" and req.system or text_of(req.system) }
  end
  local names = {}   -- tool_use id -> tool name, for tool results
  for _, m in ipairs(req.messages or {}) do
    if type(m.content) == "string" then
      out[#out + 1] = { role = m.role, content = m.content }
    elseif m.role == "assistant" then
      local msg = { role = "assistant", content = "" }
      local texts, calls = {}, {}
      for _, b in ipairs(m.content) do
        if b.type == "text" then texts[#texts + 1] = b.text
        elseif b.type == "thinking" then msg.thinking = b.thinking
        elseif b.type == "tool_use" then
          names[b.id] = b.name
          calls[#calls + 1] = { id = b.id, ["function"] = { name = b.name, arguments = b.input or {} } }
        end
      end
      msg.content = table.concat(texts)
      if #calls > 0 then msg.tool_calls = calls end
      out[#out + 1] = msg
    else
      -- tool results first (Ollama's own layer orders them so), then the user's text
      for _, b in ipairs(m.content) do
        if b.type == "tool_result" then
          out[#out + 1] = { role = "tool", content = text_of(b.content), tool_call_id = b.tool_use_id,
                            tool_name = names[b.tool_use_id] }
        end
      end
      local text = text_of(m.content)
      local images = {}
      for _, b in ipairs(m.content) do
        if b.type == "image" and b.source and b.source.type == "base64" then images[#images + 1] = b.source.data end
      end
      if text ~= "" or #images > 0 then
        out[#out + 1] = { role = m.role, content = text, images = #images > 0 and images or nil }
      end
    end
  end
  return out
end

function M.tools(req)
  if not req.tools or #req.tools == 0 then return nil end
  local out = {}
  for _, t in ipairs(req.tools) do
    out[#out + 1] = { type = "function", ["function"] = { name = t.name, description = t.description,
                                                            parameters = t.input_schema } }
  end
  return out
end

-- The context window for this request: the prompt's estimated tokens x 1.25 plus the answer's
-- reserve, rounded up, at least MIN_CTX — so Ollama never silently drops the start of a long
-- prompt — and at most model_ctx, the model's own window, when the caller knows it (opts.
-- context_length: the doctor's /api/show facts).
function M.num_ctx(body, max_tokens, model_ctx)
  local chars = #(cjson.encode(body.messages) or "") + #(cjson.encode(body.tools or {}) or "")
  local want = math.ceil(chars / 4 * 1.25) + (max_tokens or 4096)
  want = math.max(M.MIN_CTX, math.ceil(want / M.CTX_STEP) * M.CTX_STEP)
  if model_ctx and model_ctx > 0 then want = math.min(want, model_ctx) end
  return want
end

function M.body(req, route, opts)
  local body = {
    model = route.model, stream = true, messages = M.messages(req), tools = M.tools(req),
    think = req.thinking and true or nil, format = req.format, keep_alive = opts.keep_alive,
  }
  body.options = { num_ctx = M.num_ctx(body, req.max_tokens, opts.context_length),
                   num_predict = req.max_tokens, temperature = req.temperature, stop = req.stop_sequences }
  return body
end

local STOP = { stop = "end_turn", length = "max_tokens", load = "end_turn", unload = "end_turn" }

-- A server's JSON is checked before use: any field may hold anything. A field that is not what
-- the protocol says is a protocol failure naming it and what it held.
local describe = require("codeassist.json").describe
local is_count = require("codeassist.json").is_count

local absent = require("codeassist.json").absent

local function wrong(field, value, expected)
  return failure("protocol", ("a line of the stream: %s is %s, expected %s"):format(field, describe(value), expected))
end

local COUNTS = { "prompt_eval_count", "eval_count", "total_duration", "load_duration", "prompt_eval_duration",
                 "eval_duration" }
local LINE_STRINGS, MESSAGE_STRINGS = { "model", "done_reason" }, { "content", "thinking" }   -- checked per line

-- Checks one line's fields; the failure, or nil when they are all usable.
local function check_line(line)
  if not absent(line.done) and type(line.done) ~= "boolean" then return wrong("done", line.done, "true or false") end
  for _, f in ipairs(LINE_STRINGS) do
    if not absent(line[f]) and type(line[f]) ~= "string" then return wrong(f, line[f], "a string") end
  end
  for _, f in ipairs(COUNTS) do
    if not absent(line[f]) and not is_count(line[f]) then return wrong(f, line[f], "a number >= 0") end
  end
  local m = line.message
  if absent(m) then return nil end
  if type(m) ~= "table" then return wrong("message", m, "an object") end
  for _, f in ipairs(MESSAGE_STRINGS) do
    if not absent(m[f]) and type(m[f]) ~= "string" then return wrong("message." .. f, m[f], "a string") end
  end
  local calls = m.tool_calls
  if absent(calls) then return nil end
  if type(calls) ~= "table" then return wrong("message.tool_calls", calls, "a list") end
  for i, c in ipairs(calls) do
    local at = ("message.tool_calls[%d]"):format(i)
    if type(c) ~= "table" then return wrong(at, c, "an object") end
    if not absent(c.id) and type(c.id) ~= "string" then return wrong(at .. ".id", c.id, "a string") end
    local f = c["function"]
    if type(f) ~= "table" then return wrong(at .. ".function", f, "an object") end
    if type(f.name) ~= "string" then return wrong(at .. ".function.name", f.name, "a string") end
  end
end

-- Accumulates the NDJSON stream into one internal message.
local function count(v) return is_count(v) and v or 0 end

function M.read_stream(res, on_event)
  local msg = { role = "assistant", content = {}, usage = {} }
  local text, thinking, calls = {}, {}, {}
  local final
  for line in res:lines() do
    if type(line) ~= "table" then
      res:close()
      return nil, failure("protocol", "a line of the stream is not a JSON object: " .. describe(line))
    end
    if not absent(line.error) then
      local e = line.error
      res:close()
      return nil, failure("stream_error", "the server reported: " .. (type(e) == "string" and http_excerpt(e)
        or type(e) == "table" and type(e.message) == "string" and http_excerpt(e.message) or describe(e)),
        { retryable = false })
    end
    local bad = check_line(line)
    if bad then
      res:close()
      return nil, bad
    end
    local m = type(line.message) == "table" and line.message or {}
    if type(m.thinking) == "string" and m.thinking ~= "" then thinking[#thinking + 1] = m.thinking end
    if type(m.content) == "string" and m.content ~= "" then text[#text + 1] = m.content end
    for _, c in ipairs(type(m.tool_calls) == "table" and m.tool_calls or {}) do
      local f = c["function"]
      local input, input_error = f.arguments, nil
      if type(input) == "string" then input = cjson.decode(input) end
      if type(input) ~= "table" then
        -- the model's mistake, not the stream's: the caller answers it with a tool error
        input_error = ("not a JSON object: %s"):format(type(f.arguments) == "string" and http_excerpt(f.arguments, 200)
          or describe(f.arguments))
        input = {}
      end
      calls[#calls + 1] = { type = "tool_use", id = type(c.id) == "string" and c.id or ("call_" .. #calls + 1),
                            name = f.name, input = input, input_error = input_error }
    end
    if on_event then on_event(line) end
    if line.done then final = line end
  end
  if res.err then return nil, res.err end
  if not final then
    return nil, failure("protocol", "the stream ended before its final line (done: true): the answer is incomplete")
  end
  if #thinking > 0 then msg.content[#msg.content + 1] = { type = "thinking", thinking = table.concat(thinking) } end
  if #text > 0 or #calls == 0 then msg.content[#msg.content + 1] = { type = "text", text = table.concat(text) } end
  for _, c in ipairs(calls) do msg.content[#msg.content + 1] = c end
  msg.model = type(final.model) == "string" and final.model or nil
  local reason = type(final.done_reason) == "string" and final.done_reason or nil
  msg.stop_reason = #calls > 0 and "tool_use" or STOP[reason or "stop"] or reason
  msg.done_reason = reason
  msg.usage = { input_tokens = count(final.prompt_eval_count), output_tokens = count(final.eval_count) }
  msg.durations = {
    total = count(final.total_duration) / 1e9, load = count(final.load_duration) / 1e9,
    prompt = count(final.prompt_eval_duration) / 1e9, generate = count(final.eval_duration) / 1e9,
  }
  return msg
end

-- settings: {base_url, api_key (for a reverse proxy; sent only there), keep_alive}.
function M.complete(settings, route, req, opts)
  opts = opts or {}
  local body = M.body(req, route, opts)
  local defaults = require "codeassist.config"
  local res, err = api.chat(settings, body, opts.timeout or defaults.DEFAULT_TIMEOUTS,
    opts.max_body or defaults.DEFAULT_MAX_ANSWER_BYTES)
  if not res then return nil, err end
  local msg, e = M.read_stream(res, opts.on_event)
  if msg then msg.num_ctx = body.options.num_ctx end
  return msg, e
end

-- ===== what the doctor checks (facts from doctor/collect.lua) =====
-- Each problem: {check, message, remedy, severity = "error" | "warning"}. The remedies are
-- the troubleshooting table of the Ollama setup guide users follow.

local models_core = require "codeassist.models_core"
local shown = require("codeassist.http").redact   -- URLs in messages never carry credentials

local GB = require("codeassist.catalogue").GB

local function host_of(url)
  return url:match("^%a+://%[([^%]]+)%]") or url:match("^%a+://([^/:]+)") or url
end

-- *.ts.net names and 100.64.0.0/10 (Tailscale's range).
function M.is_tailnet(host)
  if host:lower():match("%.ts%.net$") then return true end
  local a, b = host:match("^(%d+)%.(%d+)%.%d+%.%d+$")
  a, b = tonumber(a), tonumber(b)
  return a == 100 and b and b >= 64 and b <= 127
end

local function problem(check, message, remedy, severity)
  return { check = check, message = message, remedy = remedy, severity = severity or "error" }
end

function M.unreachable_problem(url, err, origin)
  local host = host_of(url)
  url = shown(url)
  local k = err.kind
  local where = origin and (" (" .. origin .. ")") or ""
  if k == "connect" then
    return problem("reachable", "Connection refused at " .. url,
      "Is Ollama running there? Check with `systemctl status ollama` (or start it: `ollama serve`); check base_url" .. where)
  elseif k == "timeout_total" or k == "timeout_idle" then
    -- it answered, but too slowly to be of use (a byte at a time, or stalled)
    return problem("reachable", ("%s answers too slowly: %s"):format(url, err.message),
      "Check the server's load and anything in between (a proxy, a VPN); raise --timeout for a slow link")
  elseif k:find("^timeout") then
    if M.is_tailnet(host) then
      return problem("reachable", ("Connection timeout to %s (%s)"):format(url, k),
        ("Check Tailscale: `tailscale ping %s`, and `tailscale status` on both machines"):format(host))
    end
    return problem("reachable", ("Connection timeout to %s (%s)"):format(url, k),
      "Is the machine up and port 11434 open? On the server, Ollama must listen on the network "
        .. "(OLLAMA_HOST=0.0.0.0:11434); a first request can be slow while a model loads")
  elseif k == "dns" then
    return problem("reachable", ("Cannot resolve %s"):format(host),
      "Check the host name in base_url" .. where .. (M.is_tailnet(host) and "; is Tailscale up (`tailscale status`)?" or ""))
  elseif k == "proxy" then
    return problem("reachable", err.message,
      "Check the proxy variables (http_proxy, https_proxy), or add this host to no_proxy")
  elseif k == "tls" then
    return problem("reachable", err.message, "Check the server's certificate, or give ca_file for a private CA")
  elseif k == "http" and err.status and err.status >= 300 and err.status < 400 then
    return problem("reachable", ("%s answered HTTP %d: a redirect to %s, which codeassist does not follow")
        :format(url, err.status, err.location or "nowhere (no Location)"),
      "Set base_url" .. where .. " to the final address (a proxy or load balancer in front of Ollama may redirect "
        .. "http:// to https://)")
  elseif k == "http" then
    return problem("reachable", ("%s answered HTTP %d to /api/version"):format(url, err.status),
      "Is this an Ollama server? base_url must be the server root, e.g. http://host:11434")
  end
  return problem("reachable", err.message, "Check base_url" .. where .. " and the server")
end

M.v1_problem = function(url, origin) return require("codeassist.providers").v1_problem(url, origin) end

-- Problems of one server, whatever route uses it.
function M.assess_server(s, cfg)
  local list = {}
  if s.v1 then
    list[#list + 1] = M.v1_problem(s.url, s.origin)
    return list
  end
  if s.error then
    list[#list + 1] = M.unreachable_problem(s.url, s.error, s.origin)
    return list
  end
  if s.tags_error then
    list[#list + 1] = problem("models", "Could not list models: " .. s.tags_error.message,
      "Check the server's log (`journalctl -u ollama`)")
    return list
  end
  for _, text in ipairs(s.answer_problems or {}) do
    list[#list + 1] = problem("server_answer", text, "The server's answer breaks Ollama's API: check that base_url is an "
      .. "Ollama server (not a proxy's page) and its version", "warning")
  end
  if #s.models == 0 then
    list[#list + 1] = problem("models", "No models found",
      "Pull one with: ollama pull " .. (cfg.providers.ollama.model or "qwen3-coder"), "warning")
  end
  if cfg.providers.ollama.protocol == "anthropic" then
    local cmp = s.version and models_core.version_compare(s.version, "0.14.0")
    if not cmp or cmp < 0 then
      list[#list + 1] = problem("version",
        ("Ollama %s has no Anthropic-compatible /v1/messages (protocol: anthropic needs 0.14.0 or newer)"):format(tostring(s.version)),
        "Upgrade Ollama on the server (`curl -fsSL https://ollama.com/install.sh | sh`), or set providers.ollama.protocol: native")
    end
  end
  return list
end

-- Problems of a model on one server for one gate.
local function model_problems(m, s, gate, cfg, opts)
  local list = {}
  if not m.name then
    list[#list + 1] = problem("installed", ("%s is not installed on %s"):format(m.requested, shown(s.url)),
      ("ollama pull %s"):format(models_core.display(m.requested) or m.requested)
        .. (#m.nearest > 0 and ("   (installed and close: %s)"):format(table.concat(m.nearest, ", ")) or ""))
    return list
  end
  if m.show_error then
    list[#list + 1] = problem("show", ("Could not read %s's details: %s"):format(m.name, m.show_error.message),
      "Check the server's log (`journalctl -u ollama`)")
    return list
  end
  local f = m.show
  for _, text in ipairs(f.problems or {}) do
    list[#list + 1] = problem("model_answer", text, "The server's answer breaks Ollama's API: check the server's "
      .. "version and log (`journalctl -u ollama`)", "warning")
  end
  if f.has_capabilities and gate.tools and not f.capabilities.tools then
    list[#list + 1] = problem("tools", ("%s cannot call tools, and the %s gate needs them"):format(m.name, gate.name),
      "Route this gate to a tools-capable model (e.g. qwen3-coder, qwen3, gpt-oss, llama3.1+)")
  end
  if f.context_length and gate.context and f.context_length < gate.context then
    list[#list + 1] = problem("context",
      ("%s's context window is %d tokens; the %s gate needs about %d"):format(m.name, f.context_length, gate.name, gate.context),
      "Route this gate to a model with a larger context (e.g. qwen3-coder: 256K)")
  end
  -- /v1/messages cannot size the window per request: what the server allocated is it.
  local loaded = s.loaded and s.loaded[m.name]
  if loaded and cfg.providers.ollama.protocol == "anthropic" and gate.context
     and loaded.context_length and loaded.context_length < gate.context then
    list[#list + 1] = problem("window",
      ("%s is loaded with a %d-token window; the %s gate needs about %d and Ollama would silently drop the rest")
        :format(m.name, loaded.context_length, gate.name, gate.context),
      ("Set OLLAMA_CONTEXT_LENGTH=%d (or more) on the server, or use providers.ollama.protocol: native, "
        .. "which sizes the window per request"):format(gate.context))
  end
  local vram = opts.vram_gb
  if vram and m.size then
    local ctx = gate.context or 8192
    local weights = models_core.vram_estimate(m.size, 0, f.layers or 0, f.kv_width or 0)
    local need = models_core.vram_estimate(m.size, ctx, f.layers or 0, f.kv_width or 0)
    if weights > vram * GB then
      list[#list + 1] = problem("vram",
        ("%s needs about %.1f GB for its weights alone; the GPU has %g GB"):format(m.name, weights / GB, vram),
        ("Use a smaller model (see `codeassist models --vram %g`) or check `nvidia-smi`"):format(vram))
    elseif need > vram * GB then
      -- Ollama still runs it, with part of the model on the CPU: slower, not broken
      list[#list + 1] = problem("vram",
        ("%s needs about %.1f GB with a %d-token context; the GPU has %g GB, so part of it will run on the CPU (slower)")
          :format(m.name, need / GB, ctx, vram),
        "Use a smaller model or quantisation, or a smaller context for this gate", "warning")
    end
  end
  return list
end

local function blocking(list) return require("codeassist.providers").has_error(list) end

-- Problems of an Ollama route for a gate. With a pool of servers the route is usable when one
-- of them can serve it; what is wrong with the others is then a warning (calls fail over).
function M.assess_route(route, gate, facts, cfg, opts)
  local per_server, usable_servers = {}, 0
  for _, s in ipairs(facts.ollama_list) do
    local list = {}
    for _, p in ipairs(M.assess_server(s, cfg)) do list[#list + 1] = p end
    if not s.error and not s.v1 and not s.tags_error then
      if not route.model then
        list[#list + 1] = problem("model", "no model is configured for this gate",
          ("set providers.ollama.model, a model in the preset's route for %s, or try one with --route %s=ollama:MODEL")
            :format(gate.name, gate.name))
      else
        local m = facts.models[s.url .. "|" .. route.model]
        if m then
          for _, p in ipairs(model_problems(m, s, gate, cfg, opts)) do list[#list + 1] = p end
        end
      end
    end
    per_server[#per_server + 1] = list
    if not blocking(list) then usable_servers = usable_servers + 1 end
  end
  local out = {}
  for i, list in ipairs(per_server) do
    for _, p in ipairs(list) do
      local copy = {}
      for k, v in pairs(p) do copy[k] = v end
      if usable_servers > 0 and copy.severity == "error" then
        copy.severity = "warning"
        copy.message = copy.message .. " (another server of the pool serves it)"
      end
      if #per_server > 1 then copy.server = shown(facts.ollama_list[i].url) end
      -- a server's own warnings ("no models", its answers' problems) are said once, in its section
      if not ((copy.check == "models" or copy.check == "server_answer") and copy.severity == "warning") then
        out[#out + 1] = copy
      end
    end
  end
  return out
end

-- Models one parallel group loads together that cannot all fit at once: warnings.
function M.assess_groups(report, facts, plan, opts)
  if not opts.vram_gb then return {} end
  local groups = {}
  for _, e in ipairs(report.gates) do
    if e.provider == "ollama" and e.usable then
      for _, s in ipairs(facts.ollama_list) do
        local m = facts.models[s.url .. "|" .. tostring(e.model)]
        if m and m.name and m.size then
          local key = s.url .. "|" .. tostring(e.group)
          groups[key] = groups[key] or { url = s.url, group = e.group, models = {} }
          local g = groups[key]
          local ctx = (plan.gates[e.gate] or {}).context or 8192
          local seen = g.models[m.name]
          if not seen or ctx > seen.ctx then g.models[m.name] = { m = m, ctx = ctx } end
        end
      end
    end
  end
  local out = {}
  local keys = {}
  for k in pairs(groups) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local g, names, total = groups[k], {}, 0
    for n, x in pairs(g.models) do
      names[#names + 1] = n
      local f = x.m.show or {}
      -- each model with the largest context any gate of the group gives it
      total = total + models_core.vram_estimate(x.m.size, x.ctx, f.layers or 0, f.kv_width or 0)
    end
    table.sort(names)
    if #names > 1 and total > opts.vram_gb * GB then
      out[#out + 1] = problem("vram",
        ("parallel group %s loads %s together (about %.1f GB) but the GPU has %g GB: they will be loaded in turn")
          :format(tostring(g.group), table.concat(names, " + "), total / GB, opts.vram_gb),
        "Give these gates the same model, move one to another group, or use smaller models", "warning")
    end
  end
  return out
end

return M
