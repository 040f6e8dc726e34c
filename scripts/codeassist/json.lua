-- JSON for the whole library: lua-cjson underneath, plus what lua-cjson 2.1.0 lacks.
--
--   local json = require "codeassist.json"
--   json.encode{ required = json.array{} }   --> {"required":[]}
--   json.encode{ required = {} }             --> {"required":{}}   (an empty table is an object)
--   local doc, err = json.decode(text)       --> value, or nil and a failure of kind "parse"
--
-- lua-cjson 2.1.0 (Debian's) cannot tell an empty array from an empty object and encodes
-- both as {}; the Messages API rejects {} where a schema wants a list. json.array marks a
-- table as a list so that it stays one even when empty.
-- Our own instance, so its settings are ours: NaN and infinities encode as null (a report
-- must never fail to print because a number is odd).
local cjson = require("cjson.safe").new()
cjson.encode_invalid_numbers("null")
local errors = require "codeassist.errors"

local M = {}

M.null = cjson.null

local array_mt = { __name = "json.array" }
M.array_mt = array_mt

-- Marks t (a new table when nil) as a JSON array; returns it.
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

function M.is_array(t)
  return getmetatable(t) == array_mt
end

-- A string nothing else can contain (NUL bytes), swapped for [] after encoding.
local EMPTY = "\0codeassist.empty-array\0"
local EMPTY_ENCODED = ('"\\u0000codeassist.empty-array\\u0000"'):gsub("%p", "%%%0")   -- as a pattern

-- The value with every empty marked array replaced by EMPTY; tables are copied only on the
-- path to one, so a large request body without any is not copied at all.
local function mark_empty(v, depth)
  if type(v) ~= "table" then return v, false end
  if depth > 1000 then return v, false end   -- cjson reports the nesting itself
  if getmetatable(v) == array_mt and next(v) == nil then return EMPTY, true end
  local copy
  for k, x in pairs(v) do
    local y, changed = mark_empty(x, depth + 1)
    if changed then
      if not copy then
        copy = {}
        for kk, xx in pairs(v) do copy[kk] = xx end
      end
      copy[k] = y
    end
  end
  if copy then return copy, true end
  return v, false
end

-- The JSON text of v, or nil and a failure (a function, a cycle, too deep). Raises nothing;
-- NaN and infinities become null.
function M.encode(v)
  local marked, changed = mark_empty(v, 0)
  local text, err = cjson.encode(marked)
  if not text then return nil, errors.failure("parse", "cannot encode as JSON: " .. tostring(err)) end
  if changed then text = text:gsub(EMPTY_ENCODED, "[]") end
  return text
end

-- The value of a JSON text, or nil and a failure of kind "parse" quoting the start of it.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, errors.failure("parse", "expected JSON text, found " .. type(text))
  end
  local v, err = cjson.decode(text)
  if v == nil then
    local shown = text:sub(1, 80):gsub("%s+", " ")
    return nil, errors.failure("parse", ("not JSON (%s): %s%s"):format(tostring(err), shown, #text > 80 and "…" or ""))
  end
  return v
end

-- A decoded value as a message quotes it: strings quoted, cut to 40 characters and stripped
-- of control characters; NaN, infinities, null, objects and lists named. A server's value
-- goes in a message this way, never through tostring ("userdata: NULL", "table: 0x...").
function M.describe(v)
  if v == nil then return "missing" end
  if v == cjson.null then return "null" end
  local t = type(v)
  if t == "string" then
    local s = v:gsub("%c", "?")
    if #s > 40 then s = s:sub(1, 40) .. "…" end
    return '"' .. s .. '"'
  elseif t == "number" then
    if v ~= v then return "NaN" end
    if v == math.huge then return "Infinity" end
    if v == -math.huge then return "-Infinity" end
    return ("%.14g"):format(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return next(v) == nil and "an empty object" or #v > 0 and "a list" or "an object"
  end
  return "a " .. t
end

-- Whether a decoded field is left out: missing, or null.
function M.absent(v)
  return v == nil or v == cjson.null
end

-- Whether v is a number that can be counted with: finite and at least 0.
function M.is_count(v)
  return type(v) == "number" and v == v and v >= 0 and v ~= math.huge
end

return M
