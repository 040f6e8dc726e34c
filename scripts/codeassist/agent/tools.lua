-- The agent's tools: the set a call offers the model, and the checks every call passes
-- before it runs (a known name, input that is a JSON object matching the tool's schema).
local json = require "codeassist.json"

local M = {}

M.ALL = { "read", "write", "edit", "glob", "grep", "bash" }

-- The tools by name, from a list of names (default all) or tool tables of one's own.
function M.set(list)
  local set = { order = {} }
  for _, t in ipairs(list or M.ALL) do
    local tool = type(t) == "string" and require("codeassist.agent.tools." .. t) or t
    set[tool.name] = tool
    set.order[#set.order + 1] = tool
  end
  return set
end

-- What the provider sends: {name, description, input_schema} with lists kept lists.
function M.definitions(set)
  local out = {}
  for _, t in ipairs(set.order) do
    local schema = { type = "object", properties = t.input_schema.properties,
                     required = json.array(t.input_schema.required or {}) }
    out[#out + 1] = { name = t.name, description = t.description, input_schema = schema }
  end
  return out
end

-- The tool's schema in a line a model can follow: read(path: string, offset?: integer, ...).
function M.signature(tool)
  local req = {}
  for _, k in ipairs(tool.input_schema.required or {}) do req[k] = true end
  local names = {}
  for k in pairs(tool.input_schema.properties) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if req[a] ~= req[b] then return req[a] == true end
    return a < b
  end)
  local parts = {}
  for _, k in ipairs(names) do
    parts[#parts + 1] = ("%s%s: %s"):format(k, req[k] and "" or "?", tool.input_schema.properties[k].type)
  end
  return ("%s(%s)"):format(tool.name, table.concat(parts, ", "))
end

local TYPES = {
  string = function(v) return type(v) == "string" end,
  boolean = function(v) return type(v) == "boolean" end,
  number = function(v) return type(v) == "number" and v == v end,
  integer = function(v) return type(v) == "number" and v == v and v % 1 == 0 end,
}

-- Whether input fits the tool's schema (the subset our tools use: an object of typed
-- properties, some required, integer bounds): true, or false and what is wrong.
function M.check_input(tool, input)
  if type(input) ~= "table" or #input > 0 then return false, "the input must be a JSON object" end
  local schema = tool.input_schema
  for _, k in ipairs(schema.required or {}) do
    if input[k] == nil then return false, ("'%s' is required"):format(k) end
  end
  for k, v in pairs(input) do
    local prop = schema.properties[k]
    if not prop then return false, ("'%s' is not an input of %s"):format(tostring(k), tool.name) end
    if not TYPES[prop.type](v) then
      local shown = type(v) == "table" and "a list or object" or (type(v) == "userdata" and "null") or type(v)
      return false, ("'%s' must be a %s, not %s"):format(k, prop.type, shown)
    end
    if prop.minimum and v < prop.minimum then return false, ("'%s' must be at least %s"):format(k, prop.minimum) end
    if prop.maximum and v > prop.maximum then return false, ("'%s' must be at most %s"):format(k, prop.maximum) end
  end
  return true
end

return M
