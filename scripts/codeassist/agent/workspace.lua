-- The agent's workspace: the repository folder every tool is confined to. A path is taken
-- relative to it and resolved the way the kernel would (following symlinks); `..`, absolute
-- paths, symlinks that lead out and /proc/self/root are refused with a message a model can
-- act on.
local fs = require "codeassist.fs"
local errors = require "codeassist.errors"

local M = {}

local Workspace = {}
Workspace.__index = Workspace

-- The workspace at root (a folder that exists), or nil and a failure.
function M.open(root)
  errors.argcheck(type(root) == "string" and root ~= "", "workspace.open: give the repository's folder")
  local st, err = fs.stat(root)
  if not st then return nil, err end
  if st.type ~= "dir" then return nil, errors.failure("not_found", root .. " is not a folder") end
  local real = assert(fs.confine(root, "."))
  return setmetatable({ root = real }, Workspace)
end

-- The real path of path inside the workspace, or nil, why (for the model) and, for an
-- escape, the guardrail decision to audit.
function Workspace:resolve(path)
  if type(path) ~= "string" or path == "" then return nil, "path must be a non-empty string" end
  if path:find("%z") then return nil, "path must not contain a NUL byte" end
  local real, err = fs.confine(self.root, path)
  if real then return real end
  if err.kind == "escape" then
    local why = ("%s is outside the repository: every path must stay inside %s (%s)"):format(path, self.root, err.message)
    return nil, why, { decision = "deny", reason = "path escape: " .. path }
  end
  return nil, err.message
end

-- Whether the workspace is a git repository (then git grep searches it).
function Workspace:is_git()
  if self.git == nil then self.git = fs.stat(self.root .. "/.git") ~= nil end
  return self.git
end

-- A real path as the model should see it: relative to the workspace.
function Workspace:relative(real)
  if real == self.root then return "." end
  local prefix = self.root .. "/"
  if real:sub(1, #prefix) == prefix then return real:sub(#prefix + 1) end
  return real
end

-- Text cut to at most max bytes: its head and its tail, saying how much was left out.
function M.cap(text, max)
  text = text or ""
  if #text <= max then return text end
  local head = math.floor(max * 0.6)
  local tail = max - head
  -- cut at line ends where there is one close by, so lines stay whole
  local h = text:sub(1, head):match("^(.*\n)") or text:sub(1, head)
  local t = text:sub(-tail):match("\n(.*)$") or text:sub(-tail)
  return ("%s\n[... %d bytes cut from the middle: the output was %d bytes ...]\n%s"):format(h, #text - #h - #t, #text, t)
end

return M
