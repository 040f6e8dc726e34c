-- Local models often print a tool call instead of making one. These are the shapes their
-- chat templates teach them (Ollama's templates for Qwen 2.5/3 and Hermes, Llama 3.x,
-- Mistral), plus JSON in a code fence: each becomes a real call, so the conversation goes on
-- in the proper form.
--
--   <tool_call>{"name": "read", "arguments": {"path": "a.c"}}</tool_call>      Qwen, Hermes
--   <|python_tag|>{"name": "read", "parameters": {"path": "a.c"}}              Llama 3.1+
--   {"name": "read", "parameters": {"path": "a.c"}}                            Llama 3.2 (the whole answer)
--   [TOOL_CALLS] [{"name": "read", "arguments": {"path": "a.c"}}]              Mistral
--   ```json {"name": "read", "arguments": {...}} ```                           any
local cjson = require "cjson.safe"

local M = {}

-- {name, input} from a decoded object, if it names a known tool.
local function as_call(obj, known)
  if type(obj) ~= "table" then return nil end
  if type(obj["function"]) == "table" then obj = obj["function"] end   -- {"type":"function","function":{...}}
  local name = obj.name
  if type(name) ~= "string" or not known[name] then return nil end
  local input = obj.arguments or obj.parameters or obj.input or {}
  if type(input) == "string" then input = cjson.decode(input) end
  if type(input) ~= "table" then return nil end
  return { name = name, input = input }
end

local function add_all(calls, decoded, known)
  if type(decoded) ~= "table" then return end
  if #decoded > 0 then
    for _, o in ipairs(decoded) do
      local c = as_call(o, known)
      if c then calls[#calls + 1] = c end
    end
  else
    local c = as_call(decoded, known)
    if c then calls[#calls + 1] = c end
  end
end

-- The tool calls printed in text, for tools named in known (a set); nil when there are none.
-- prose: the text with the calls taken out.
function M.calls_in_text(text, known)
  if type(text) ~= "string" or text == "" then return nil end
  local calls = {}
  local prose = text
  for body in text:gmatch("<tool_call>%s*(.-)%s*</tool_call>") do add_all(calls, cjson.decode(body), known) end
  if #calls > 0 then prose = text:gsub("<tool_call>.-</tool_call>", "") end
  if #calls == 0 then
    local tagged = text:match("<|python_tag|>%s*(.-)%s*$") or text:match("%[TOOL_CALLS%]%s*(.-)%s*$")
    if tagged then
      add_all(calls, cjson.decode(tagged), known)
      if #calls > 0 then prose = text:gsub("<|python_tag|>.*$", ""):gsub("%[TOOL_CALLS%].*$", "") end
    end
  end
  if #calls == 0 then
    for body in text:gmatch("```[%w]*%s*\n(.-)\n%s*```") do add_all(calls, cjson.decode(body), known) end
    if #calls > 0 then prose = text:gsub("```[%w]*%s*\n.-\n%s*```", "") end
  end
  if #calls == 0 then
    local whole = text:match("^%s*(%b{})%s*$") or text:match("^%s*(%b[])%s*$")
    if whole then
      add_all(calls, cjson.decode(whole), known)
      if #calls > 0 then prose = "" end
    end
  end
  if #calls == 0 then return nil end
  return calls, (prose:gsub("^%s+", ""):gsub("%s+$", ""))
end

return M
