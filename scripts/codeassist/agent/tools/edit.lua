-- edit: an exact string replaced by another. The string must be there, and only once unless
-- replace_all says otherwise: a model's guess at a file must never change the wrong place.
local fs = require "codeassist.fs"


return {
  name = "edit",
  description = "Replace an exact string in a file of the repository. old_string must appear exactly "
    .. "once (include surrounding lines to make it unique), unless replace_all is true. "
    .. "Whitespace and indentation must match the file.",
  input_schema = { type = "object", properties = {
    path = { type = "string", description = "File path, relative to the repository root" },
    old_string = { type = "string", description = "The exact text to replace" },
    new_string = { type = "string", description = "The text to put in its place" },
    replace_all = { type = "boolean", description = "Replace every occurrence (default false)" },
  }, required = { "path", "old_string", "new_string" } },

  run = function(input, env)
    local path, why, denied = env.ws:resolve(input.path)
    if not path then return nil, why, denied end
    local refused, dir = env.ws:protected(path)
    if refused then return nil, refused, { decision = "deny", reason = "edit in " .. dir } end
    local st = fs.stat(path)
    if st and st.type ~= "file" then return nil, input.path .. " is not a regular file" end
    if input.old_string == "" then return nil, "old_string is empty; to create a file use write" end
    if input.old_string == input.new_string then return nil, "old_string and new_string are the same" end
    local text, err = fs.read(path, { max_bytes = 50e6 })
    if not text then return nil, err.message end
    -- every occurrence, with its line number counted as the search goes (not from the top)
    local at, lines = {}, {}
    local from, line, counted = 1, 1, 1
    while true do
      local s, e = text:find(input.old_string, from, true)
      if not s then break end
      line = line + select(2, text:sub(counted, s - 1):gsub("\n", ""))
      counted = s
      at[#at + 1] = s
      lines[#lines + 1] = line
      from = e + 1
    end
    if #lines > 20 then lines = { lines[1], lines[2], lines[3], "...", lines[#lines] } end
    if #at == 0 then
      return nil, ("old_string was not found in %s: read the file again and copy the text exactly, "
        .. "whitespace included"):format(input.path)
    end
    if #at > 1 and not input.replace_all then
      return nil, ("old_string appears %d times in %s (lines %s): add surrounding lines to make it unique, "
        .. "or set replace_all"):format(#at, input.path, table.concat(lines, ", "))
    end
    local parts, prev = {}, 1
    for _, s in ipairs(at) do
      parts[#parts + 1] = text:sub(prev, s - 1)
      parts[#parts + 1] = input.new_string
      prev = s + #input.old_string
    end
    parts[#parts + 1] = text:sub(prev)
    local ok, werr = fs.write_atomic(path, table.concat(parts))
    if not ok then return nil, werr.message end
    return ("replaced %d occurrence%s in %s (line%s %s)"):format(#at, #at == 1 and "" or "s", env.ws:relative(path),
      #at == 1 and "" or "s", table.concat(lines, ", "))
  end,
}
