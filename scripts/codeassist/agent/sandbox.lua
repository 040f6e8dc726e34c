-- Where the agent's commands run: inside bubblewrap (the root read-only, the workspace
-- writable but its .git/config and .git/hooks read-only, a private /tmp, /run and home, no
-- network unless allowed, a clean environment), or —
-- where bubblewrap cannot run — directly, with the same clean environment, after saying so
-- once and loudly. `agent.sandbox: required` refuses to run without it; `off` never uses it.
local proc = require "codeassist.proc"
local errors = require "codeassist.errors"

local M = {}

M.PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

-- Variables a command may see; everything else (ANTHROPIC_*, tokens, keys) is left out.
local KEEP = { "LANG", "LC_ALL", "LC_CTYPE", "TZ", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
               "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL" }

local probed

-- Whether bubblewrap works here: {available, version, reason}. Asked once per process.
function M.probe()
  if probed then return probed end
  local r = proc.run{ "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                      "--unshare-pid", "--die-with-parent", "--", "/bin/true", timeout = 10 }
  if r and r.code == 0 then
    local v = proc.run{ "bwrap", "--version", timeout = 5 }
    probed = { available = true, version = v and v.stdout:match("[%d.]+") or "?" }
  elseif not r then
    probed = { available = false, reason = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap" }
  else
    local why = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
    probed = { available = false, reason = ("bubblewrap cannot run here (%s): user namespaces may be disabled"):format(why) }
  end
  return probed
end

-- The environment commands get: a short allowlist, HOME in the private /tmp.
function M.environment(extra)
  local env = { PATH = M.PATH, HOME = "/tmp/home", TMPDIR = "/tmp", TERM = "dumb", NO_COLOR = "1",
                GIT_TERMINAL_PROMPT = "0", PAGER = "cat", GIT_PAGER = "cat" }
  for _, k in ipairs(KEEP) do env[k] = os.getenv(k) end
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

local Sandbox = {}
Sandbox.__index = Sandbox

-- opts: {root, mode = "auto" | "required" | "off", network = false, env = {extra variables}}.
-- Returns the sandbox, or nil and a failure (required, but bubblewrap cannot run).
function M.new(opts)
  errors.argcheck(type(opts) == "table" and type(opts.root) == "string", "sandbox.new: give {root = the workspace}")
  local mode = opts.mode or "auto"
  local sb = setmetatable({ root = opts.root, network = opts.network == true, env = M.environment(opts.env) }, Sandbox)
  if mode == "off" then
    sb.kind, sb.warning = "none", "agent.sandbox is off: commands run without bubblewrap"
    return sb:with_private_home()
  end
  local p = M.probe()
  if p.available then
    sb.kind, sb.version = "bwrap", p.version
    return sb
  end
  if mode == "required" then
    return nil, errors.failure("unavailable", p.reason .. "; agent.sandbox is required, so the agent will not run")
  end
  sb.kind = "none"
  sb.warning = p.reason .. "; commands run UNSANDBOXED (only the guardrails apply). Set agent.sandbox: required to refuse instead."
  return sb:with_private_home()
end

-- Without bubblewrap, HOME is still not the user's: an empty folder of our own.
function Sandbox:with_private_home()
  local r = proc.run{ "mktemp", "-d", "/tmp/codeassist-home-XXXXXX", timeout = 5 }
  if r and r.code == 0 then self.env.HOME = r.stdout:gsub("%s+$", "") end
  return self
end

-- Removes the private home made for running without bubblewrap.
function Sandbox:close()
  if self.kind == "none" and self.env.HOME:find("^/tmp/codeassist%-home%-") then
    proc.run{ "rm", "-rf", self.env.HOME, timeout = 10 }
  end
end

-- What a sandboxed command may read but not change, relative to the workspace.
local PROTECTED = { ".git", ".claude", ".codeassist" }
M.PROTECTED = PROTECTED

-- The argv that runs shell text in this sandbox.
function Sandbox:argv(command)
  if self.kind ~= "bwrap" then return { "/bin/sh", "-c", command } end
  -- /run holds the host's sockets (databases, docker, D-Bus); a home that is not the user's,
  -- since keys and tokens live there (~/.config/gh, ~/.netrc). The workspace is mounted after
  -- them, so it is there even when it lies inside the home.
  local a = { "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run" }
  local seen = {}
  for _, home in ipairs{ os.getenv("HOME") or "", "/root" } do
    if home ~= "" and home ~= "/" and not seen[home] and require("codeassist.fs").stat(home) then
      seen[home] = true
      a[#a + 1], a[#a + 2] = "--tmpfs", home
    end
  end
  a[#a + 1], a[#a + 2], a[#a + 3] = "--bind", self.root, self.root
  -- The repository's git folder is read-only here, and being a mount point it cannot be moved
  -- aside and replaced: what it says (config, hooks, commondir, filters) runs later outside the
  -- sandbox, when the runtime itself uses git. The agent reads history; the runtime commits.
  -- The run's own configuration (.claude/, .codeassist/: providers, keys' hosts, gate code) is
  -- read-only for the same reason.
  for _, f in ipairs(PROTECTED) do
    if require("codeassist.fs").stat(self.root .. "/" .. f) then
      a[#a + 1], a[#a + 2], a[#a + 3] = "--ro-bind", self.root .. "/" .. f, self.root .. "/" .. f
    end
  end
  for _, x in ipairs{ "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                      "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", self.root } do
    a[#a + 1] = x
  end
  if not self.network then a[#a + 1] = "--unshare-net" end
  a[#a + 1] = "--clearenv"
  local names = {}
  for k in pairs(self.env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do a[#a + 1], a[#a + 2], a[#a + 3] = "--setenv", k, self.env[k] end
  for _, x in ipairs{ "--dir", self.env.HOME, "--", "/bin/sh", "-c", command } do a[#a + 1] = x end
  return a
end

-- Runs shell text: proc.run's result (code, stdout, stderr, timed_out, ...) or nil and a failure.
function Sandbox:run(command, opts)
  opts = opts or {}
  local argv = self:argv(command)
  argv.cwd = self.root
  argv.timeout = opts.timeout or 120
  argv.max_output = opts.max_output or 1e6
  argv.clear_env = true
  argv.env = self.env
  argv.stdin = ""
  return proc.run(argv)
end

return M
