-- codeassist.proc: argv runs, captured output, timeouts that leave nothing behind.
local proc = require "codeassist.proc"
local clock = require "codeassist.clock"
local fs = require "codeassist.fs"
local support = require "support"

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

  it("says clearly when a program cannot start", function()
    local r, err = proc.run{ "definitely-not-a-program" }
    assert.is_nil(r)
    assert.matches("cannot run 'definitely%-not%-a%-program': command not found in PATH", err)
    r, err = proc.run{ "ls", cwd = "/nonexistent" }
    assert.is_nil(r)
    assert.matches("working directory '/nonexistent'", err)
    assert.has_error(function() proc.run{} end)
    assert.has_error(function() proc.run{ "x", timeout = "soon" } end)
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

  it("times out sleep 10 at 0.2 s within 0.5 s, leaving no child or grandchild", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "sleep", "10", timeout = 0.2 })
    assert.is_true(clock.monotonic() - t0 < 0.5)
    assert.is_true(r.timed_out)
    assert.are.same({}, support.group_members(r.pid))

    t0 = clock.monotonic()
    r = assert(proc.run{ "sleep 30 & sleep 31 & wait", shell = true, timeout = 0.2 })
    assert.is_true(clock.monotonic() - t0 < 0.5)
    assert.is_true(r.timed_out)
    assert.are.same({}, support.group_members(r.pid))
  end)

  it("escalates to SIGKILL when the group ignores SIGTERM", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "trap '' TERM; sleep 30", shell = true, timeout = 0.1, kill_grace = 0.2 })
    assert.is_true(r.timed_out)
    assert.is_true(clock.monotonic() - t0 < 1)
    assert.are.same({}, support.group_members(r.pid))
  end)

  it("ends grandchildren that outlive the program and would hold its pipes", function()
    local t0 = clock.monotonic()
    local r = assert(proc.run{ "sleep 30 & echo started", shell = true, timeout = 5 })
    assert.is_true(clock.monotonic() - t0 < 2)
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
