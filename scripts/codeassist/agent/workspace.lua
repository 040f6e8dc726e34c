-- The agent's workspace: the repository folder every tool is confined to. A path is taken
-- relative to it and resolved the way the kernel would (following symlinks); a path that
-- leads outside — through `..`, as an absolute path, through a symlink, /proc/self/root — is
-- refused with a message a model can act on.
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

-- Why the tools do not write a real path, or nil: git's own files (.git/...) and the run's
-- own configuration (.claude/, .codeassist/), which the runtime reads outside the sandbox.
local PROTECTED = {
  [".git"] = "files under .git are not for editing: git keeps them",
  [".claude"] = "files under .claude are the run's own configuration: not for the agent to change",
  [".codeassist"] = "files under .codeassist are the run's own gates and state: not for the agent to change",
}
function Workspace:protected(real)
  for dir, why in pairs(PROTECTED) do
    local top = self.root .. "/" .. dir
    if real == top or real:sub(1, #top + 1) == top .. "/" then return why, dir end
  end
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

-- Valid UTF-8: a file in Latin-1 or a half character after a cut would make the next request
-- invalid JSON for the provider. Each invalid byte becomes U+FFFD.
local REPLACEMENT = "\239\191\189"
local SECOND = { [0xE0] = { 0xA0, 0xBF }, [0xED] = { 0x80, 0x9F }, [0xF0] = { 0x90, 0xBF }, [0xF4] = { 0x80, 0x8F } }

function M.utf8(s)
  if not s:find("[\128-\255]") then return s end
  local out, start, i, n = {}, 1, 1, #s
  local byte = string.byte
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      local lo, hi = 0x80, 0xBF
      if SECOND[c] then lo, hi = SECOND[c][1], SECOND[c][2] end
      local b = byte(s, i + 1)
      ok = b >= lo and b <= hi
      for k = 2, len - 1 do
        if not ok then break end
        b = byte(s, i + k)
        ok = b >= 0x80 and b <= 0xBF
      end
    end
    if ok then
      i = i + len
    else
      out[#out + 1] = s:sub(start, i - 1)
      out[#out + 1] = REPLACEMENT
      i = i + 1
      start = i
    end
  end
  out[#out + 1] = s:sub(start)
  return table.concat(out)
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
  return M.utf8(("%s\n[... %d bytes cut from the middle: the output was %d bytes ...]\n%s"):format(h, #text - #h - #t, #text, t))
end

return M
