-- Keeping a conversation inside the model's window. Tokens are estimated from the JSON the
-- provider sends, pessimistically (3 characters a token: code tokenizes densely). When the
-- conversation would not fit, the oldest tool outputs are shortened first — their first and
-- last lines kept, and the model told what was left out — then the content of old writes.
-- The first message (the task) and the latest turns are never touched. Nothing is dropped
-- silently: a conversation that still does not fit ends the agent with reason "context".
local cjson = require "cjson.safe"
local utf8 = require("codeassist.agent.workspace").utf8

local M = {}

M.CHARS_PER_TOKEN = 3
M.KEEP_LAST = 2        -- the latest messages are never shortened
M.KEEP_LINES = 6       -- lines kept at each end of a shortened output

-- Blocks already shortened, kept aside: a block sent to a provider must carry only its own fields.
local done = setmetatable({}, { __mode = "k" })

function M.tokens(value)
  return math.ceil(#(cjson.encode(value) or "") / M.CHARS_PER_TOKEN)
end

local function lines_of(text)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

-- A tool output made short, saying so; nil when it is already short.
-- A kept line is cut too: a few long lines must not keep an output big.
local function cut(line) return #line > 160 and (line:sub(1, 160) .. "…") or line end

local function shorten(text, stub)
  if type(text) ~= "string" or #text < 400 then return nil end
  local lines = lines_of(text)
  if stub or #lines <= 2 * M.KEEP_LINES + 1 then
    return utf8(cut(lines[1]) .. ("\n[... %d bytes left out to fit the context window; run or read again for them ...]")
      :format(#text - #cut(lines[1])))
  end
  local kept = {}
  for k = 1, M.KEEP_LINES do kept[#kept + 1] = cut(lines[k]) end
  kept[#kept + 1] = ("[... %d lines left out to fit the context window; run or read again for them ...]")
    :format(#lines - 2 * M.KEEP_LINES)
  for k = #lines - M.KEEP_LINES + 1, #lines do kept[#kept + 1] = cut(lines[k]) end
  return utf8(table.concat(kept, "\n"))
end

-- Shortens messages in place until they fit in budget tokens. Returns whether they fit, the
-- estimate, and how many outputs were shortened.
function M.fit(messages, budget)
  local total = M.tokens(messages)
  if total <= budget then return true, total, 0 end
  local shortened = 0
  local last = #messages - M.KEEP_LAST
  -- tool outputs first, oldest first; then what old writes and edits carried; as a last
  -- resort, the latest outputs become stubs (the model can ask for them again)
  for pass = 1, 3 do
    for i = 2, pass == 3 and #messages or last do
      local m = messages[i]
      if type(m.content) == "table" then
        for _, b in ipairs(m.content) do
          local before
          if (pass == 1 or pass == 3) and b.type == "tool_result" and (not done[b] or pass == 3) then
            local s = shorten(type(b.content) == "string" and b.content or nil, pass == 3)
            if s and #s < #b.content then before = M.tokens(b.content); b.content = s; done[b] = true end
          elseif pass == 2 and b.type == "tool_use" and type(b.input) == "table" and not done[b] then
            for _, k in ipairs{ "content", "new_string", "old_string" } do
              local v = b.input[k]
              if type(v) == "string" and #v > 400 then
                before = (before or 0) + M.tokens(v)
                b.input[k] = ("[%d bytes written then; left out to fit the context window]"):format(#v)
                done[b] = true
              end
            end
          end
          if before then
            shortened = shortened + 1
            total = M.tokens(messages)
            if total <= budget then return true, total, shortened end
          end
        end
      end
    end
  end
  return total <= budget, total, shortened
end

return M
