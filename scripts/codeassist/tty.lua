-- Terminal primitives: colour marks, and live lines that are redrawn in place below the
-- text printed so far (progress of slow checks, running gates).
--
--   local tty = require "codeassist.tty"
--   local paint = tty.painter(true)           -- paint.ok("Server reachable") -> "✓ Server reachable" in green
--   local live = tty.live(io.stdout)
--   live:set("probe", "probing qwen3-coder (12s)")
--   live:print("✓ Server reachable")          -- permanent text goes above the live lines
--   live:clear()                              -- erase the live lines, e.g. before exiting
--
-- Live lines are cut to the terminal's width so that each takes exactly one row: the redraw
-- moves the cursor up by the number of rows it drew last time.
local term = require "codeassist.term"
local errors = require "codeassist.errors"

local M = {}

local ESC = "\27["

-- Marks and emphasis; plain text when colour is off (NO_COLOR, not a terminal, --no-color).
function M.painter(enabled)
  local function paint(code, s) return enabled and (ESC .. code .. "m" .. s .. ESC .. "0m") or s end
  return {
    enabled = enabled,
    ok = function(s) return paint("32", "✓") .. " " .. s end,
    bad = function(s) return paint("31", "✗") .. " " .. s end,
    warn = function(s) return paint("33", "⚠") .. " " .. s end,
    bold = function(s) return paint("1", s) end,
    dim = function(s) return paint("2", s) end,
    green = function(s) return paint("32", s) end,
    red = function(s) return paint("31", s) end,
    yellow = function(s) return paint("33", s) end,
  }
end

-- Text from elsewhere (a server's model names, a preset's name) made safe to print: control
-- characters, escape sequences included, become "?".
function M.printable(v)
  if v == nil then return nil end
  return (tostring(v):gsub("%c", "?"))
end

-- Display width of UTF-8 text without escape sequences (each code point one column: the
-- marks we print are all narrow).
function M.width(s)
  errors.argcheck(type(s) == "string", "tty.width: expected a string, not a %s", type(s))
  s = s:gsub("\27%[[%d;]*[A-Za-z]", "")
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

-- s cut to at most cols display columns, with "…" when cut (escape sequences kept whole).
function M.truncate(s, cols)
  errors.argcheck(type(s) == "string", "tty.truncate: expected a string, not a %s", type(s))
  errors.argcheck(type(cols) == "number" and cols >= 1, "tty.truncate: columns must be a number >= 1")
  if M.width(s) <= cols then return s end
  local out, w, i = {}, 0, 1
  while i <= #s and w < cols - 1 do
    local esc = s:match("^\27%[[%d;]*[A-Za-z]", i)
    if esc then
      out[#out + 1] = esc
      i = i + #esc
    else
      local ch = s:match("^[%z\1-\127\194-\244][\128-\191]*", i) or s:sub(i, i)
      out[#out + 1] = ch
      i = i + #ch
      w = w + 1
    end
  end
  return table.concat(out) .. "…" .. (s:find("\27", 1, true) and (ESC .. "0m") or "")
end

-- Lay rows out in columns: {{"GATE", "ROUTE"}, {...}} -> lines; the last column is not padded.
function M.columns(rows, indent)
  errors.argcheck(type(rows) == "table", "tty.columns: expected a list of rows (lists of strings), not a %s", type(rows))
  local widths = {}
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do widths[i] = math.max(widths[i] or 0, M.width(c)) end
  end
  local lines = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(r) do
      cells[i] = i < #r and (c .. string.rep(" ", widths[i] - M.width(c))) or c
    end
    lines[#lines + 1] = (indent or "") .. table.concat(cells, "  ")
  end
  return lines
end

local Live = {}
Live.__index = Live

function M.live(out, stream)
  return setmetatable({ out = out or io.stdout, stream = stream or "stdout", order = {}, text = {}, drawn = 0 }, Live)
end

function Live:_erase()
  if self.drawn > 0 then
    self.out:write("\r", ESC, self.drawn, "A", ESC, "J")
    self.drawn = 0
  end
end

function Live:_draw()
  local cols = math.max(20, (term.width(self.stream) or 80) - 1)
  local parts = {}
  for _, id in ipairs(self.order) do parts[#parts + 1] = M.truncate(self.text[id], cols) .. "\n" end
  self.out:write(table.concat(parts))
  self.drawn = #self.order
  self.out:flush()
end

-- Sets (or adds) the live line id.
function Live:set(id, text)
  if not self.text[id] then self.order[#self.order + 1] = id end
  self.text[id] = text
end

function Live:remove(id)
  if not self.text[id] then return end
  self.text[id] = nil
  for i, x in ipairs(self.order) do
    if x == id then table.remove(self.order, i) break end
  end
end

-- Repaints the live lines (after set/remove, or to tick their clocks).
function Live:redraw()
  self:_erase()
  self:_draw()
end

-- Prints permanent text above the live lines.
function Live:print(text)
  self:_erase()
  self.out:write(text)
  if text:sub(-1) ~= "\n" then self.out:write("\n") end
  self:_draw()
end

function Live:clear()
  self.order, self.text = {}, {}
  self:_erase()
  self.out:flush()
end

function Live:count()
  return #self.order
end

return M
