-- Checking a value against a schema: the one checker behind the config file and presets.
--
--   schema.check(value, node, report, opts)
--     report(severity, path, message, parent, key)   -- "error" | "warning"; path "routes.build.floor"
--
-- A node:
--   { type = "number" | "integer" | "boolean" | "string" | "url" | "table" | "list" | "function" | "any",
--     min, max,                -- numbers (never NaN or infinite)
--     enum = {...},            -- strings: the allowed values (did-you-mean on a near miss)
--     token = true,            -- strings: no spaces or control characters, at most MAX_TOKEN
--                              -- characters (keys, model names)
--     fields = {k = node},     -- tables: the known keys; a node with required = true must be there
--     each = node,             -- tables: the node of every value (a map); lists: of every item
--     known = {...}, known_what = "gate",  -- a map's keys must be one of these (did-you-mean)
--     unknown = "warning" | "error",       -- what an unknown key is (default: the check's opts)
--     min_items = 1, max_items = 64, unique = true,   -- lists
--     open = true,             -- tables: anything goes inside
--     what = "the route(gate, ctx) hook",  -- named in type errors
--     instead = {table = "routes"},        -- a value of this type was probably meant for that key
--     legacy = true }          -- accepted and ignored
--   { either = {node, node, ...} }  -- the first alternative of the value's own type decides
--
-- Values may share tables (YAML aliases) or contain cycles (Lua): each table is checked once
-- per node, a cycle is an error, and nesting is capped, so the check is linear in the value.
local errors = require "codeassist.errors"

local M = {}

M.MAX_DEPTH = 32

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

local function key_order(a, b)
  if type(a) ~= type(b) then return type(a) < type(b) end
  if type(a) == "string" or type(a) == "number" then return a < b end
  return tostring(a) < tostring(b)
end

function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, key_order)
  return keys
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or #v > 0)
end

-- A name or value as a message quotes it: a long one (a 16 MB string in a config file) is
-- cut, so no message grows with the file.
local function quoted(v)
  v = tostring(v)
  if #v <= 80 then return v end
  return ("%s… (%d characters)"):format(v:sub(1, 60), #v)
end
M.quoted = quoted

-- How a value reads in a message: YAML users think in mappings, Lua users in tables.
local function describe(v, opts)
  if opts.null ~= nil and v == opts.null then return "null" end
  if type(v) == "table" then
    if #v > 0 then return "a list" end
    return opts.lua and "a table" or "a mapping"
  end
  if type(v) == "string" then
    local shown = #v > 60 and (v:sub(1, 60) .. "…") or v
    return ("a string (%q)"):format(shown)
  end
  if type(v) == "function" then return "a function" end
  if v == nil then return "nothing" end
  if type(v) == "number" and v ~= v then return "NaN (not a number)" end
  if type(v) == "number" and (v == math.huge or v == -math.huge) then return "an infinite number" end
  return ("a %s (%s)"):format(type(v), tostring(v))
end
M.describe = describe

-- An http(s) URL a request can be sent to, or nil and what is wrong with it.
-- Longer is never a server address, model name or key (Ollama's names stay under 700).
M.MAX_URL = 2048
M.MAX_TOKEN = 1024

function M.url_problem(value)
  if type(value) ~= "string" then return "expected an http:// or https:// address" end
  if #value > M.MAX_URL then   -- checked first: the patterns below are slow on megabytes
    return ("is %d characters long; a server address is at most %d"):format(#value, M.MAX_URL)
  end
  if value:find("[%s%c]") then return "contains a space or a control character" end
  local scheme, authority, rest = value:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme or (scheme:lower() ~= "http" and scheme:lower() ~= "https") then
    return "expected an http:// or https:// address"
  end
  if rest:find("[?#]") then return "must not have a query or fragment (?…, #…): give the server root" end
  local hostport = authority:gsub("^.*@", "")
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return "has no host name" end
  if port ~= "" and (tonumber(port) < 1 or tonumber(port) > 65535) then
    return ("port %s is out of range (1-65535)"):format(port)
  end
  return nil
end

-- The Lua type a node expects, to pick among `either` alternatives.
local BASE = { number = "number", integer = "number", boolean = "boolean", string = "string",
               url = "string", table = "table", list = "table", ["function"] = "function" }

local function accepts_type(alt, value)
  local base = not alt.either and BASE[alt.type]
  if base ~= type(value) then return alt.type == "any" end
  if alt.type == "list" and not is_list(value) then return false end
  if alt.type == "table" and #value > 0 then return false end
  return true
end

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

local function child_path(path, k)
  local part = type(k) == "string" and quoted(k) or ("[" .. (type(k) == "number" and tostring(k) or describe(k, {})) .. "]")
  if path == "" then return part end
  return part:sub(1, 1) == "[" and (path .. part) or (path .. "." .. part)
end

local check

-- Checks each alternative once, keeping its problems, and reports those of the one chosen.
local function check_either(value, node, path, report, parent, key, opts, state)
  local matching = {}
  for _, alt in ipairs(node.either) do
    if accepts_type(alt, value) then matching[#matching + 1] = alt end
  end
  if #matching == 0 then
    return report("error", path, ("expected %s, found %s"):format(expected(node, opts), describe(value, opts)), parent, key)
  end
  local first
  for _, alt in ipairs(matching) do
    local kept, failed = {}, false
    check(value, alt, path, function(severity, ...)
      kept[#kept + 1] = { severity, ... }
      failed = failed or severity == "error"
    end, parent, key, opts, state)
    first = first or kept
    if not failed then first = kept break end
  end
  for _, p in ipairs(first) do report(unpack(p, 1, 5)) end
end

-- "expected a list, found a string (...)": a plain function, not a closure per checked value
-- (a config of 50 000 values must not make 50 000 closures).
local function wrong(value, node, path, report, parent, key, opts)
  local instead = node.instead and node.instead[type(value)]
  return report("error", path, ("expected %s, found %s%s"):format(expected(node, opts), describe(value, opts),
    instead and (" — did you mean '" .. instead .. "'?") or ""), parent, key)
end

-- True the first time this table meets this node. A table shared by several keys (a YAML
-- alias) is checked once per node: state.seen[t] is the first node, state.seen_more[t] the
-- set of any others (rare; no set per table).
local function first_visit(state, value, node)
  local first = state.seen[value]
  if first == nil then state.seen[value] = node return true end
  if first == node then return false end
  local more = state.seen_more[value]
  if not more then more = {} state.seen_more[value] = more end
  if more[node] then return false end
  more[node] = true
  return true
end

check = function(value, node, path, report, parent, key, opts, state)
  if node.legacy then return end
  if type(value) == "table" then
    if state.on_path[value] then
      return report("error", path, "refers to itself (a cycle): give a value, not a reference back to it", parent, key)
    end
    if state.depth >= M.MAX_DEPTH then
      return report("error", path, ("nested more than %d levels deep"):format(M.MAX_DEPTH), parent, key)
    end
    if not first_visit(state, value, node) then return end
  end
  if node.either then return check_either(value, node, path, report, parent, key, opts, state) end
  local t = node.type
  if t == "any" then return end
  if t == "number" or t == "integer" then
    if type(value) ~= "number" or value ~= value or value == math.huge or value == -math.huge then return wrong(value, node, path, report, parent, key, opts) end
    if t == "integer" and value % 1 ~= 0 then return report("error", path, "expected a whole number, found " .. value, parent, key) end
    if (node.min and value < node.min) or (node.max and value > node.max) then
      return report("error", path, ("must be between %s and %s, found %s"):format(node.min, node.max, value), parent, key)
    end
  elseif t == "boolean" or t == "function" then
    if type(value) ~= t then return wrong(value, node, path, report, parent, key, opts) end
  elseif t == "string" then
    if type(value) ~= "string" then return wrong(value, node, path, report, parent, key, opts) end
    if node.enum then
      for _, e in ipairs(node.enum) do if e == value then return end end
      return report("error", path, ("'%s' is not one of %s%s"):format(quoted(value), table.concat(node.enum, ", "),
        M.did_you_mean(value, node.enum)), parent, key)
    end
    if node.token and #value > M.MAX_TOKEN then
      return report("error", path, ("is %d characters long; a model name or key is at most %d"):format(#value, M.MAX_TOKEN),
        parent, key)
    end
    if node.token and (value == "" or value:find("[%s%c]")) then
      return report("error", path, value == "" and "must not be empty"
        or "must not contain spaces, line breaks or control characters", parent, key)
    end
  elseif t == "url" then
    local problem = M.url_problem(value)
    if problem then
      if type(value) ~= "string" then return wrong(value, node, path, report, parent, key, opts) end
      if #value > M.MAX_URL then return report("error", path, "the address " .. problem, parent, key) end
      local shown = require("codeassist.http").redact(value)
      if problem:find("^expected") then
        return report("error", path, ("%s, found '%s'"):format(problem, shown), parent, key)
      end
      return report("error", path, ("'%s' %s"):format(shown, problem), parent, key)
    end
  elseif t == "list" or t == "table" then
    if t == "list" and not is_list(value) then return wrong(value, node, path, report, parent, key, opts) end
    if t == "table" and (type(value) ~= "table" or #value > 0) then return wrong(value, node, path, report, parent, key, opts) end
    state.depth = state.depth + 1
    state.on_path[value] = true
    if t == "list" then
      if node.min_items and #value < node.min_items then
        report("error", path, ("needs at least %d item%s"):format(node.min_items, node.min_items == 1 and "" or "s"), parent, key)
      end
      if node.max_items and #value > node.max_items then
        return report("error", path, ("has %d items; at most %d"):format(#value, node.max_items), parent, key)
      end
      local items = node.unique and {}
      for i, item in ipairs(value) do
        check(item, node.each, path .. "[" .. i .. "]", report, value, i, opts, state)
        if items and items[item] then
          report("error", path .. "[" .. i .. "]", ("'%s' is listed twice"):format(quoted(item)), value, i)
        end
        if items and item == item then items[item] = true end   -- NaN (.nan) cannot be a key
      end
    elseif not node.open then
      M.check_fields(value, node, path, report, parent, key, opts, state)
    end
    state.on_path[value] = nil
    state.depth = state.depth - 1
  end
end

-- The keys of a table against node.fields / node.each / node.known.
function M.check_fields(value, node, path, report, parent, key, opts, state)
  -- sorted once per node: a map of thousands of entries checks the same node each time
  if node.fields and not node.field_names then node.field_names = M.sorted_keys(node.fields) end
  local field_names = node.field_names
  for _, k in ipairs(M.sorted_keys(value)) do
    local child = node.fields and node.fields[k] or node.each
    local cpath = child_path(path, k)
    local unknown_severity = node.unknown or opts.unknown or "warning"
    if node.known and not node.known_set then
      node.known_set = {}
      for _, n in ipairs(node.known) do node.known_set[n] = true end
    end
    if node.known and not node.known_set[k] then
      report(unknown_severity, cpath, ("unknown %s '%s'%s (known: %s)"):format(node.known_what or "name",
        quoted(k), M.did_you_mean(k, node.known), table.concat(node.known, ", ")), value, k)
    end
    if type(k) ~= "string" and not node.each then
      report(unknown_severity, cpath, "unknown key (keys are names)", value, k)
    elseif child then
      check(value[k], child, cpath, report, value, k, opts, state)
    elseif not node.known then
      -- the nearest known key that would accept this value: `routse = {...}` meant routes
      local fitting = {}
      for _, name in ipairs(field_names or {}) do
        local n = node.fields[name]
        if n.either or accepts_type(n, value[k]) then fitting[#fitting + 1] = name end
      end
      local hint = M.suggest(k, fitting)
      report(unknown_severity, cpath, "unknown key" .. (hint and (" — did you mean '" .. hint .. "'?")
        or (field_names and M.did_you_mean(k, field_names) or ""))
        .. (unknown_severity == "warning" and " (ignored)" or ""), value, k)
    end
  end
  for _, k in ipairs(field_names or {}) do
    if node.fields[k].required and value[k] == nil then
      report("error", path, ("'%s' is required"):format(k), parent, key)
    end
  end
end

-- opts: { unknown = "warning" | "error" (default warning), lua = true (say "table"),
--         null = a value that reads as null }
function M.check(value, node, report, opts)
  errors.argcheck(type(node) == "table", "schema.check: the second argument must be a schema node (a table), not %s", type(node))
  errors.argcheck(type(report) == "function", "schema.check: the third argument must be a function(severity, path, message)")
  check(value, node, "", report, nil, nil, opts or {}, { seen = {}, seen_more = {}, on_path = {}, depth = 0 })
end

-- Runs check and collects the problems as "path: message" strings.
function M.problems(value, node, opts)
  errors.argcheck(type(node) == "table", "schema.problems: the second argument must be a schema node (a table), not %s", type(node))
  local out = { errors = {}, warnings = {} }
  check(value, node, "", function(severity, path, message)
    local list = severity == "error" and out.errors or out.warnings
    list[#list + 1] = (path ~= "" and (path .. ": ") or "") .. message
  end, nil, nil, opts or {}, { seen = {}, seen_more = {}, on_path = {}, depth = 0 })
  return out
end

return M
