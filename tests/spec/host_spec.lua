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
    assert.has_error(function() cjson.decode("{") end)
    local v, err = safe.decode("{")
    assert.is_nil(v)
    assert.is_string(err)
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
    assert.is_true(dt >= 0.045 and dt < 0.5, "slept " .. dt)
    assert.is_true(math.abs(clock.wall() - os.time()) < 2)
  end)

  it("reports terminal facts for pipes", function()
    local term = require "codeassist.term"
    local r = run_lua([[
local term = require "codeassist.term"
print(term.isatty("stdout"), term.color("stdout"), term.width("stdout"))
]], { env = { COLUMNS = "" } })
    assert.are.equal("false\tfalse\t80\n", r.stdout)
    assert.has_error(function() term.isatty("nonsense") end)
  end)
end)
