-- Run folders: `.codeassist/runs/<run-id>/` in the repository, one per `codeassist run`, kept
-- out of git through `.git/info/exclude`:
--
--   state.json     where the run is (iteration, step, scores, findings, budget, routing), written
--                  atomically at every step (temp file, fsync, rename, fsync of the folder)
--   ledger.jsonl   one line per model call (codeassist.ledger)
--   audit.jsonl    every tool call and guardrail decision (the agent's and the runtime's git)
--   trace.jsonl    every model request and response, and preset reloads, secrets scrubbed
--   report.md, report.json   at the end
--
--   local runs = require "codeassist.runs"
--   local run = runs.create(root, { issue = 7, preset = "ollama_hybrid" })
--   run:checkpoint(state_table)            -- nil, failure when it cannot be written
--   local run, state = runs.open(root, id)  -- id nil or "latest": the latest run
--   runs.list(root)                         -- {{id, state}, ...} newest first
local fs = require "codeassist.fs"
local json = require "codeassist.json"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"

local M = {}

M.DIR = ".codeassist/runs"
M.VERSION = 1

local Run = {}
Run.__index = Run

local function folder(root) return root .. "/" .. M.DIR end

-- "20261130-081500-7-a3f9": sorts by time, names the issue, unique.
local function new_id(issue)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(2) or tostring(clock.monotonic())
  if f then f:close() end
  local tag = ("%02x%02x"):format(bytes:byte(1), bytes:byte(2) or 0)
  local label = tostring(issue or "local"):gsub("[^%w]", "")
  return ("%s-%s-%s"):format(os.date("%Y%m%d-%H%M%S"), label:sub(1, 20), tag)
end

-- Keeps the runs folder out of git without touching a tracked file.
local function exclude(root)
  local git = require("codeassist.git").open(root, nil)
  local dir = git:output{ "rev-parse", "--absolute-git-dir" }
  if not dir then return end
  local path = dir:gsub("%s+$", "") .. "/info/exclude"
  local text = fs.read(path) or ""
  for line in text:gmatch("[^\n]+") do
    if line == "/" .. M.DIR .. "/" then return end
  end
  fs.mkdir_p(path:match("^(.*)/[^/]*$"))
  fs.write_atomic(path, text .. (text ~= "" and text:sub(-1) ~= "\n" and "\n" or "") .. "/" .. M.DIR .. "/\n")
end

local function paths(dir)
  return { dir = dir, state = dir .. "/state.json", ledger = dir .. "/ledger.jsonl", audit = dir .. "/audit.jsonl",
           trace = dir .. "/trace.jsonl", report_md = dir .. "/report.md", report_json = dir .. "/report.json" }
end

function M.create(root, info)
  errors.argcheck(type(root) == "string", "runs.create: give the repository's folder")
  info = info or {}
  local id = new_id(info.issue)
  local dir = folder(root) .. "/" .. id
  local ok, err = fs.mkdir_p(dir)
  if not ok then errors.goal("cannot make the run's folder %s: %s", dir, err.message) end
  exclude(root)
  return setmetatable({ id = id, root = root, paths = paths(dir), writes = 0 }, Run)
end

-- ===== a crash, on purpose, for the resume specs =====

-- CODEASSIST_CRASH_AT=N (set only by the specs) ends the process with SIGKILL at the Nth state
-- write of this process — with ":mid", after writing half of it to a temp file, as a crash
-- during the write would leave it.
local crash_at = os.getenv("CODEASSIST_CRASH_AT")
local function crash_now(run, data)
  local n, mid = (crash_at or ""):match("^(%d+)(:?m?i?d?)$")
  if not n or tonumber(n) ~= run.writes then return end
  if mid == ":mid" then
    local f = io.open(run.paths.state .. ".tmp-crash", "wb")
    if f then f:write(data:sub(1, math.floor(#data / 2))); f:close() end
  end
  local stat = io.open("/proc/self/stat")
  local pid = stat and stat:read("*n")
  if stat then stat:close() end
  io.stdout:flush()
  if pid then os.execute("kill -9 " .. pid) end
end

-- Writes state.json atomically. Returns true, or nil and the failure (the previous state is
-- intact: the rename never happened).
function Run:checkpoint(state)
  state.version, state.run_id, state.updated = M.VERSION, self.id, os.time()
  local data, err = json.encode(state)
  if not data then return nil, errors.failure("io", "the run's state cannot be written as JSON: " .. tostring(err)) end
  self.writes = self.writes + 1
  if crash_at then crash_now(self, data) end
  local t0 = clock.monotonic()
  local ok, werr = fs.write_atomic(self.paths.state, data)
  self.last_write_seconds = clock.monotonic() - t0
  if not ok then return nil, werr end
  return true
end

-- The run with this id (or the newest one), and its state; nil and a failure when there is none.
function M.open(root, id)
  local dir = folder(root)
  if not id or id == "latest" then   -- every command that takes a run id takes `latest`
    local list = M.list(root)
    if #list == 0 then return nil, errors.failure("not_found", ("there is no run in %s yet (`codeassist run PRESET --issue N` makes one)"):format(dir)) end
    id = list[1].id
  end
  if type(id) ~= "string" or not id:match("^[%w%-_.]+$") then
    return nil, errors.failure("not_found", ("'%s' is not a run id (codeassist runs lists them)"):format(tostring(id)))
  end
  local p = paths(dir .. "/" .. id)
  local text, err = fs.read(p.state)
  if not text then
    local why = err.kind == "not_found" and "" or (": " .. err.message)
    return nil, errors.failure("not_found", ("no run %s in %s (codeassist runs lists them)%s"):format(id, dir, why))
  end
  local state = json.decode(text)
  if type(state) ~= "table" or state.version ~= M.VERSION then
    return nil, errors.failure("protocol", ("%s is not a state file this codeassist can read"):format(p.state))
  end
  return setmetatable({ id = id, root = root, paths = p, writes = 0 }, Run), state
end

-- Every run with a readable state, newest first: {{id, state, paths}, ...}.
function M.list(root)
  local out = {}
  for _, id in ipairs(fs.list(folder(root)) or {}) do
    local p = paths(folder(root) .. "/" .. id)
    local state = json.decode(fs.read(p.state) or "")
    if type(state) == "table" then out[#out + 1] = { id = id, state = state, paths = p } end
  end
  -- newest first: by the second in the id, then (two runs in one second) by the start time
  -- the state keeps to the microsecond, then by id so the order is always the same
  table.sort(out, function(a, b)
    local sa, sb = a.id:sub(1, 15), b.id:sub(1, 15)
    if sa ~= sb then return sa > sb end
    local wa, wb = tonumber(a.state.started_wall) or 0, tonumber(b.state.started_wall) or 0
    if wa ~= wb then return wa > wb end
    return a.id > b.id
  end)
  return out
end

return M
