-- Record and replay of a run's model exchanges, so a preset can be tried again for nothing.
--
--   codeassist run PRESET --issue N --record DIR    every model call's request and answer kept
--   codeassist run PRESET --issue N --replay DIR    the answers served again; no model is called
--
-- DIR holds meta.json (what was recorded: preset, issue, the models' sizes the doctor found)
-- and exchanges.jsonl, one line per attempt of a call:
--   {gate, iteration, provider, model, n, request, message | error, seconds}
-- n counts the calls of one gate, iteration and route; a replay serves the n-th recorded answer
-- for the n-th call of the same gate, iteration and route. A call the recording does not hold
-- (another route, more calls than were made) stops the run with exit 1, naming the gate,
-- iteration and model, because going on would not be the recorded run any more.
-- The tools the agent calls, the builds and the tests run for real: only models are replayed.
local errors = require "codeassist.errors"
local events = require "codeassist.events"
local json = require "codeassist.json"
local fs = require "codeassist.fs"

local M = {}

M.EXCHANGES, M.META = "exchanges.jsonl", "meta.json"

local function key_of(gate, iteration, route)
  return table.concat({ tostring(gate), tostring(iteration), tostring(route.provider), tostring(route.model) }, "\0")
end

local label = require("codeassist.preset").route_label

-- The fields of a failure that a replay gives back (the rest are the transfer's own).
local function failure_fields(err)
  local kept = {}
  for _, k in ipairs{ "kind", "message", "status", "retryable", "error_type", "retry_after" } do
    local v = type(err) == "table" and err[k] or nil
    if type(v) ~= "table" and type(v) ~= "userdata" and type(v) ~= "function" then kept[k] = v end
  end
  kept.kind = errors.KINDS[kept.kind] and kept.kind or "protocol"
  kept.message = kept.message or tostring(err)
  -- the headers the retry policy decides by, so a replay retries as the recorded run did
  local headers = type(err) == "table" and type(err.headers) == "table" and err.headers or {}
  for _, h in ipairs{ "x-should-retry", "retry-after", "retry-after-ms" } do
    if type(headers[h]) == "string" then
      kept.headers = kept.headers or {}
      kept.headers[h] = headers[h]
    end
  end
  return kept
end

-- Raises a usage error when DIR cannot take a new recording (checked before anything is spent).
function M.check_new(dir)
  if fs.stat(dir .. "/" .. M.EXCHANGES) then
    errors.usage("--record %s: the folder already holds a recording (%s); give a new folder, or remove it first", dir,
      M.EXCHANGES)
  end
  local ok, err = fs.mkdir_p(dir)
  if not ok then errors.usage("--record %s: cannot create the folder: %s", dir, err.message) end
end

-- A recording inside the repository would be committed with the work (every prompt and
-- answer in the pull request): only .codeassist/, which no commit takes, may hold one.
function M.check_place(dir, root)
  -- resolved as the kernel would (.., symlinks): nil when the folder is outside the repository
  local real = fs.confine(root, dir:sub(1, 1) == "/" and dir or (fs.cwd() .. "/" .. dir))
  local top = real and fs.confine(root, ".")
  local inside = real and (real == top and "" or real:sub(#top + 2))
  if inside and not (inside .. "/"):match("^%.codeassist/") then
    errors.usage("--record %s: the folder is inside the repository, so the recording would be committed with the work; "
      .. "use a folder outside it, or under .codeassist/ (e.g. --record .codeassist/recordings/NAME)", dir)
  end
end

-- A recorder: wraps a complete(cfg, route, req, opts) function so every attempt is written to
-- DIR. iteration() says which iteration a call belongs to.
function M.recorder(dir, complete, iteration, meta)
  M.check_new(dir)
  local path = dir .. "/" .. M.EXCHANGES
  local meta_text = events.scrub(json.encode(meta or {}) or "{}")
  local written, werr = fs.write_atomic(dir .. "/" .. M.META, meta_text .. "\n")
  if not written then errors.usage("--record %s: cannot write %s: %s", dir, M.META, werr.message) end
  local file, oerr = io.open(path, "a")
  if not file then errors.usage("--record %s: cannot write %s: %s", dir, M.EXCHANGES, tostring(oerr)) end
  local counts = {}
  return function(cfg, route, req, opts)
    local gate, i = opts and opts.gate or route.gate, iteration()
    local key = key_of(gate, i, route)
    counts[key] = (counts[key] or 0) + 1
    local t0 = require("codeassist.clock").monotonic()
    local done, msg, failure = pcall(complete, cfg, route, req, opts)
    local seconds = require("codeassist.clock").monotonic() - t0
    local entry = { gate = gate, iteration = i, provider = route.provider, model = route.model, n = counts[key],
      request = req, seconds = seconds }
    if not done then
      -- cancelled (a gate's timeout, Ctrl-C): kept, so the replay waits there as this call did
      entry.cancelled, entry.error = true, failure_fields(msg)
    else
      entry.message, entry.error = msg, not msg and failure_fields(failure) or nil
    end
    local line, err = json.encode(entry)
    if not line then
      line = json.encode{ gate = gate, iteration = i, provider = route.provider, model = route.model, n = counts[key],
        error = { kind = "protocol", message = "this exchange could not be recorded: " .. err.message }, seconds = seconds }
    end
    local wrote, werr = file:write(events.scrub(line), "\n")   -- a key in a prompt is never written down
    if not wrote then errors.goal("--record %s: cannot write %s: %s", dir, M.EXCHANGES, tostring(werr)) end
    file:flush()
    if not done then error(msg, 0) end
    return msg, failure
  end
end

-- What a recording folder holds: meta and the exchanges by key, or raises a usage error.
function M.load(dir)
  local path = dir .. "/" .. M.EXCHANGES
  local file = io.open(path, "r")
  if not file then
    errors.usage("--replay %s: no recording there (expected %s, written by --record)", dir, M.EXCHANGES)
  end
  local by_key, count, line_no = {}, 0, 0
  for line in file:lines() do
    line_no = line_no + 1
    if line:find("%S") then
      local x, err = json.decode(line)
      if type(x) ~= "table" or type(x.gate) ~= "string" or type(x.n) ~= "number" then
        file:close()
        errors.usage("--replay %s:%d: not a recorded exchange (%s)", path, line_no, err and err.message or "fields missing")
      end
      local key = key_of(x.gate, x.iteration, x)
      by_key[key] = by_key[key] or {}
      by_key[key][x.n] = x
      count = count + 1
    end
  end
  file:close()
  local meta = {}
  local text = fs.read(dir .. "/" .. M.META)
  if text then meta = json.decode(text) or {} end
  return { dir = dir, by_key = by_key, count = count, meta = type(meta) == "table" and meta or {} }
end

-- The issue a recording was made for, to replay it without asking the forge; a different
-- --issue is refused (its answers belong to the recorded issue).
function M.issue(recording, asked)
  local issue = type(recording.meta.issue) == "table" and recording.meta.issue or nil
  if not issue or (issue.number == nil and issue.title == nil) then
    errors.usage("--replay %s: the recording does not say which issue it was made for (its %s has no issue): record it "
      .. "again with this codeassist", recording.dir, M.META)
  end
  if asked and issue.number and tostring(asked) ~= tostring(issue.number) then
    errors.usage("--replay %s: the recording is of issue #%s, not #%s", recording.dir, tostring(issue.number), tostring(asked))
  end
  return issue
end

-- JSON's null (cjson.null) as nil, all the way down, so a replayed message looks as fresh.
local function without_nulls(v, depth)
  if v == json.null then return nil end
  if type(v) ~= "table" or depth > 200 then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = without_nulls(x, depth + 1) end
  return out
end

-- A complete(cfg, route, req, opts) that serves a loaded recording (M.load).
function M.player(recording, iteration)
  local counts = {}
  return function(_, route, _, opts)
    local gate, i = opts and opts.gate or route.gate, iteration()
    local key = key_of(gate, i, route)
    counts[key] = (counts[key] or 0) + 1
    local n = counts[key]
    local x = (recording.by_key[key] or {})[n]
    if not x then
      local held = recording.by_key[key] and #recording.by_key[key] or 0
      errors.goal("--replay %s: no recorded answer for the %s gate, iteration %s, model %s (call %d; the recording "
        .. "holds %d for it) — the run took another path than the recorded one (a changed preset, route or prompt); "
        .. "record it again with --record", recording.dir, tostring(gate), tostring(i), label(route), n, held)
    end
    if x.cancelled then
      -- the recorded call never ended (a gate's timeout cancelled it): wait as it did, for the
      -- same timeout to end this one
      require("codeassist.task").sleep((tonumber(x.seconds) or 0) + 60)
      error(require("codeassist.task").cancelled_error(), 0)
    end
    if x.message ~= nil and x.message ~= json.null then
      local msg = without_nulls(x.message, 0)
      if opts and opts.on_event and type(msg.content) == "table" then
        -- the live line's token count, as if it had streamed
        for _, block in ipairs(msg.content) do
          if type(block) == "table" and type(block.text) == "string" then
            opts.on_event("content_block_delta", { delta = { text = block.text } })
          end
        end
      end
      return msg
    end
    local e = without_nulls(x.error or {}, 0)
    return nil, errors.failure(errors.KINDS[e.kind] and e.kind or "protocol",
      tostring(e.message or "a recorded failure"), { status = e.status, retryable = e.retryable, headers = e.headers,
                                                     error_type = e.error_type, retry_after = e.retry_after, replayed = true })
  end
end

return M
