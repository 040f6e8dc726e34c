-- Events: what the program is doing, emitted once and shown by any number of sinks — a
-- terminal (with live progress lines), plain lines (logs, pipes), JSON lines (tools, traces).
--
--   local events = require "codeassist.events"
--   local bus = events.new()
--   bus:add(events.text(io.stdout, { formats = my_formats, live = true, color = true }))
--   bus:add(events.json_lines(file))
--   bus:emit("doctor.server", { server = s })      -- {type = "doctor.server", time, elapsed, ...}
--   local p = bus:progress("checking http://gpu:11434")   -- a live line on a terminal
--   p:done()
--   bus:close()
--
-- A text sink renders an event through formats[ev.type](ev, paint) -> text or nil; events
-- without a format are not shown as text (JSON lines show everything). Secret values
-- registered with events.secret(value) are replaced by "***" in every sink's output.
local clock = require "codeassist.clock"
local json = require "codeassist.json"
local tty = require "codeassist.tty"

local M = {}

local secrets = {}

-- A value (an API key) that must never appear in any output.
function M.secret(value)
  if type(value) == "string" and #value >= 4 then
    secrets[value] = true
    -- and as JSON writes it (a "/" becomes "\/"), for the lines written as JSON
    local encoded = require("cjson.safe").encode(value)
    if encoded and encoded:sub(2, -2) ~= value then secrets[encoded:sub(2, -2)] = true end
  end
end

local function scrub(text)
  for s in pairs(secrets) do
    local at = text:find(s, 1, true)
    while at do
      text = text:sub(1, at - 1) .. "***" .. text:sub(at + #s)
      at = text:find(s, at + 3, true)
    end
  end
  return text
end
M.scrub = scrub

-- The time as audit records and traces write it: UTC, to the second, ISO 8601.
function M.timestamp()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local Bus = {}
Bus.__index = Bus

function M.new()
  return setmetatable({ sinks = {}, started = clock.monotonic(), next_id = 0, open = {} }, Bus)
end

function Bus:add(sink)
  self.sinks[#self.sinks + 1] = sink
  return sink
end

-- Sends {type = name, time = wall clock, elapsed = seconds since the bus began, ...fields}.
function Bus:emit(name, fields)
  require("codeassist.errors").argcheck(type(name) == "string" and (fields == nil or type(fields) == "table"),
    "bus:emit: give an event type (a string) and a table of fields")
  local ev = fields or {}
  ev.type = name
  ev.time = clock.wall()
  ev.elapsed = clock.monotonic() - self.started
  for _, sink in ipairs(self.sinks) do sink:event(ev, self) end
  return ev
end

local Progress = {}
Progress.__index = Progress

-- A piece of work that may take a while: "progress.start" now, "progress.end" on :done().
function Bus:progress(label, fields)
  self.next_id = self.next_id + 1
  local p = setmetatable({ bus = self, id = self.next_id, label = label, started = clock.monotonic() }, Progress)
  self.open[p.id] = p
  local ev = { id = p.id, label = label }
  for k, v in pairs(fields or {}) do ev[k] = v end
  self:emit("progress.start", ev)
  return p
end

function Progress:done(fields)
  if not self.bus.open[self.id] then return end
  self.bus.open[self.id] = nil
  local ev = { id = self.id, label = self.label, seconds = clock.monotonic() - self.started }
  for k, v in pairs(fields or {}) do ev[k] = v end
  self.bus:emit("progress.end", ev)
end

-- What a running piece of work is doing now (a live line shows it after its label): at most a
-- few updates a second reach the sinks.
function Progress:detail(text)
  if not self.bus.open[self.id] or text == self.shown then return end
  local now = clock.monotonic()
  self.pending = text
  if self.at and now - self.at < 0.2 then return end
  self.at, self.shown = now, text
  self.bus:emit("progress.update", { id = self.id, label = self.label, detail = text })
end

-- Ends the progress still open (work that will not finish), marked abandoned.
function Bus:abandon()
  for _, p in pairs(self.open) do p:done{ abandoned = true } end
end

-- Ends open progress and lets sinks finish (erase live lines, flush).
function Bus:close()
  self:abandon()
  for _, sink in ipairs(self.sinks) do
    if sink.close then sink:close() end
  end
end

-- ===== sinks =====

-- One JSON object per line; functions and cyclic parts are left out.
function M.json_lines(out)
  local function plain(v, depth, seen)
    if type(v) == "function" or type(v) == "userdata" or type(v) == "thread" then return nil end
    if type(v) ~= "table" then return v end
    if depth > 12 or seen[v] then return nil end
    seen[v] = true
    local t = json.is_array(v) and json.array{} or {}
    for k, x in pairs(v) do
      if type(k) == "string" or type(k) == "number" then t[k] = plain(x, depth + 1, seen) end
    end
    seen[v] = nil
    return t
  end
  return {
    event = function(_, ev)
      local text = json.encode(plain(ev, 0, {}))
      if text then
        out:write(scrub(text), "\n")
        out:flush()
      end
    end,
  }
end

-- Text for people. opts: {formats = {type -> fn(ev, paint)}, color = bool, live = bool
-- (a terminal: show running work on live lines, with elapsed time), stream = "stdout"|"stderr",
-- live_after = seconds before a piece of work earns a live line (0.3)}.
function M.text(out, opts)
  opts = opts or {}
  local formats = opts.formats or {}
  local paint = tty.painter(opts.color and true or false)
  local live = opts.live and tty.live(out, opts.stream) or nil
  local running = {}            -- progress id -> {label, started}
  local ticker
  local live_after = opts.live_after or 0.3
  local sink = {}

  local function line_for(p, now)
    return paint.dim(scrub(("… %s (%.1fs)%s"):format(p.label, now - p.started,
      p.detail and (" " .. tty.printable(p.detail)) or "")))
  end

  local function refresh()
    local now = clock.monotonic()
    for id, p in pairs(running) do
      if now - p.started >= live_after then live:set(id, line_for(p, now)) end
    end
    live:redraw()
  end

  -- A task that ticks the clocks of live lines while any work is running.
  local function ensure_ticker()
    if ticker or not live then return end
    local task = require "codeassist.task"
    ticker = task.spawn(function()
      while next(running) do
        task.sleep(0.1)
        if next(running) then refresh() end
      end
      ticker = nil
    end)
  end

  function sink.event(_, ev)
    if ev.type == "progress.start" then
      if live then
        running[ev.id] = { label = ev.label, started = clock.monotonic() }
        ensure_ticker()
      end
      return
    elseif ev.type == "progress.update" then
      if live and running[ev.id] then running[ev.id].detail = ev.detail end
      return
    elseif ev.type == "progress.end" then
      if live and running[ev.id] then
        running[ev.id] = nil
        live:remove(ev.id)
        live:redraw()
      end
      return
    end
    local f = formats[ev.type]
    local text = f and f(ev, paint)
    if not text then return end
    text = scrub(text)
    if live then live:print(text) else
      out:write(text)
      if text:sub(-1) ~= "\n" then out:write("\n") end
      out:flush()
    end
  end

  function sink.close()
    running = {}
    if live then live:clear() end
    if ticker then
      require("codeassist.task").cancel(ticker)
      ticker = nil
    end
  end

  return sink
end

return M
