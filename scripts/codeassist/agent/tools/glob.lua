-- glob: file paths matching a pattern (** for any depth), relative to the repository.
local fs = require "codeassist.fs"

local MAX = 500

return {
  name = "glob",
  description = "List files of the repository matching a glob pattern (\"*.c\", \"src/**/*.lua\"). "
    .. "Names starting with a dot are left out unless the pattern names them.",
  input_schema = { type = "object", properties = {
    pattern = { type = "string", description = "Glob pattern, relative to path" },
    path = { type = "string", description = "Folder to search from (default: the repository root)" },
  }, required = { "pattern" } },

  run = function(input, env)
    if input.pattern:sub(1, 1) == "/" or ("/" .. input.pattern .. "/"):find("/%.%./") then
      return nil, "the pattern must stay inside the repository (no leading / and no ..)",
        { decision = "deny", reason = "path escape: " .. input.pattern }
    end
    local base, why, denied = env.ws:resolve(input.path or ".")
    if not base then return nil, why, denied end
    -- "**/**/x" means "**/x": repeated ** would only multiply the walk
    local pattern = input.pattern
    repeat
      local before = pattern
      pattern = pattern:gsub("%*%*/%*%*/", "**/"):gsub("%*%*/%*%*$", "**")
    until pattern == before
    local list, truncated = fs.glob(base .. "/" .. pattern, { max = MAX })
    if not list then return nil, truncated and truncated.message or "the pattern cannot be read" end
    local out = {}
    for _, p in ipairs(list) do
      -- a symlink may point out of the repository: such entries are not listed
      if env.ws:resolve(p) then out[#out + 1] = env.ws:relative(p) end
    end
    if #out == 0 then return "no files match" end
    local text = table.concat(out, "\n") .. "\n"
    if truncated then text = text .. ("[only the first %d matches]\n"):format(MAX) end
    return text
  end,
}
