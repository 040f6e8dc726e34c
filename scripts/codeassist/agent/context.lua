-- Keeping a conversation inside the model's window. Tokens are estimated from the JSON the
-- provider sends, pessimistically (3 characters a token: code tokenizes densely). When the
-- conversation would not fit, the oldest tool outputs are shortened first — their first and
-- last lines kept, and the model told what was left out — then the content of old writes.
-- The first message (the task) and the latest turns are never touched. Nothing is dropped
-- silently: a conversation that still does not fit ends the agent with reason "context".
local cjson = require "cjson.safe"

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
local function shorten(text)
  if type(text) ~= "string" or #text < 400 then return nil end
  local lines = lines_of(text)
  if #lines <= 2 * M.KEEP_LINES + 1 then
    return text:sub(1, 150) .. ("\n[... %d bytes left out to fit the context window ...]\n"):format(#text - 300) .. text:sub(-150)
  end
  local head = table.concat(lines, "\n", 1, M.KEEP_LINES)
  local tail = table.concat(lines, "\n", #lines - M.KEEP_LINES + 1, #lines)
  return ("%s\n[... %d lines left out to fit the context window; run or read again for them ...]\n%s")
    :format(head, #lines - 2 * M.KEEP_LINES, tail)
end

-- Shortens messages in place until they fit in budget tokens. Returns whether they fit, the
-- estimate, and how many outputs were shortened.
function M.fit(messages, budget)
  local total = M.tokens(messages)
  if total <= budget then return true, total, 0 end
  local shortened = 0
  local last = #messages - M.KEEP_LAST
  -- tool outputs first, oldest first; then what old writes and edits carried
  for pass = 1, 2 do
    for i = 2, last do
      local m = messages[i]
      if type(m.content) == "table" then
        for _, b in ipairs(m.content) do
          local before
          if pass == 1 and b.type == "tool_result" and not done[b] then
            local s = shorten(type(b.content) == "string" and b.content or nil)
            if s then before = M.tokens(b.content); b.content = s; done[b] = true end
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
