-- read: a file's lines, numbered, from a line on, within a line and byte budget.
local fs = require "codeassist.fs"

local MAX_LINES, MAX_BYTES = 2000, 100000

return {
  name = "read",
  description = "Read a text file of the repository. Lines come numbered (\"  12\\tcode\"). "
    .. "Use offset and limit for long files; the answer says how to read on.",
  input_schema = { type = "object", properties = {
    path = { type = "string", description = "File path, relative to the repository root" },
    offset = { type = "integer", minimum = 1, maximum = 1e9, description = "First line to read (1 = the first line)" },
    limit = { type = "integer", minimum = 1, maximum = 1e9, description = "How many lines to read (default 2000)" },
  }, required = { "path" } },

  run = function(input, env)
    local path, why, denied = env.ws:resolve(input.path)
    if not path then return nil, why, denied end
    local st = fs.stat(path)
    if not st then return nil, input.path .. " does not exist" end
    if st.type == "dir" then return nil, input.path .. " is a folder; use glob to list it" end
    if st.type ~= "file" then return nil, input.path .. " is not a regular file (a FIFO or a device)" end
    local text, err = fs.read(path, { max_bytes = 50e6 })
    if not text then return nil, err.message end
    if text:find("%z") then return nil, ("%s is a binary file (%d bytes)"):format(input.path, #text) end
    local first, limit = input.offset or 1, input.limit or MAX_LINES
    local out, n, bytes, last = {}, 0, 0, first - 1
    local total = select(2, text:gsub("\n", "")) + ((text ~= "" and text:sub(-1) ~= "\n") and 1 or 0)
    for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if n >= first then
        if n >= first + limit then break end
        local shown = ("%6d\t%s\n"):format(n, line)
        if bytes + #shown > MAX_BYTES then break end
        out[#out + 1] = shown
        bytes, last = bytes + #shown, n
      end
    end
    if total == 0 then return ("(%s is empty)"):format(input.path) end
    if first > total then return nil, ("%s has %d lines; offset %d is past the end"):format(input.path, total, first) end
    local body = table.concat(out)
    if last < total then
      body = body .. ("[lines %d-%d of %d; read on with offset=%d]\n"):format(first, last, total, last + 1)
    end
    return body
  end,
}
