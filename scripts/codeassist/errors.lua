-- Errors, in two styles with one rule:
--
-- * Raised errors stop the program. errors.usage / errors.config / errors.goal raise a
--   structured error whose `code` is the exit code (README "Exit codes"); errors.misuse
--   raises a caller's mistake (a wrong argument) at the caller's own file:line, so the author
--   of a script or preset sees where they went wrong (exit 2). Any other error raised inside
--   the library is a bug in codeassist (exit 3).
-- * Runtime failures are returned: `nil, failure`, where the failure is a table
--   {kind = <one of KINDS>, message = "...", ...extra} that prints as its message. The C
--   primitives (fs, yaml, proc) build the same value (runtime/failure.c).
local M = {}

-- Every kind a failure can have, and what it means. A kind is stable: code branches on it.
M.KINDS = {
  -- talking to servers (http, providers, the router)
  connect = "the connection was refused or the server could not be reached",
  dns = "the host name did not resolve",
  proxy = "the proxy could not be reached or refused to connect",
  tls = "the TLS handshake or the certificate check failed",
  timeout_connect = "no connection within timeout.connect",
  timeout_first_byte = "no answer within timeout.first_byte after sending the request (config: timeouts.first_byte)",
  timeout_idle = "the answer stalled for longer than timeout.idle",
  timeout_total = "the whole exchange took longer than timeout.total (config: timeouts.total, or a gate's call_timeout)",
  http = "the server answered with a status >= 400, or a redirect (3xx, never followed) (status, headers, body)",
  protocol = "the answer broke its protocol (a cut stream, not JSON, a wrong content type)",
  stream_error = "the server reported an error inside the stream",
  too_large = "more data than the limit allows",
  unavailable = "no route could serve the call (every candidate failed or was refused)",
  -- waiting
  timeout = "a deadline passed",
  cancelled = "the task was cancelled",
  interrupted = "SIGINT or SIGTERM arrived",
  deadlock = "nothing could ever end the wait",
  -- files and programs
  not_found = "no such file, folder or program",
  permission = "not allowed by the file system",
  exists = "the path already exists",
  no_space = "the disk is full",
  io = "reading or writing failed",
  escape = "the path leads outside the folder it is confined to",
  parse = "the document is not valid (YAML, JSON)",
  exec = "the program could not be started",
}

-- Failures that mean a server could not be reached at all (not that one answer was bad): a
-- pool fails over on them, the router's breaker counts them.
M.UNREACHABLE = { connect = true, dns = true, proxy = true, tls = true, timeout_connect = true }

-- The shared metatable: created by the host at start-up (runtime/failure.c), or here when
-- this file runs under a plain Lua.
local registry = debug.getregistry()
local Failure = registry["codeassist.failure"]
if not Failure then
  Failure = { __tostring = function(e) return e.message end,
              __concat = function(a, b) return tostring(a) .. tostring(b) end }
  registry["codeassist.failure"] = Failure
end

-- A runtime failure to return as `nil, failure`. An unknown kind is a bug in the caller.
function M.failure(kind, message, extra)
  if not M.KINDS[kind] then error(("errors.failure: unknown kind '%s'"):format(tostring(kind)), 2) end
  local e = extra or {}
  e.kind, e.message = kind, message
  return setmetatable(e, Failure)
end

function M.is_failure(value, kind)
  return getmetatable(value) == Failure and (kind == nil or value.kind == kind)
end

-- ===== raised errors =====

-- The metatable the host knows (runtime/failure.c): only errors with it set the exit code.
local Error = registry["codeassist.error"]
if not Error then
  Error = { __tostring = function(e) return e.message end }
  registry["codeassist.error"] = Error
end

local exit = require("codeassist.host").exit_codes   -- the host's table (runtime/host.h)
M.codes = { goal = exit.goal_not_met, usage = exit.usage, config = exit.usage, internal = exit.internal,
            interrupted = exit.interrupted }

function M.new(kind, message)
  return setmetatable({ kind = kind, code = M.codes[kind] or 3, message = message }, Error)
end

function M.is(value, kind)
  return getmetatable(value) == Error and (kind == nil or value.kind == kind)
end

local function format(fmt, ...)
  return select("#", ...) > 0 and fmt:format(...) or fmt
end

local function raiser(kind)
  return function(fmt, ...) error(M.new(kind, format(fmt, ...)), 0) end
end

M.usage = raiser("usage")
M.config = raiser("config")
M.goal = raiser("goal")

-- A caller's mistake, raised at the line that called the public function which found it:
--   function M.sleep(s) errors.argcheck(type(s) == "number", "task.sleep: seconds must be ...") end
-- Call it as a statement, never as `return errors.misuse(...)`: a tail call would drop the
-- public function's frame and blame the wrong line.
function M.misuse(fmt, ...)
  error(format(fmt, ...), 3)
end

function M.argcheck(ok, fmt, ...)
  if not ok then error(format(fmt, ...), 3) end
  return ok
end

local function pack(...) return { n = select("#", ...), ... } end

-- Runs code a user wrote (a preset file, a hook) so that what it raises stays theirs: a
-- message without a position (error("x", 2) at a file's top level) gets `where`, and a stack
-- overflow is caught here, where there is stack left to report it. Returns fn's results.
function M.call_user(where, fn, ...)
  local r = pack(pcall(fn, ...))
  if r[1] then return unpack(r, 2, r.n) end
  local e = r[2]
  if type(e) == "string" then
    -- "file:line: message" says where; what was running there is said too
    e = e:match("^[^\n]-:%d+: ") and (e .. " (in " .. where .. ")") or (where .. ": " .. e)
  end
  error(e, 0)
end

return M
