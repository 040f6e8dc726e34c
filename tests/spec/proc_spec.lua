-- codeassist.proc: argv runs, captured output, timeouts that leave nothing behind.
local proc = require "codeassist.proc"
local task = require "codeassist.task"
local clock = require "codeassist.clock"
local fs = require "codeassist.fs"
local support = require "support"

-- The message of the error fn raises (it must raise).
local function raised(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("codeassist.proc", function()
  it("runs an argv without a shell and captures both streams", function()
    local r = assert(proc.run{ "sh", "-c", 'echo out; echo err >&2; exit 3' })
    assert.are.equal(3, r.code)
    assert.are.equal("out\n", r.stdout)
    assert.are.equal("err\n", r.stderr)
    assert.is_false(r.timed_out)
    r = assert(proc.run{ "echo", "$HOME;", "`id`" })
    assert.are.equal("$HOME; `id`\n", r.stdout)
  end)

  it("runs a shell script only when asked", function()
    local r = assert(proc.run{ "echo hi; exit 4", shell = true })
    assert.are.equal(4, r.code)
    assert.are.equal("hi\n", r.stdout)
  end)

  it("feeds stdin, sets cwd, and adds or removes environment variables", function()
    assert.are.equal("abc", proc.run{ "cat", stdin = "abc" }.stdout)
    assert.are.equal("", proc.run{ "cat" }.stdout)   -- /dev/null, never the terminal
    assert.are.equal("/tmp\n", proc.run{ "pwd", cwd = "/tmp" }.stdout)
    local r = proc.run{ "sh", "-c", 'echo "$FOO ${HOME:-nohome}"', env = { FOO = "bar", HOME = false } }
    assert.are.equal("bar nohome\n", r.stdout)
    r = proc.run{ "/usr/bin/env", clear_env = true, env = { ONLY = "1" } }
    assert.are.equal("ONLY=1\n", r.stdout)
  end)

  it("feeds a large stdin while draining a large output, without deadlock", function()
    local big = string.rep("0123456789abcdef", 65536)   -- 1 MiB
    local r = assert(proc.run{ "cat", stdin = big, timeout = 10 })
    assert.are.equal(#big, #r.stdout)
    assert.is_true(r.stdout == big)
  end)

  it("says clearly when a program cannot start, with the failure's kind", function()
    local r, err = proc.run{ "definitely-not-a-program" }
    assert.is_nil(r)
    assert.are.equal("not_found", err.kind)
    assert.are.equal("definitely-not-a-program", err.program)
    assert.matches("^cannot run 'definitely%-not%-a%-program': command not found in PATH", err.message)
    assert.are.equal(err.message, tostring(err))
    r, err = proc.run{ "/nonexistent/bin/tool" }
    assert.is_nil(r)
    assert.are.equal("not_found", err.kind)
    assert.are.equal("cannot run '/nonexistent/bin/tool': No such file or directory", err.message)
    r, err = proc.run{ "ls", cwd = "/nonexistent" }
    assert.is_nil(r)
    assert.are.equal("not_found", err.kind)
    assert.are.equal("cannot run 'ls': working directory '/nonexistent': No such file or directory",
      err.message)
    local dir = support.tmpdir()
    support.write(dir .. "/script", "#!/nonexistent/interpreter\n")
    support.sh("chmod +x '" .. dir .. "/script'")
    r, err = proc.run{ dir .. "/script" }
    assert.is_nil(r)
    assert.are.equal("exec", err.kind)
    assert.matches("^cannot run '.*/script': No such file or directory", err.message)
    support.cleanup()
  end)

  it("raises a caller's mistake at the caller's line", function()
    local here = "^tests/spec/proc_spec%.lua:%d+: "
    assert.matches(here .. "proc%.run: give the program and its arguments",
      raised(function() proc.run{} end))
    assert.matches(here .. "proc%.run: give a table such as {\"make\", \"test\", cwd = dir}, not a string",
      raised(function() proc.run("ls") end))
    assert.matches(here .. "proc%.run: timeout must be a finite number >= 0",
      raised(function() proc.run{ "true", timeout = "soon" } end))
    assert.matches(here .. "proc%.run: cwd must be a string",
      raised(function() proc.run{ "true", cwd = {} } end))
    assert.matches(here .. "proc%.run: env must be a table of NAME = value",
      raised(function() proc.run{ "true", env = "A=1" } end))
    assert.matches(here .. "proc%.run: argument 2 must be a string, not table",
      raised(function() proc.run{ "echo", {} } end))
    assert.matches(here .. "proc%.run: with shell = true give one command string",
      raised(function() proc.run{ "echo", "a", shell = true } end))
  end)

  it("reports a script's misuse as its own FILE:LINE with exit 2, not as a bug", function()
    local dir = support.tmpdir()
    for name, code in pairs{
      empty = 'local proc = require "codeassist.proc"\n\nproc.run{}\n',
      string = 'local proc = require "codeassist.proc"\nlocal r =\n  proc.run("ls")\n',
      option = 'local proc = require "codeassist.proc"\n\nproc.run{ "true", timeout = "soon" }\n',
    } do
      support.write(dir .. "/" .. name .. ".lua", code)
      local r = support.codeassist({ "run", name .. ".lua" }, { cwd = dir })
      assert.are.equal(2, r.code, r.stderr)
      assert.matches("^codeassist: " .. name .. "%.lua:3: proc%.run: ", r.stderr)
      assert.not_matches("internal error", r.stderr)
    end
    support.cleanup()
  end)

  it("watches more than 64 descriptors: 100 programs finish with their output while 25 others run on", function()
    local n = 100
    local short, long = {}, {}
    for i = 1, n do
      short[i] = task.spawn(function() return proc.run{ "sh", "-c", "sleep 0.2; echo " .. i } end)
    end
    -- started last, these come first in the loop's list of watches: with a fixed array of 64
    -- descriptors they took every slot, and the short programs were never seen to end
    for i = 1, 25 do long[i] = task.spawn(function() return proc.run{ "sleep", "60" } end) end
    local all, err = task.timeout(30, function()
      local results = {}
      for i = 1, n do
        local ok, r = task.join(short[i])
        assert(ok, tostring(r))
        results[i] = r
      end
      return results
    end)
    for i = 1, 25 do task.cancel(long[i]) end
    assert.is_table(all, tostring(err))
    for i = 1, n do
      assert.are.equal(0, all[i].code)
      assert.are.equal(i .. "\n", all[i].stdout)
      assert.is_false(all[i].timed_out)
    end
  end)

  it("reports a signal by number and name", function()
    local r = assert(proc.run{ "sh", "-c", "kill -TERM $$" })
    assert.is_nil(r.code)
    assert.are.equal(15, r.signal)
    assert.are.equal("SIGTERM", r.signal_name)
  end)

  it("caps captured output, keeping head and tail and the true size", function()
    local r = assert(proc.run{ "sh", "-c", "echo START; head -c 100000 /dev/zero | tr '\\0' x; echo; echo END",
                                max_output = 1000 })
    assert.is_true(r.truncated)
    assert.are.equal(#"START\n" + 100000 + #"\nEND\n", r.stdout_bytes)
    assert.is_true(#r.stdout < 1200)
    assert.matches("^START\n", r.stdout)
    assert.matches("END\n$", r.stdout)
  end)

  -- Bounds are generous (other suites share the machine): the point is that the programs'
  -- own 10 or 30 s never run out.
  it("times out sleep 10 at 0.2 s, well before it ends, leaving no child or grandchild", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "sleep", "10", timeout = 0.2 })
    assert.is_true(clock.monotonic() - t0 < 5)
    assert.is_true(r.timed_out)
    assert.are.same({}, support.group_members(r.pid))

    t0 = clock.monotonic()
    r = assert(proc.run{ "sleep 30 & sleep 31 & wait", shell = true, timeout = 0.2 })
    assert.is_true(clock.monotonic() - t0 < 5)
    assert.is_true(r.timed_out)
    assert.are.same({}, support.group_members(r.pid))
  end)

  it("escalates to SIGKILL when the group ignores SIGTERM", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "trap '' TERM; sleep 30", shell = true, timeout = 0.1, kill_grace = 0.2 })
    assert.is_true(r.timed_out)
    assert.is_true(clock.monotonic() - t0 < 10)
    assert.are.same({}, support.group_members(r.pid))
  end)

  it("ends grandchildren that outlive the program and would hold its pipes", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "sleep 30 & echo started", shell = true, timeout = 5 })
    assert.is_true(clock.monotonic() - t0 < 10)
    assert.are.equal(0, r.code)
    assert.are.equal("started\n", r.stdout)
    assert.are.same({}, support.group_members(r.pid))
  end)

  it("leaves no file descriptors behind", function()
    local before = #fs.list("/proc/self/fd")
    for _ = 1, 50 do proc.run{ "true", stdin = "x" } end
    proc.run{ "sleep", "5", timeout = 0.05 }
    assert.are.equal(before, #fs.list("/proc/self/fd"))
  end)
end)
