-- Helpers shared by the specs: run the real binary, make temp folders, write files.
local proc = require "codeassist.proc"
local fs = require "codeassist.fs"
local clock = require "codeassist.clock"

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

-- The commands `codeassist --help` lists (sorted), and the options `codeassist ARGS --help`
-- lists: what completion and the man page must cover.
function M.help_commands()
  local help = M.codeassist{ "--help" }.stdout
  local list = {}
  for line in (help:match("\nCommands:\n(.-)\n\n") or ""):gmatch("[^\n]+") do
    list[#list + 1] = line:match("^   ([%w-]+)")   -- a summary's second line starts further right
  end
  table.sort(list)
  return list
end

function M.help_options(args)
  local argv = {}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--help"
  local list = {}
  for name in (M.codeassist(argv).stdout:match("\nOptions:\n(.*)$") or ""):gmatch("%s(%-%-[%w-]+)") do
    list[#list + 1] = name
  end
  assert(#list > 0, table.concat(args, " ") .. " --help lists no options")
  return list
end

-- fn's results, then the seconds it took.
function M.timed(fn)
  local t0 = clock.monotonic()
  local a, b = fn()
  return a, b, clock.monotonic() - t0
end

-- A loopback URL where nothing listens: a port that was bound, then closed (connection refused).
function M.closed_port_url()
  local r = M.sh([[python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()"]])
  return "http://127.0.0.1:" .. r.stdout:gsub("%s+$", "")
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

-- Starts the model simulator (tests/fakes/llm_server.py) on a free loopback port.
-- It runs in its own session so proc.run's group cleanup leaves it alone, and under
-- `timeout` so a crashed spec cannot leave it behind for long.
local Simulator = {}
Simulator.__index = Simulator

function M.simulator(args)
  local dir = M.tmpdir()
  local port_file = dir .. "/port"
  -- The shell waits for the port file: were it to exit first, proc.run would end its process
  -- group before setsid had moved the simulator out of it.
  local r = M.sh(("setsid timeout 600 python3 '%s/tests/fakes/llm_server.py' --port-file '%s' %s "
    .. "> '%s/sim.log' 2>&1 < /dev/null & echo $!; i=0; "
    .. "while [ ! -f '%s' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done")
    :format(M.root, port_file, args or "", dir, port_file))
  local sim = setmetatable({ pid = tonumber(r.stdout), dir = dir }, Simulator)
  local deadline = clock.monotonic() + 10
  while not fs.stat(port_file) do
    assert(clock.monotonic() < deadline, "the simulator did not start: " .. (fs.read(dir .. "/sim.log") or ""))
    clock.sleep(0.02)
  end
  sim.port = tonumber(fs.read(port_file))
  sim.url = "http://127.0.0.1:" .. sim.port
  return sim
end

-- POSTs (or GETs, without doc) a control endpoint and returns the decoded answer.
function Simulator:control(path, doc)
  return assert(require("codeassist.http").json(self.url .. path, { body = doc, timeout = 10 }))
end

function Simulator:fault(f) return self:control("/_sim/faults", { f }) end
function Simulator:log() return self:control("/_sim/log") end
function Simulator:reset() return self:control("/_sim/reset", {}) end

function Simulator:stop()
  if self.pid then M.sh("kill " .. self.pid .. " 2>/dev/null; true") end
  self.pid = nil
end

return M
