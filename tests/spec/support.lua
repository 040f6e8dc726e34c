-- Helpers shared by the specs: run the real binary, make temp folders, write files.
local proc = require "codeassist.proc"
local fs = require "codeassist.fs"

local M = {}

M.bin = assert(os.getenv("CODEASSIST_BIN"), "run the specs through tests/run.sh")
M.root = assert(os.getenv("CODEASSIST_ROOT"))

-- Runs `codeassist ARGS...`; opts go to proc.run (env, stdin, cwd, timeout).
function M.codeassist(args, opts)
  local argv = { M.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  opts = opts or {}
  argv.env, argv.cwd, argv.stdin = opts.env, opts.cwd, opts.stdin
  argv.timeout = opts.timeout or 30
  return assert(proc.run(argv))
end

function M.sh(script, opts)
  opts = opts or {}
  return assert(proc.run{ script, shell = true, env = opts.env, cwd = opts.cwd,
                          timeout = opts.timeout or 30 })
end

local made = {}

function M.tmpdir()
  local r = M.sh("mktemp -d /tmp/codeassist-spec-XXXXXX")
  local dir = r.stdout:gsub("%s+$", "")
  made[#made + 1] = dir
  return dir
end

function M.cleanup()
  for _, dir in ipairs(made) do M.sh("rm -rf '" .. dir .. "'") end
  made = {}
end

function M.write(path, content)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then assert(fs.mkdir_p(dir)) end
  assert(fs.write_atomic(path, content))
  return path
end

-- Process ids whose process group is pgid, zombies included (read from /proc, no ps needed).
function M.group_members(pgid)
  local members = {}
  for _, name in ipairs(fs.list("/proc")) do
    if name:match("^%d+$") then
      local stat = fs.read("/proc/" .. name .. "/stat")
      -- fields after the ")" that ends the command name: state ppid pgrp ...
      -- zombies count too: proc.run must have reaped every member before it returns
      local pgrp = (stat or ""):match("%) %S+ %d+ (%d+)")
      if pgrp and tonumber(pgrp) == pgid then
        members[#members + 1] = tonumber(name)
      end
    end
  end
  return members
end

return M
