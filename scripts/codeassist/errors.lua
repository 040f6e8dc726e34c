-- Structured errors: a table with a stable kind, the exit code it maps to, and a message.
-- The host prints `codeassist: <message>` and exits with `code` (see README "Exit codes").
-- Raise with errors.usage(...) / errors.config(...) / errors.goal(...); library bugs stay
-- plain Lua errors and exit 3.
local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.message end

M.codes = { goal = 1, usage = 2, config = 2, internal = 3, interrupted = 130 }

function M.new(kind, message)
  return setmetatable({ kind = kind, code = M.codes[kind] or 3, message = message }, Error)
end

function M.is(value, kind)
  return getmetatable(value) == Error and (kind == nil or value.kind == kind)
end

local function raiser(kind)
  return function(fmt, ...)
    local message = select("#", ...) > 0 and fmt:format(...) or fmt
    error(M.new(kind, message), 0)
  end
end

-- A runtime failure returned as `nil, err` (not raised): {kind, message, ...extra}, printable.
local Failure = { __tostring = function(e) return e.message end }

function M.failure(kind, message, extra)
  local e = extra or {}
  e.kind, e.message = kind, message
  return setmetatable(e, Failure)
end

M.usage = raiser("usage")
M.config = raiser("config")
M.goal = raiser("goal")

return M
