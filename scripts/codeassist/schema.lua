-- Checking a value against a schema: the one checker behind the config file and presets.
--
--   schema.check(value, node, report, opts)
--     report(severity, path, message, parent, key)   -- "error" | "warning"; path "routes.build.floor"
--
-- A node:
--   { type = "number" | "integer" | "boolean" | "string" | "url" | "table" | "list" | "function" | "any",
--     min, max,                -- numbers
--     enum = {...},            -- strings: the allowed values (did-you-mean on a near miss)
--     fields = {k = node},     -- tables: the known keys; a node with required = true must be there
--     each = node,             -- tables: the node of every value (a map); lists: of every item
--     known = {...}, known_what = "gate",  -- a map's keys must be one of these (did-you-mean)
--     unknown = "warning" | "error",       -- what an unknown key is (default: the check's opts)
--     open = true,             -- tables: anything goes inside
--     what = "the route(gate, ctx) hook",  -- named in type errors
--     instead = {table = "routes"},        -- a value of this type was probably meant for that key
--     legacy = true }          -- accepted and ignored
--   { either = {node, node, ...} }  -- the first alternative of the value's own type decides
local M = {}

-- The closest of the known names, if it is close enough to be a typo.
function M.suggest(name, known)
  local distance = require("codeassist.models_core").distance
  local best, best_d
  for _, k in ipairs(known) do
    local limit = math.max(1, math.floor(#k / 4)) + 1
    local d = distance(tostring(name), k, limit)
    if d <= limit and (not best_d or d < best_d) then best, best_d = k, d end
  end
  return best
end

function M.did_you_mean(name, known)
  local hint = M.suggest(name, known)
  return hint and (" — did you mean '" .. hint .. "'?") or ""
end

function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or #v > 0)
end

-- How a value reads in a message: YAML users think in mappings, Lua users in tables.
local function describe(v, opts)
  if opts.null ~= nil and v == opts.null then return "null" end
  if type(v) == "table" then
    if #v > 0 then return "a list" end
    return opts.lua and "a table" or "a mapping"
  end
  if type(v) == "string" then return ("a string (%q)"):format(v) end
  if type(v) == "function" then return "a function" end
  if v == nil then return "nothing" end
  return ("a %s (%s)"):format(type(v), tostring(v))
end
M.describe = describe

-- The Lua type a node expects, to pick among `either` alternatives.
local BASE = { number = "number", integer = "number", boolean = "boolean", string = "string",
               url = "string", table = "table", list = "table", ["function"] = "function" }

local function expected(node, opts)
  if node.either then
    local parts = {}
    for _, alt in ipairs(node.either) do parts[#parts + 1] = expected(alt, opts) end
    return table.concat(parts, " or ")
  end
  local t = node.type
  if node.what then return node.what end
  if t == "string" and node.enum then return "one of " .. table.concat(node.enum, ", ") end
  if t == "table" then return opts.lua and "a table" or "a mapping" end
  if t == "list" then return "a list" end
  if t == "url" then return "an http:// or https:// address" end
  if t == "integer" then return "a whole number" end
  if t == "function" then return "a function" end
  return "a " .. t
end

local check

local function check_either(value, node, path, report, parent, key, opts)
  -- the alternatives whose type the value has; a list and a map are both tables
  local matching = {}
  for _, alt in ipairs(node.either) do
    local base = alt.either and nil or BASE[alt.type]
    if base == type(value) then
      if alt.type == "list" and not is_list(value) then base = nil end
      if alt.type == "table" and type(value) == "table" and #value > 0 then base = nil end
    end
    if base == type(value) then matching[#matching + 1] = alt end
  end
  if #matching == 0 then
    return report("error", path, ("expected %s, found %s"):format(expected(node, opts), describe(value, opts)), parent, key)
  end
  -- the first matching alternative that passes wins; else the first one's problems stand
  for _, alt in ipairs(matching) do
    local failed = false
    check(value, alt, path, function(severity) if severity == "error" then failed = true end end, parent, key, opts)
    if not failed then return check(value, alt, path, report, parent, key, opts) end
  end
  return check(value, matching[1], path, report, parent, key, opts)
end

check = function(value, node, path, report, parent, key, opts)
  if node.legacy then return end
  if node.either then return check_either(value, node, path, report, parent, key, opts) end
  local t = node.type
  local function wrong()
    local instead = node.instead and node.instead[type(value)]
    return report("error", path, ("expected %s, found %s%s"):format(expected(node, opts), describe(value, opts),
      instead and (" — did you mean '" .. instead .. "'?") or ""), parent, key)
  end
  if t == "any" then return end
  if t == "number" or t == "integer" then
    if type(value) ~= "number" or value ~= value then return wrong() end
    if t == "integer" and value % 1 ~= 0 then return report("error", path, "expected a whole number, found " .. value, parent, key) end
    if (node.min and value < node.min) or (node.max and value > node.max) then
      return report("error", path, ("must be between %s and %s, found %s"):format(node.min, node.max, value), parent, key)
    end
  elseif t == "boolean" or t == "function" then
    if type(value) ~= t then return wrong() end
  elseif t == "string" then
    if type(value) ~= "string" then return wrong() end
    if node.enum then
      for _, e in ipairs(node.enum) do if e == value then return end end
      return report("error", path, ("'%s' is not one of %s%s"):format(value, table.concat(node.enum, ", "),
        M.did_you_mean(value, node.enum)), parent, key)
    end
  elseif t == "url" then
    if type(value) ~= "string" or not value:match("^https?://[^/%s]+") then return wrong() end
  elseif t == "list" then
    if not is_list(value) then return wrong() end
    for i, item in ipairs(value) do check(item, node.each, path .. "[" .. i .. "]", report, value, i, opts) end
  elseif t == "table" then
    if type(value) ~= "table" or #value > 0 then return wrong() end
    if node.open then return end
    local field_names = node.fields and M.sorted_keys(node.fields)
    for _, k in ipairs(M.sorted_keys(value)) do
      local child = node.fields and node.fields[k] or node.each
      local child_path = path == "" and tostring(k) or (path .. "." .. tostring(k))
      local unknown_severity = node.unknown or opts.unknown or "warning"
      if node.known and not node.known_set then
        node.known_set = {}
        for _, n in ipairs(node.known) do node.known_set[n] = true end
      end
      if node.known and not node.known_set[k] then
        report(unknown_severity, child_path, ("unknown %s '%s'%s (known: %s)"):format(node.known_what or "name",
          tostring(k), M.did_you_mean(k, node.known), table.concat(node.known, ", ")), value, k)
      end
      if child then
        check(value[k], child, child_path, report, value, k, opts)
      elseif not node.known then
        report(unknown_severity, child_path, "unknown key" .. (field_names and M.did_you_mean(k, field_names) or "")
          .. (unknown_severity == "warning" and " (ignored)" or ""), value, k)
      end
    end
    for _, k in ipairs(field_names or {}) do
      if node.fields[k].required and value[k] == nil then
        report("error", path, ("'%s' is required"):format(k), parent, key)
      end
    end
  end
end

-- opts: { unknown = "warning" | "error" (default warning), lua = true (say "table"),
--         null = a value that reads as null }
function M.check(value, node, report, opts)
  check(value, node, "", report, nil, nil, opts or {})
end

-- Runs check and collects the problems as "path: message" strings.
function M.problems(value, node, opts)
  local out = { errors = {}, warnings = {} }
  M.check(value, node, function(severity, path, message)
    local list = severity == "error" and out.errors or out.warnings
    list[#list + 1] = (path ~= "" and (path .. ": ") or "") .. message
  end, opts)
  return out
end

return M
