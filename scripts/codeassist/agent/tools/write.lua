-- write: a whole file, created or replaced (folders made as needed), atomically.
local fs = require "codeassist.fs"

return {
  name = "write",
  description = "Write a file of the repository with the given content, creating it (and its folders) "
    .. "or replacing it. For a small change to an existing file, use edit.",
  input_schema = { type = "object", properties = {
    path = { type = "string", description = "File path, relative to the repository root" },
    content = { type = "string", description = "The whole new content of the file" },
  }, required = { "path", "content" } },

  run = function(input, env)
    local path, why, denied = env.ws:resolve(input.path)
    if not path then return nil, why, denied end
    local refused, dir = env.ws:protected(path)
    if refused then return nil, refused, { decision = "deny", reason = "write into " .. dir } end
    local st = fs.stat(path)
    if st and st.type == "dir" then return nil, input.path .. " is a folder" end
    if st and st.type ~= "file" then return nil, input.path .. " is not a regular file" end
    local dir = path:match("^(.*)/[^/]*$")
    if dir and dir ~= "" then
      local ok, err = fs.mkdir_p(dir)
      if not ok then return nil, err.message end
    end
    local ok, err = fs.write_atomic(path, input.content)
    if not ok then return nil, err.message end
    local lines = select(2, input.content:gsub("\n", ""))
    return ("%s %s (%d bytes, %d lines)"):format(st and "replaced" or "created", env.ws:relative(path), #input.content, lines)
  end,
}
