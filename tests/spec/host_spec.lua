-- The host itself: built-in modules, lazy loading, versions, clock and terminal policy.
local support = require "support"

local function run_lua(code, opts)
  local dir = support.tmpdir()
  support.write(dir .. "/x.lua", code)
  local r = support.codeassist({ "run", dir .. "/x.lua" }, opts)
  support.cleanup()
  return r
end

describe("the host", function()
  it("offers cjson and cjson.safe", function()
    local cjson, safe = require "cjson", require "cjson.safe"
    assert.are.same({ a = { 1, 2 } }, cjson.decode('{"a":[1,2]}'))
    assert.has_error(function() cjson.decode("{") end, "Expected object key string but found T_END at character 2")
    local v, err = safe.decode("{")
    assert.is_nil(v)
    assert.are.equal("Expected object key string but found T_END at character 2", err)
  end)

  it("loads library modules only when first required", function()
    local r = run_lua([[
local names = {}
for name in pairs(package.loaded) do
  if name:match("^codeassist") or name == "cjson" or name == "argparse" then names[#names + 1] = name end
end
table.sort(names)
print(table.concat(names, " "))
require "codeassist.yaml"
print(package.loaded["codeassist.yaml"] ~= nil)
]])
    assert.are.equal(0, r.code)
    -- only what `run` itself needs is loaded before the script starts
    local first = r.stdout:match("^(.-)\n")
    assert.not_matches("codeassist%.yaml", first)
    assert.not_matches("codeassist%.proc", first)
    assert.not_matches("cjson", first)
    assert.matches("\ntrue\n$", r.stdout)
  end)

  it("never searches the working directory for modules", function()
    local r = run_lua("print(package.path) print(package.cpath)")
    assert.not_matches("%./%?", r.stdout)
  end)

  it("gives library chunks names that point at their source files", function()
    local r = run_lua([[
local info = debug.getinfo(require("codeassist.errors").new, "S")
print(info.source)
]])
    assert.matches("^@scripts/codeassist/errors%.lua\n$", r.stdout)
  end)

  it("prints its version and those of LuaJIT, libcurl and libyaml", function()
    local r = support.codeassist({ "--version" })
    assert.are.equal(0, r.code)
    assert.matches("^codeassist %d+%.%d+%.%d+", r.stdout)
    assert.matches("LuaJIT 2%.1", r.stdout)
    assert.matches("libcurl %d+%.%d+", r.stdout)
    assert.matches("libyaml %d+%.%d+", r.stdout)
    local v = require("codeassist.host").versions()
    assert.matches("^2%.1", v.luajit:gsub("^LuaJIT ", ""))
  end)

  it("publishes the exit-code table", function()
    assert.are.same({ ok = 0, goal_not_met = 1, usage = 2, internal = 3, interrupted = 130 },
      require("codeassist.host").exit_codes)
  end)

  it("keeps monotonic and wall time, and sleeps about as long as asked", function()
    local clock = require "codeassist.clock"
    local t0 = clock.monotonic()
    clock.sleep(0.05)
    local dt = clock.monotonic() - t0
    assert.is_true(dt >= 0.045 and dt < 2, "slept " .. dt)   -- generous: the machine is shared
    assert.is_true(math.abs(clock.wall() - os.time()) < 2)
  end)

  it("reports terminal facts for pipes", function()
    local term = require "codeassist.term"
    local r = run_lua([[
local term = require "codeassist.term"
print(term.isatty("stdout"), term.color("stdout"), term.width("stdout"))
]], { env = { COLUMNS = "" } })
    assert.are.equal("false\tfalse\t80\n", r.stdout)
    assert.is_boolean(term.isatty("stdout"))
    local ok, err = pcall(function() local tty = term.isatty("nonsense"); return tty end)
    assert.is_false(ok)
    assert.matches("^tests/spec/host_spec%.lua:%d+: bad argument #1 to 'isatty' %(invalid option 'nonsense'%)", err)
  end)

  it("kills every process group it started on a second signal, more than 64 of them", function()
    local task = require "codeassist.task"
    local proc = require "codeassist.proc"
    local fs = require "codeassist.fs"
    local clock = require "codeassist.clock"
    local dir = support.tmpdir()
    -- 80 groups that ignore SIGTERM, so only the second signal's SIGKILL can end them
    support.write(dir .. "/x.lua", [[
local task = require "codeassist.task"
local proc = require "codeassist.proc"
local host = require "codeassist.host"
local fs = require "codeassist.fs"
host.graceful(true)
for i = 1, 80 do
  task.spawn(function()
    proc.run{ "trap '' TERM; echo $$ >> pids; exec sleep 60", shell = true, kill_grace = 60 }
  end)
end
while not host.interrupted() do task.sleep(0.02) end
assert(fs.write_atomic("first_signal_seen", ""))
task.sleep(60)
]])
    -- Runs codeassist as a child subreaper: the groups it kills become our zombies, reaped
    -- here; then prints its exit code and how many processes were left alive (and ends them).
    support.write(dir .. "/reap.py", [[
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
inner = os.fork()
if inner == 0:
    os.execv(sys.argv[1], sys.argv[1:])
with open("inner.pid", "w") as f:
    f.write(str(inner))
_, status = os.waitpid(inner, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
deadline = time.time() + 5
while time.time() < deadline:
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            time.sleep(0.01)
    except ChildProcessError:
        break
left = []
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if fields[1] == str(os.getpid()) and fields[0] != "Z":
        left.append(int(p))
for p in left:
    os.kill(p, 9)
print(code, len(left))
]])
    local runner = task.spawn(function()
      return proc.run{ "python3", "reap.py", support.bin, "run", "x.lua", cwd = dir, timeout = 120 }
    end)
    local function lines(name)
      local text = fs.read(dir .. "/" .. name)
      return text and select(2, text:gsub("\n", "")) or 0
    end
    local deadline = clock.monotonic() + 30
    while lines("pids") < 80 do
      assert(clock.monotonic() < deadline, "the 80 programs did not start")
      task.sleep(0.02)
    end
    local inner = fs.read(dir .. "/inner.pid")
    support.sh("kill -INT " .. inner)
    while not fs.stat(dir .. "/first_signal_seen") do
      assert(clock.monotonic() < deadline, "the first signal was not seen")
      task.sleep(0.02)
    end
    support.sh("kill -INT " .. inner)
    local ok, r = task.join(runner)
    assert.is_true(ok, tostring(r))
    assert.are.equal("130 0\n", r.stdout, r.stderr)
    for pid in fs.read(dir .. "/pids"):gmatch("%d+") do
      assert.is_nil(fs.stat("/proc/" .. pid), "process " .. pid .. " is still there")
    end
    support.cleanup()
  end)
end)
