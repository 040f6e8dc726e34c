-- `codeassist doctor`: before anything is spent, can every gate's route be served?
--
-- For every gate of the plan (and the implementing agent) it resolves the route and checks,
-- concurrently: the server answers (latency, version); the model is installed (Ollama's name
-- rules, nearest names and the `ollama pull` line when not); size, capability and tier; the
-- `tools` capability when the gate needs tools; the context window against the gate's prompt
-- size; whether the models fit in VRAM (alone, and per parallel group); Claude credentials;
-- and with --probe a one-token request per distinct route (a tools gate must get a tool_use).
-- A degradable route whose model is unusable passes through its fallback. Exit 0 only when
-- every required route is usable.
local http = require "codeassist.http"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local term = require "codeassist.term"
local models = require "codeassist.models_core"
local providers = require "codeassist.providers"
local cjson = require "cjson.safe"

local M = {}

local GB = 1024 ^ 3

-- ===== remedies (reference/ollama-setup.md, troubleshooting) =====

local function host_of(url)
  return url:match("^%a+://([^/:]+)") or url
end

local function is_tailnet(host)
  if host:lower():match("%.ts%.net$") then return true end
  local a, b = host:match("^(%d+)%.(%d+)%.%d+%.%d+$")
  a, b = tonumber(a), tonumber(b)
  return a == 100 and b and b >= 64 and b <= 127   -- 100.64.0.0/10, Tailscale's range
end
M.is_tailnet = is_tailnet

local function unreachable_problem(url, err)
  local host = host_of(url)
  local k = err.kind
  if k == "connect" then
    return { check = "reachable", message = "Connection refused at " .. url,
             remedy = "Is Ollama running there? Check with `systemctl status ollama` (or start it: `ollama serve`); "
               .. "check base_url in .claude/autonomous.yml" }
  elseif k:find("^timeout") then
    if is_tailnet(host) then
      return { check = "reachable", message = ("Connection timeout to %s (%s)"):format(url, k),
               remedy = ("Check Tailscale: `tailscale ping %s`, and `tailscale status` on both machines"):format(host) }
    end
    return { check = "reachable", message = ("Connection timeout to %s (%s)"):format(url, k),
             remedy = "Is the machine up and port 11434 open? On the server, Ollama must listen on the network "
               .. "(OLLAMA_HOST=0.0.0.0:11434); a first request can be slow while a model loads" }
  elseif k == "dns" then
    return { check = "reachable", message = ("Cannot resolve %s"):format(host),
             remedy = "Check the host name in base_url" .. (is_tailnet(host) and "; is Tailscale up (`tailscale status`)?" or "") }
  elseif k == "tls" then
    return { check = "reachable", message = err.message, remedy = "Check the server's certificate, or give ca_file for a private CA" }
  elseif k == "http" then
    return { check = "reachable", message = ("%s answered HTTP %d to /api/version"):format(url, err.status),
             remedy = "Is this an Ollama server? base_url must be the server root, e.g. http://host:11434" }
  end
  return { check = "reachable", message = err.message, remedy = "Check base_url and the server" }
end

local function v1_problem(url, what)
  local root = url:gsub("/v1/?$", "")
  return { check = "base_url", message = ("%s ends in /v1; requests would go to %s/v1/..."):format(what, url),
           remedy = ("Use the server root: %s (codeassist adds the API path itself)"):format(root) }
end

-- ===== servers =====

local function get_json(url, timeout, body)
  return http.json(url, { timeout = timeout, body = body })
end

-- Everything about one Ollama server: reachability, version, models, what is loaded.
local function check_server(url, cfg, opts)
  local s = { url = url, problems = {}, models = {}, names = {}, by_name = {} }
  if url:match("/v1/?$") then
    s.problems[#s.problems + 1] = v1_problem(url, "providers.ollama.base_url")
    return s
  end
  local base = url:gsub("/+$", "")
  local t = opts.timeout
  local timeout = { connect = t, first_byte = t, total = t * 2 }
  local t0 = clock.monotonic()
  local version, err = get_json(base .. "/api/version", timeout)
  if not version then
    s.problems[#s.problems + 1] = unreachable_problem(url, err)
    return s
  end
  s.reachable = true
  s.latency = clock.monotonic() - t0
  s.version = version.version
  local tags
  tags, err = get_json(base .. "/api/tags", timeout)
  if not tags then
    s.problems[#s.problems + 1] = { check = "models", message = "Could not list models: " .. err.message,
                                    remedy = "Check the server's log (`journalctl -u ollama`)" }
    return s
  end
  for _, m in ipairs(type(tags.models) == "table" and tags.models or {}) do
    local d = m.details or {}
    local params = models.parameters(d.parameter_size)
    local entry = { name = m.name or m.model, size = m.size or 0, family = d.family,
                    parameter_size = d.parameter_size, parameters = params,
                    tier = models.tier(params), capability = models.capability(m.name or m.model, d.family) }
    s.models[#s.models + 1] = entry
    s.names[#s.names + 1] = entry.name
    s.by_name[entry.name] = entry
  end
  if #s.models == 0 then
    s.problems[#s.problems + 1] = { check = "models", message = "No models found",
      remedy = "Pull one with: ollama pull " .. (cfg.providers.ollama.model or "qwen3-coder"), severity = "warning" }
  end
  local ps = get_json(base .. "/api/ps", timeout)
  s.loaded = {}
  for _, m in ipairs(ps and type(ps.models) == "table" and ps.models or {}) do s.loaded[m.name] = m end
  if cfg.providers.ollama.protocol == "anthropic" then
    local cmp = s.version and models.version_compare(s.version, "0.14.0")
    if not cmp or cmp < 0 then
      s.problems[#s.problems + 1] = { check = "version",
        message = ("Ollama %s has no Anthropic-compatible /v1/messages (protocol: anthropic needs 0.14.0 or newer)"):format(tostring(s.version)),
        remedy = "Upgrade Ollama on the server (`curl -fsSL https://ollama.com/install.sh | sh`), or set providers.ollama.protocol: native" }
    end
  end
  return s
end

-- /api/show facts about one installed model.
local function check_model(server, name, opts)
  local m = { requested = name, problems = {} }
  local match, nearest = models.match(name, server.names)
  if not match then
    local pull = models.display(name) or name
    m.problems[#m.problems + 1] = { check = "installed",
      message = ("%s is not installed on %s"):format(name, server.url),
      remedy = ("ollama pull %s"):format(pull) .. (#nearest > 0 and ("   (installed and close: %s)"):format(table.concat(nearest, ", ")) or ""),
      nearest = nearest }
    return m
  end
  m.name = match
  local entry = server.by_name[match]
  for k, v in pairs(entry) do m[k] = v end
  local t = opts.timeout
  local show, err = get_json(server.url:gsub("/+$", "") .. "/api/show", { connect = t, first_byte = t * 2, total = t * 4 },
    { model = match })
  if not show then
    m.problems[#m.problems + 1] = { check = "show", message = ("Could not read %s's details: %s"):format(match, err.message),
                                    remedy = "Check the server's log (`journalctl -u ollama`)" }
    return m
  end
  m.capabilities = {}
  for _, c in ipairs(type(show.capabilities) == "table" and show.capabilities or {}) do m.capabilities[c] = true end
  m.has_capabilities = type(show.capabilities) == "table"
  local info = type(show.model_info) == "table" and show.model_info or {}
  local arch = info["general.architecture"]
  m.context_length = arch and tonumber(info[arch .. ".context_length"])
  m.layers = arch and tonumber(info[arch .. ".block_count"])
  local heads = arch and tonumber(info[arch .. ".attention.head_count"])
  local kv_heads = arch and tonumber(info[arch .. ".attention.head_count_kv"])
  local width = arch and tonumber(info[arch .. ".embedding_length"])
  if heads and kv_heads and width and heads > 0 then m.kv_width = math.floor(kv_heads * width / heads) end
  if not m.parameters and tonumber(info["general.parameter_count"]) then
    m.parameters = tonumber(info["general.parameter_count"])
    m.tier = models.tier(m.parameters)
  end
  return m
end

-- ===== probes =====

local PROBE_TOOL = { name = "report_status", description = "Report that you are ready.",
  input_schema = { type = "object", properties = { ready = { type = "boolean" } }, required = { "ready" } } }

local function probe(cfg, route, needs_tools, opts)
  local req = { max_tokens = needs_tools and 64 or 1,
                messages = { { role = "user", content = needs_tools
                  and "Call the report_status tool with ready set to true. Do not answer in text."
                  or "Reply with the single word: ok" } } }
  if needs_tools then req.tools = { PROBE_TOOL } end
  local t0 = clock.monotonic()
  local msg, err = providers.complete(cfg, route, req, { timeout = { connect = opts.timeout, first_byte = opts.probe_timeout,
                                                                     idle = opts.probe_timeout } })
  if not msg then return nil, err end
  local called = false
  for _, b in ipairs(msg.content) do if b.type == "tool_use" then called = true end end
  return { seconds = clock.monotonic() - t0, tool_called = called, model = msg.model }
end

-- ===== the report =====

local function route_label(route)
  return (route.provider == "anthropic" and "claude" or route.provider) .. " " .. tostring(route.model)
end

local function add(list, problem, severity)
  problem.severity = problem.severity or severity or "error"
  list[#list + 1] = problem
end

-- Checks one route for a gate against the gathered facts; returns its problems.
local function route_problems(route, gate, facts, cfg, opts)
  local problems = {}
  if route.provider == "anthropic" then
    local a = cfg.providers.anthropic
    if a.base_url:match("/v1/?$") then add(problems, v1_problem(a.base_url, "ANTHROPIC_BASE_URL")) end
    if not a.api_key and not a.auth_token then
      add(problems, { check = "credentials", message = "ANTHROPIC_API_KEY is not set",
                      remedy = "export ANTHROPIC_API_KEY=sk-ant-... (or ANTHROPIC_AUTH_TOKEN), or route this gate to Ollama" })
    end
  else
    for _, url in ipairs(providers.base_urls(cfg, "ollama")) do
      local s = facts.servers[url]
      for _, p in ipairs(s.problems) do
        if p.severity ~= "warning" then add(problems, { check = p.check, message = p.message, remedy = p.remedy }) end
      end
      if s.reachable then
        local m = facts.models[url .. "|" .. tostring(route.model)]
        if not route.model then
          add(problems, { check = "model", message = "no model is configured for this gate",
                          remedy = "set providers.ollama.model, or a model in providers.gate_providers." .. gate.name })
        elseif m then
          for _, p in ipairs(m.problems) do add(problems, { check = p.check, message = p.message, remedy = p.remedy }) end
          if m.name and m.has_capabilities and gate.tools and not m.capabilities.tools then
            add(problems, { check = "tools",
              message = ("%s cannot call tools, and the %s gate needs them"):format(m.name, gate.name),
              remedy = "Route this gate to a tools-capable model (e.g. qwen3-coder, qwen3, gpt-oss, llama3.1+)" })
          end
          if m.name and m.context_length and gate.context and m.context_length < gate.context then
            add(problems, { check = "context",
              message = ("%s's context window is %d tokens; the %s gate needs about %d"):format(m.name, m.context_length, gate.name, gate.context),
              remedy = "Route this gate to a model with a larger context (e.g. qwen3-coder: 256K)" })
          end
          -- /v1/messages cannot size the window per request: what the server allocated is it.
          local loaded = m.name and s.loaded and s.loaded[m.name]
          if loaded and cfg.providers.ollama.protocol == "anthropic" and gate.context
             and tonumber(loaded.context_length) and tonumber(loaded.context_length) < gate.context then
            add(problems, { check = "window",
              message = ("%s is loaded with a %d-token window; the %s gate needs about %d and Ollama would silently drop the rest")
                :format(m.name, loaded.context_length, gate.name, gate.context),
              remedy = ("Set OLLAMA_CONTEXT_LENGTH=%d (or more) on the server, or use providers.ollama.protocol: native, "
                .. "which sizes the window per request"):format(gate.context) })
          end
          local vram = opts.vram_gb
          if m.name and vram and m.size then
            local weights = models.vram_estimate(m.size, 0, m.layers or 0, m.kv_width or 0)
            local need = models.vram_estimate(m.size, gate.context or 8192, m.layers or 0, m.kv_width or 0)
            if weights > vram * GB then
              add(problems, { check = "vram",
                message = ("%s needs about %.1f GB for its weights alone; the GPU has %g GB"):format(m.name, weights / GB, vram),
                remedy = ("Use a smaller model (see `codeassist models --vram %g`) or check `nvidia-smi`"):format(vram) })
            elseif need > vram * GB then
              -- Ollama still runs it, with part of the model on the CPU: slower, not broken
              add(problems, { check = "vram", severity = "warning",
                message = ("%s needs about %.1f GB with a %d-token context; the GPU has %g GB, so part of it will run on the CPU (slower)")
                  :format(m.name, need / GB, gate.context or 8192, vram),
                remedy = "Use a smaller model or quantisation, or a smaller context for this gate" })
            end
          end
        end
      end
    end
  end
  local pr = facts.probes[route.provider .. "|" .. tostring(route.model) .. "|" .. tostring(gate.tools)]
  if pr and #problems == 0 then
    if pr.err then
      local e = pr.err
      local remedy = "See the message; rerun with --probe after fixing"
      if e.kind == "http" and (e.status == 401 or e.status == 403) then
        remedy = "The key was refused: check ANTHROPIC_API_KEY (or the proxy's api_key)"
      end
      add(problems, { check = "probe", message = "Probe failed: " .. e.message, remedy = remedy })
    elseif gate.tools and not pr.result.tool_called then
      add(problems, { check = "probe", message = ("%s answered but did not call the tool it was given"):format(route.model),
                      remedy = "Route this tools gate to a model that calls tools reliably (e.g. qwen3-coder)" })
    end
  end
  return problems
end

-- Runs every check; returns the report (also what --json prints).
function M.check(cfg, plan, opts)
  opts = opts or {}
  opts.timeout = opts.timeout or 5
  opts.probe_timeout = opts.probe_timeout or 120
  opts.vram_gb = opts.vram_gb or cfg.providers.ollama.vram_gb
  local facts = { servers = {}, models = {}, probes = {} }

  -- Which servers and models the plan uses (primaries and fallbacks).
  local gates, uses_ollama, uses_claude = {}, false, false
  for name, route in pairs(plan.routes) do
    gates[#gates + 1] = name
    local r = route
    while r do
      if r.provider == "ollama" then uses_ollama = true else uses_claude = true end
      r = r.fallback
    end
  end
  table.sort(gates, function(a, b)
    local ga, gb = plan.gates[a] or {}, plan.gates[b] or {}
    if (ga.parallel_group or 0) ~= (gb.parallel_group or 0) then return (ga.parallel_group or 0) < (gb.parallel_group or 0) end
    return a < b
  end)

  local jobs = {}
  if uses_ollama then
    for _, url in ipairs(providers.base_urls(cfg, "ollama")) do
      jobs[#jobs + 1] = task.spawn(function()
        local s = check_server(url, cfg, opts)
        facts.servers[url] = s
        if not s.reachable then return end
        local wanted, inner = {}, {}
        for _, route in pairs(plan.routes) do
          local r = route
          while r do
            if r.provider == "ollama" and r.model and not wanted[r.model] then
              local model = r.model
              wanted[model] = true
              inner[#inner + 1] = task.spawn(function() facts.models[url .. "|" .. model] = check_model(s, model, opts) end)
            end
            r = r.fallback
          end
        end
        local default_model = cfg.providers.ollama.model
        if default_model and not wanted[default_model] then
          inner[#inner + 1] = task.spawn(function() facts.models[url .. "|" .. default_model] = check_model(s, default_model, opts) end)
        end
        for _, t in ipairs(inner) do assert(task.join(t)) end
      end)
    end
  end
  for _, t in ipairs(jobs) do
    local ok, err = task.join(t)
    if not ok then error(err, 0) end
  end

  -- Probes: one per distinct route (and tools need), after the cheap checks.
  if opts.probe then
    local probes = {}
    for name, route in pairs(plan.routes) do
      local gate = plan.gates[name] or {}
      local r = route
      while r do
        local key = r.provider .. "|" .. tostring(r.model) .. "|" .. tostring(gate.tools)
        if not probes[key] and not facts.probes[key] then
          local pre = route_problems(r, setmetatable({ name = name }, { __index = gate }), facts, cfg, opts)
          if #pre == 0 then
            local rr, tools = r, gate.tools
            probes[key] = task.spawn(function()
              local result, err = probe(cfg, rr, tools, opts)
              facts.probes[key] = { result = result, err = err }
            end)
          end
        end
        r = r.fallback
      end
    end
    for _, t in pairs(probes) do assert(task.join(t)) end
  end

  -- Per gate: its route, or its fallback when the route is unusable and may degrade.
  local report = { preset = plan.name, config = cfg.source and cfg.source.path, found_config = cfg.source and cfg.source.found,
                   gates = {}, servers = {}, claude = nil, ok = true, warnings = {} }
  for _, name in ipairs(gates) do
    local gate = setmetatable({ name = name }, { __index = plan.gates[name] or {} })
    local route = plan.routes[name]
    local required = gate.required == true or name == "implement"
    local entry = { gate = name, required = required, provider = route.provider == "anthropic" and "claude" or route.provider,
                    model = route.model, floor = route.floor or (required and "critical" or "degradable"),
                    group = gate.parallel_group, weight = gate.weight }
    entry.problems = route_problems(route, gate, facts, cfg, opts)
    local blocking = 0
    for _, pr in ipairs(entry.problems) do if pr.severity ~= "warning" then blocking = blocking + 1 end end
    entry.usable = blocking == 0
    if not entry.usable and route.fallback and entry.floor ~= "critical" then
      local fb = route_problems(route.fallback, gate, facts, cfg, opts)
      for i = #fb, 1, -1 do if fb[i].severity == "warning" then table.remove(fb, i) end end
      entry.fallback = { provider = route.fallback.provider == "anthropic" and "claude" or route.fallback.provider,
                         model = route.fallback.model, problems = fb, usable = #fb == 0 }
      entry.via_fallback = entry.fallback.usable
    end
    entry.status = entry.usable and (#entry.problems == 0 and "ok" or "warn")
      or entry.via_fallback and "fallback" or "fail"
    if entry.status == "fail" and required then report.ok = false end
    report.gates[#report.gates + 1] = entry
  end

  -- Models of one parallel group share the GPU: say when they cannot all be loaded at once.
  if opts.vram_gb then
    local groups = {}
    for _, e in ipairs(report.gates) do
      if e.provider == "ollama" and e.usable then
        for _, url in ipairs(providers.base_urls(cfg, "ollama")) do
          local m = facts.models[url .. "|" .. tostring(e.model)]
          if m and m.name and m.size then
            local key = url .. "|" .. tostring(e.group)
            groups[key] = groups[key] or { url = url, group = e.group, models = {}, total = 0 }
            local g = groups[key]
            local ctx = (plan.gates[e.gate] or {}).context or 8192
            local seen = g.models[m.name]
            if not seen or ctx > seen.ctx then g.models[m.name] = { m = m, ctx = ctx } end
          end
        end
      end
    end
    for _, g in pairs(groups) do
      local names = {}
      for n, x in pairs(g.models) do
        names[#names + 1] = n
        -- each model with the largest context any gate of the group gives it
        g.total = g.total + models.vram_estimate(x.m.size, x.ctx, x.m.layers or 0, x.m.kv_width or 0)
      end
      table.sort(names)
      if #names > 1 and g.total > opts.vram_gb * GB then
        report.warnings[#report.warnings + 1] = {
          check = "vram", severity = "warning",
          message = ("parallel group %s loads %s together (about %.1f GB) but the GPU has %g GB: they will be loaded in turn")
            :format(tostring(g.group), table.concat(names, " + "), g.total / GB, opts.vram_gb),
          remedy = "Give these gates the same model, move one to another group, or use smaller models" }
      end
    end
  end

  for _, url in ipairs(uses_ollama and providers.base_urls(cfg, "ollama") or {}) do
    local s = facts.servers[url]
    local default = cfg.providers.ollama.model
    report.servers[#report.servers + 1] = {
      url = url, reachable = s.reachable or false, latency_ms = s.latency and math.floor(s.latency * 1000 + 0.5),
      version = s.version, models = s.models, problems = s.problems,
      configured_model = default, configured = default and facts.models[url .. "|" .. default] or nil,
    }
  end
  if uses_claude then
    local a = cfg.providers.anthropic
    report.claude = { base_url = a.base_url, key_set = a.api_key ~= nil, token_set = a.auth_token ~= nil }
  end
  report.probed = opts.probe and true or false
  return report
end

-- ===== output =====

local function painter(enabled)
  local function paint(code, s) return enabled and ("\27[" .. code .. "m" .. s .. "\27[0m") or s end
  return {
    ok = function(s) return paint("32", "✓") .. " " .. s end,
    bad = function(s) return paint("31", "✗") .. " " .. s end,
    warn = function(s) return paint("33", "⚠") .. " " .. s end,
    bold = function(s) return paint("1", s) end,
  }
end

-- What the gate table says for each kind of check that failed.
local FAILED = { installed = "not installed", reachable = "unreachable", tools = "no tool calling",
                 context = "context too small", vram = "does not fit in VRAM", credentials = "no API key",
                 probe = "probe failed", version = "server too old", base_url = "base_url ends in /v1",
                 model = "no model set", show = "no model details", models = "no model list",
                 window = "window too small" }

local WARNED = { vram = "partly on the CPU" }

local function fmt_gb(bytes) return ("%.1fGB"):format((bytes or 0) / GB) end

function M.render(report, out)
  out = out or io.stdout
  local p = painter(term.color("stdout"))
  local function say(...) out:write(..., "\n") end
  say(p.bold("codeassist doctor") .. " — preset " .. tostring(report.preset) .. ", config "
    .. tostring(report.config) .. (report.found_config and "" or " (not found: defaults)"))
  if report.claude then
    say("")
    say("Claude API (" .. report.claude.base_url .. "):")
    if report.claude.key_set then say("  " .. p.ok("ANTHROPIC_API_KEY is set"))
    elseif report.claude.token_set then say("  " .. p.ok("ANTHROPIC_AUTH_TOKEN is set"))
    else say("  " .. p.bad("ANTHROPIC_API_KEY not set")) end
  end
  for _, s in ipairs(report.servers) do
    say("")
    say("Ollama (" .. s.url .. "):")
    if not s.reachable then
      for _, pr in ipairs(s.problems) do say("  " .. p.bad(pr.message)) end
    else
      say("  " .. p.ok("Server reachable"))
      say("  " .. p.ok(("Response time: %dms"):format(s.latency_ms)))
      say("  " .. p.ok("Server version: " .. tostring(s.version)))
      say("  " .. (#s.models > 0 and p.ok or p.warn)("Available models: " .. #s.models))
      for _, m in ipairs(s.models) do
        say(("    - %s (%s, %s)  %s, %s"):format(m.name, tostring(m.parameter_size), fmt_gb(m.size), m.capability, m.tier))
      end
      for _, pr in ipairs(s.problems) do
        if pr.check ~= "reachable" then say("  " .. (pr.severity == "warning" and p.warn or p.bad)(pr.message)) end
      end
      local c = s.configured
      if s.configured_model and c then
        if c.name then
          say("  " .. p.ok("Configured model: " .. s.configured_model))
          say(("    Matched: %s (%s)"):format(c.name, tostring(c.parameter_size)))
          say(("    Capability: %s | Tier: %s"):format(c.capability, c.tier))
        else
          say("  " .. p.bad(('Configured model "%s" NOT FOUND'):format(s.configured_model)))
        end
      elseif not s.configured_model then
        say("  " .. p.warn("No model configured. Add 'model: <name>' under providers.ollama."))
      end
    end
  end

  say("")
  say("Gates:")
  local rows = { { "GATE", "REQUIRED", "ROUTE", "STATUS" } }
  for _, e in ipairs(report.gates) do
    local status = e.status == "ok" and "✓ ok"
      or e.status == "warn" and ("⚠ " .. (WARNED[e.problems[1].check] or e.problems[1].check))
      or e.status == "fallback"
      and ("⚠ via fallback " .. e.fallback.provider .. " " .. tostring(e.fallback.model))
      or "✗ " .. (FAILED[e.problems[1].check] or e.problems[1].check)
    rows[#rows + 1] = { e.gate, e.required and "yes" or "no", e.provider .. " " .. tostring(e.model), status }
  end
  local widths = {}
  for _, r in ipairs(rows) do for i, c in ipairs(r) do widths[i] = math.max(widths[i] or 0, #c) end end
  for _, r in ipairs(rows) do
    local cells = {}
    for i = 1, 3 do cells[i] = r[i] .. string.rep(" ", widths[i] - #r[i]) end
    cells[4] = r[4]
    say("  " .. table.concat(cells, "  "))
  end

  local problems, seen = {}, {}
  for _, e in ipairs(report.gates) do
    for _, pr in ipairs(e.problems) do
      local key = pr.message .. "|" .. tostring(pr.remedy)
      if seen[key] then seen[key].gates[#seen[key].gates + 1] = e.gate
      else
        seen[key] = { pr = pr, gates = { e.gate }, fatal = e.status == "fail" and e.required }
        problems[#problems + 1] = seen[key]
      end
    end
  end
  for _, w in ipairs(report.warnings) do problems[#problems + 1] = { pr = w, gates = {}, fatal = false } end
  if #problems > 0 then
    say("")
    say("Problems:")
    for _, item in ipairs(problems) do
      local label = #item.gates > 0 and (table.concat(item.gates, ", ") .. ": ") or ""
      say("  " .. (item.fatal and p.bad or p.warn)(label .. item.pr.message))
      if item.pr.remedy then say("      → " .. item.pr.remedy) end
    end
  end
  say("")
  if report.ok then
    say(p.ok(#problems == 0 and "All providers healthy: every route is usable." or "Every required route is usable."))
  else
    local n = 0
    for _, e in ipairs(report.gates) do if e.status == "fail" and e.required then n = n + 1 end end
    say(p.bad(("Some providers are unhealthy: %d required route%s not usable."):format(n, n == 1 and " is" or "s are")))
  end
end

-- The report as JSON (keys are only said to be set, never shown). lua-cjson 2.1.0 encodes
-- an empty table as {}; list fields are marked and mended to [] after encoding.
local LISTS = { problems = true, models = true, gates = true, servers = true, warnings = true, nearest = true }
local EMPTY = "\0empty-list\0"

function M.json(report)
  local function plain(v, depth)
    if type(v) ~= "table" then return v end
    if depth > 8 then return nil end
    local out = {}
    for k, x in pairs(v) do
      if type(k) ~= "table" then
        if LISTS[k] and type(x) == "table" and next(x) == nil then out[k] = EMPTY
        else out[k] = plain(x, depth + 1) end
      end
    end
    return out
  end
  local text = cjson.encode(plain(report, 0))
  return (text:gsub('"\\u0000empty%-list\\u0000"', "[]"))
end

-- ===== the command =====

-- opts: {preset = path or name | nil, preset_value = table/function, config = path, json,
--        probe, timeout, vram_gb}; returns the exit code.
function M.main(opts)
  local config = require "codeassist.config"
  local preset = require "codeassist.preset"
  local cfg = config.load{ path = opts.config }
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local p
  if opts.preset_value ~= nil then
    p = preset.from_value(opts.preset_value, cfg, opts.preset or "the preset")
  else
    p = preset.load(opts.preset, cfg)
  end
  local flags = opts.flags or {}
  local plan = preset.plan(p, cfg, flags)
  opts.vram_gb = flags.vram_gb
  local report = M.check(cfg, plan, opts)
  if opts.json then
    io.stdout:write(M.json(report), "\n")
  else
    M.render(report)
  end
  return report.ok and 0 or 1
end

return M
