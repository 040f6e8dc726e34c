-- The binary's command line: arguments, exit codes, error messages, signals.
local support = require "support"
local codeassist = support.codeassist

describe("codeassist CLI", function()
  local dir
  before_each(function() dir = support.tmpdir() end)
  after_each(support.cleanup)

  it("prints versions of itself, LuaJIT, libcurl and libyaml", function()
    local r = codeassist{ "--version" }
    assert.are.equal(0, r.code)
    assert.matches("^codeassist %d+%.%d+%.%d+\n", r.stdout)
    assert.matches("\nLuaJIT 2%.1", r.stdout)
    assert.matches("\nlibcurl %d+%.%d+", r.stdout)
    assert.matches("\nlibyaml 0%.%d", r.stdout)
  end)

  it("shows help for the program and for a command, exit 0", function()
    local r = codeassist{ "--help" }
    assert.are.equal(0, r.code)
    assert.matches("Usage: codeassist", r.stdout)
    assert.matches("run%s+Run the development loop with a preset", r.stdout)
    assert.matches("130%s+interrupted", r.stdout)
    r = codeassist{ "run", "--help" }
    assert.are.equal(0, r.code)
    assert.matches("Usage: codeassist run", r.stdout)
  end)

  it("exits 2 with the usage when no command is given", function()
    local r = codeassist{}
    assert.are.equal(2, r.code)
    assert.matches("Usage: codeassist", r.stderr)
  end)

  it("rejects unknown flags and commands with a suggestion, exit 2", function()
    local r = codeassist{ "--debgu", "run", "x.lua" }
    assert.are.equal(2, r.code)
    assert.matches("codeassist: unknown option '%-%-debgu'", r.stderr)
    assert.matches("Did you mean '%-%-debug'", r.stderr)
    r = codeassist{ "runn", "x.lua" }
    assert.are.equal(2, r.code)
    assert.matches("unknown command 'runn'", r.stderr)
    assert.matches("Did you mean 'run'", r.stderr)
    r = codeassist{ "run", "--frob", "x.lua" }
    assert.are.equal(2, r.code)
    assert.matches("unknown option '%-%-frob'", r.stderr)
    -- the loop's options before the preset: said where they go
    r = codeassist{ "run", "--issue", "3", "x.lua" }
    assert.are.equal(2, r.code)
    assert.matches("the loop's options go after the preset: codeassist run PRESET %-%-issue N", r.stderr)
  end)

  it("hands the script its arguments through ... and arg, untouched", function()
    local x = support.write(dir .. "/x.lua", [[
#!/usr/bin/env codeassist
local a, b = ...
print(a, b, select("#", ...), arg[0], arg[1], arg[2], #arg)
]])
    local r = codeassist{ "run", x, "a", "b" }
    assert.are.equal(0, r.code)
    assert.are.equal("a\tb\t2\t" .. x .. "\ta\tb\t2\n", r.stdout)
    r = codeassist{ "run", x, "--issue", "--help" }
    assert.are.equal(0, r.code)
    assert.matches("^%-%-issue\t%-%-help\t2\t", r.stdout)
  end)

  it("points at presets/NAME.lua when run is given NAME", function()
    support.write(dir .. "/presets/mine.lua", "return {}\n")
    local r = codeassist({ "run", "mine", "--issue", "3" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("cannot open 'mine': .- — did you mean presets/mine%.lua%?", r.stderr)
  end)

  it("reports an error in the script as FILE:LINE: and exits 2", function()
    support.write(dir .. "/x.lua", "local t = nil\n\nreturn t.field\n")
    local r = codeassist({ "run", "x.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.are.equal("codeassist: x.lua:3: attempt to index local 't' (a nil value)\n", r.stderr)
    r = codeassist({ "--debug", "run", "x.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("stack traceback:\n.*x%.lua:3:", r.stderr)
  end)

  it("reports syntax errors, missing files and odd error values, exit 2", function()
    support.write(dir .. "/bad.lua", "local x = 1\nlocal = 2\n")
    local r = codeassist({ "run", "bad.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("^codeassist: bad%.lua:2: ", r.stderr)
    r = codeassist({ "run", "missing.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("cannot open 'missing%.lua'", r.stderr)
    support.write(dir .. "/tbl.lua", "error({ 1, 2 })\n")
    r = codeassist({ "run", "tbl.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("tbl%.lua:1: %(an error value that is a table, without a message%)", r.stderr)
    -- a table with a code is not codeassist's own error: it cannot choose the exit code
    support.write(dir .. "/code.lua", "error({ code = 0, message = 'pretend success' })\n")
    r = codeassist({ "run", "code.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("code%.lua:1: pretend success", r.stderr)
    -- error(msg, 2) at the top of a script blames the script, not the runner
    support.write(dir .. "/lvl.lua", "local x = 1\nerror('wrong level', 2)\n")
    r = codeassist({ "run", "lvl.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("^codeassist: lvl%.lua:2: wrong level", r.stderr)
  end)

  it("turns what the script returns into the exit code", function()
    support.write(dir .. "/f.lua", "return false\n")
    support.write(dir .. "/n.lua", "return 7\n")
    support.write(dir .. "/s.lua", "return 'what'\n")
    assert.are.equal(1, codeassist({ "run", "f.lua" }, { cwd = dir }).code)
    assert.are.equal(7, codeassist({ "run", "n.lua" }, { cwd = dir }).code)
    local r = codeassist({ "run", "s.lua" }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("returned a string", r.stderr)
  end)

  it("lets a script require modules that sit next to it, not in the working directory", function()
    support.write(dir .. "/lib/helper.lua", "return { answer = 42 }\n")
    support.write(dir .. "/lib/main.lua", "print(require('helper').answer)\n")
    support.write(dir .. "/cwdmod.lua", "return 1\n")
    support.write(dir .. "/probe.lua", "print(pcall(require, 'cwdmod'))\n")
    local r = codeassist({ "run", "lib/main.lua" }, { cwd = dir })
    assert.are.equal("42\n", r.stdout)
    support.write(dir .. "/other/probe.lua", "print((pcall(require, 'cwdmod')))\n")
    r = codeassist({ "run", "other/probe.lua" }, { cwd = dir })
    assert.are.equal("false\n", r.stdout)
  end)

  it("runs an edited copy of a library module from CODEASSIST_PATH or --lua-path", function()
    support.write(dir .. "/lib/codeassist/errors.lua", [[
local real = {}
local Error = debug.getregistry()["codeassist.error"]   -- only these set the exit code
real.usage = function(fmt, ...) error(setmetatable({ code = 2, message = "EDITED: " .. fmt:format(...) }, Error), 0) end
return real
]])
    support.write(dir .. "/s.lua", "return 'x'\n")
    local r = codeassist({ "run", "s.lua" }, { cwd = dir, env = { CODEASSIST_PATH = dir .. "/lib" } })
    assert.are.equal(2, r.code)
    assert.matches("codeassist: EDITED: s%.lua returned a string", r.stderr)
    r = codeassist({ "--lua-path", dir .. "/lib", "run", "s.lua" }, { cwd = dir })
    assert.matches("EDITED:", r.stderr)
    r = codeassist({ "run", "s.lua" }, { cwd = dir })
    assert.not_matches("EDITED", r.stderr)
  end)

  it("calls an error inside the library an internal error, exit 3", function()
    support.write(dir .. "/lib/codeassist/run_file.lua",
      "local M = {}\nfunction M.run() local t = nil; return t.x end\nreturn M\n")
    support.write(dir .. "/ok.lua", "return 0\n")
    local r = codeassist({ "--lua-path", dir .. "/lib", "run", "ok.lua" }, { cwd = dir })
    assert.are.equal(3, r.code)
    assert.matches("codeassist: internal error: .*run_file%.lua:2: attempt to index", r.stderr)
    assert.matches("rerun with %-%-debug", r.stderr)
  end)

  it("exits 130 on SIGINT while a script runs", function()
    support.write(dir .. "/spin.lua", "io.stdout:write('ready\\n'); io.stdout:flush(); while true do end\n")
    local r = support.sh(("%s run spin.lua & pid=$!; sleep 0.3; kill -INT $pid; wait $pid; echo rc=$?")
      :format(support.bin), { cwd = dir, timeout = 10 })
    assert.matches("rc=130", r.stdout)
    assert.matches("codeassist: interrupted", r.stderr)
  end)

  it("lets graceful code finish its step on the first signal; the second exits at once", function()
    support.write(dir .. "/loop.lua", [[
local host, clock = require "codeassist.host", require "codeassist.clock"
local fs = require "codeassist.fs"
host.graceful(true)
print("ready") io.stdout:flush()
while not host.interrupted() do clock.sleep(0.01) end
assert(fs.write_atomic("state.json", '{"saved":"' .. host.interrupted() .. '"}'))
return 130
]])
    local r = support.sh(("%s run loop.lua & pid=$!; sleep 0.3; kill -TERM $pid; wait $pid; echo rc=$?")
      :format(support.bin), { cwd = dir, timeout = 10 })
    assert.matches("rc=130", r.stdout)
    assert.are.equal('{"saved":"terminated"}', require("codeassist.fs").read(dir .. "/state.json"))

    -- proc.run gives up its child on the first signal; the script then spins in a compiled
    -- loop that never polls, and only the second signal gets it out.
    support.write(dir .. "/stuck.lua", [[
require("codeassist.host").graceful(true)
local r = require("codeassist.proc").run{ "sleep", "30" }
print("interrupted", r.interrupted) io.stdout:flush()
while true do end
]])
    r = support.sh(("%s run stuck.lua & pid=$!; sleep 0.3; kill -INT $pid; sleep 0.3; kill -INT $pid; wait $pid; echo rc=$?")
      :format(support.bin), { cwd = dir, timeout = 10 })
    assert.matches("interrupted\ttrue", r.stdout)
    assert.matches("rc=130", r.stdout)
    assert.matches("second interrupt", r.stderr)
    assert.is_true(r.duration < 5)
  end)

  it("colours only a terminal, and never with NO_COLOR or --no-color", function()
    support.write(dir .. "/c.lua", "print(require('codeassist.term').color('stdout'))\n")
    local pty = "script -qec '%s %s run c.lua' /dev/null"
    local r = support.sh(pty:format(support.bin, ""), { cwd = dir, env = { TERM = "xterm" } })
    assert.matches("true", r.stdout)
    r = support.sh(pty:format(support.bin, "--no-color"), { cwd = dir, env = { TERM = "xterm" } })
    assert.matches("false", r.stdout)
    r = support.sh(pty:format(support.bin, ""), { cwd = dir, env = { TERM = "xterm", NO_COLOR = "1" } })
    assert.matches("false", r.stdout)
    r = codeassist({ "run", "c.lua" }, { cwd = dir })
    assert.are.equal("false\n", r.stdout)
  end)
end)
