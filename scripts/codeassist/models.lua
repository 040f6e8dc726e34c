-- `codeassist models [--vram GB] [--json]`: what the Ollama server has (size, capability,
-- tier), and the setup guide's recommendations for that much GPU memory — installed, or with
-- the `ollama pull` line. When the server cannot be reached, it says so and offers no pulls
-- (it cannot know what is installed).
local api = require "codeassist.ollama_api"
local models = require "codeassist.models_core"
local catalogue = require "codeassist.catalogue"
local events = require "codeassist.events"
local term = require "codeassist.term"
local json = require "codeassist.json"
local tty = require "codeassist.tty"

local M = {}

local GB = catalogue.GB
local DEFAULT_VRAM = 24

local function server_text(ev, p)
  local r = ev.report
  if not r.reachable then
    return p.bad(("Could not list models at %s: %s"):format(r.url, r.error)) .. "\n    → " .. r.remedy
  end
  local lines = { ("Ollama at %s: %d models"):format(r.url, #r.models) }
  local rows = {}
  for _, m in ipairs(r.models) do
    -- a size the server did not give, or gave wrong (a warning below says so), is "?"
    rows[#rows + 1] = { m.name, m.parameter_size or "?", m.size and ("%.1fGB"):format(m.size / GB) or "?GB",
                        m.capability, m.tier }
  end
  for _, line in ipairs(tty.columns(rows, "  ")) do lines[#lines + 1] = line end
  for _, text in ipairs(r.problems) do lines[#lines + 1] = "  " .. p.warn(text) end
  return table.concat(lines, "\n")
end

local function recommendations_text(ev, p)
  local r = ev.report
  local lines = { "", ("Recommended for %gGB of VRAM (%s) — %s:"):format(r.vram_gb, r.vram_origin, r.label) }
  for _, m in ipairs(r.recommended) do
    local mark = not r.reachable and "·" or m.installed and p.green("✓") or p.yellow("·")
    -- the guide's figure is the GPU memory the model wants, not its file: say which, and the
    -- installed file's size beside it, so the two numbers are not read as one disagreeing
    local size = m.installed_size and (", %.1fGB on disk"):format(m.installed_size / GB) or ""
    lines[#lines + 1] = ("  %s %-24s %3dGB VRAM  %s%s"):format(mark, m.name, m.vram_gb, m.use,
      m.installed and ("  (installed as " .. m.installed .. size .. ")") or "")
  end
  if r.reachable and #r.pulls > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "To install the missing ones:"
    for _, name in ipairs(r.pulls) do lines[#lines + 1] = "  ollama pull " .. name end
  elseif not r.reachable then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "(The server could not be asked what is installed; start it and run this again.)"
  end
  return table.concat(lines, "\n")
end

M.formats = { ["models.server"] = server_text, ["models.recommendations"] = recommendations_text }

-- What the server has installed: the list, or nil, what went wrong and what to do. Nothing is
-- sent to a base URL that ends in /v1.
local function ask_server(cfg, base, opts)
  if api.has_v1(base) then
    local p = require("codeassist.providers").v1_problem(base, require("codeassist.config").origin(cfg, "providers.ollama.base_url"))
    return nil, p.message, p.remedy
  end
  local list, err = api.tags{ base_url = base, api_key = cfg.providers.ollama.api_key, timeout = opts.timeout or 5 }
  if list then return list end
  return nil, err.message, require("codeassist.providers.ollama").unreachable_problem(base, err).remedy
end

-- The report: {url, reachable, error, remedy, models, problems (the server's answer: fields
-- left out), vram_gb, vram_origin, label, recommended, pulls}. With a pool of servers, the first one is asked.
function M.report(cfg, opts)
  local base = cfg.providers.ollama.base_url
  base = type(base) == "table" and base[1] or base
  events.secret(cfg.providers.ollama.api_key)
  local r = { url = require("codeassist.http").redact(api.root(base)), models = json.array{}, pulls = json.array{},
              recommended = json.array{}, problems = json.array{} }
  local list
  list, r.error, r.remedy = ask_server(cfg, base, opts)
  r.error = tty.printable(r.error)   -- a server's words
  r.reachable = list ~= nil
  local installed, size_of = {}, {}
  for _, m in ipairs(list or {}) do
    size_of[m.name] = m.size
    r.models[#r.models + 1] = { name = tty.printable(m.name), parameter_size = tty.printable(m.parameter_size),
                                size = m.size, capability = m.capability, tier = m.tier }
    installed[#installed + 1] = m.name
  end
  -- fields of the server's answer that were left out, each naming the field
  for _, text in ipairs(list and list.problems or {}) do r.problems[#r.problems + 1] = tty.printable(text) end
  if opts.vram_gb then r.vram_gb, r.vram_origin = opts.vram_gb, "--vram"
  elseif cfg.providers.ollama.vram_gb then r.vram_gb, r.vram_origin = cfg.providers.ollama.vram_gb, "providers.ollama.vram_gb"
  else r.vram_gb, r.vram_origin = DEFAULT_VRAM, "default; set providers.ollama.vram_gb or --vram" end
  local rec = catalogue.recommendations(r.vram_gb)
  r.label = rec.label
  for _, m in ipairs(rec.models) do
    local have = list and models.match(m[1], installed) or nil
    r.recommended[#r.recommended + 1] = { name = m[1], vram_gb = m[2], use = m[3], installed = have,
                                          installed_size = have and size_of[have] or nil }
    if list and not have then r.pulls[#r.pulls + 1] = m[1] end
  end
  return r
end

-- opts: {vram_gb, config, timeout, json}; returns the exit code (1 when the server is down).
function M.main(opts)
  local config = require "codeassist.config"
  local cfg = config.load{ path = opts.config }
  for _, w in ipairs(cfg.source.warnings or {}) do io.stderr:write("codeassist: warning: ", w, "\n") end
  local report = M.report(cfg, opts)
  if opts.json then
    io.stdout:write(events.scrub(assert(json.encode(report))), "\n")
  else
    local bus = events.new()
    bus:add(events.text(io.stdout, { formats = M.formats, color = term.color("stdout") }))
    bus:emit("models.server", { report = report })
    bus:emit("models.recommendations", { report = report })
    bus:close()
  end
  return report.reachable and 0 or 1
end

return M
