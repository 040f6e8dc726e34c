-- Events and their sinks: JSON lines for tools, text for people (plain, or live on a terminal).
local events = require "codeassist.events"
local tty = require "codeassist.tty"
local cjson = require "cjson"

-- A file-like object that keeps what is written.
local function buffer()
  local b = { parts = {} }
  function b:write(...) for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring(select(i, ...)) end return self end
  function b:flush() end
  function b:text() return table.concat(self.parts) end
  return b
end

describe("events", function()
  it("sends every event to every sink, as one JSON object per line", function()
    local out = buffer()
    local bus = events.new()
    bus:add(events.json_lines(out))
    bus:emit("gate.done", { gate = "review", score = 88, list = {}, fn = function() end })
    local p = bus:progress("checking")
    p:done()
    bus:close()
    local lines = {}
    for line in out:text():gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
    assert.are.equal(3, #lines)
    assert.are.equal("gate.done", lines[1].type)
    assert.are.equal(88, lines[1].score)
    assert.is_nil(lines[1].fn)
    assert.is_number(lines[1].time)
    assert.are.same({ "progress.start", "progress.end" }, { lines[2].type, lines[3].type })
    assert.are.equal(lines[2].id, lines[3].id)
    assert.is_number(lines[3].seconds)
  end)

  it("never lets a registered secret through, in any sink", function()
    events.secret("sk-ant-very-secret")
    local out, text = buffer(), buffer()
    local bus = events.new()
    bus:add(events.json_lines(out))
    bus:add(events.text(text, { formats = { oops = function(ev) return "key: " .. ev.key end } }))
    bus:emit("oops", { key = "Bearer sk-ant-very-secret and sk-ant-very-secret" })
    assert.not_matches("very%-secret", out:text())
    assert.not_matches("very%-secret", text:text())
    assert.matches("Bearer %*%*%* and %*%*%*", text:text())
    -- a key with a "/" is written as "\/" in JSON: scrubbed there too
    events.secret("olm-AbC/dEf+GhI==")
    bus:emit("oops", { key = "token olm-AbC/dEf+GhI==" })
    assert.is_nil(out:text():find("dEf+GhI", 1, true))
    assert.is_nil(events.scrub(require("codeassist.json").encode{ k = "olm-AbC/dEf+GhI==" }):find("GhI", 1, true))
  end)

  it("renders text through formats and skips events without one", function()
    local out = buffer()
    local bus = events.new()
    bus:add(events.text(out, { formats = { hello = function(ev, p) return p.ok("hello " .. ev.who) end } }))
    bus:emit("hello", { who = "you" })
    bus:emit("other", {})
    bus:progress("slow work"):done()      -- no live lines without a terminal
    bus:close()
    assert.are.equal("✓ hello you\n", out:text())
  end)

  it("draws live lines on a terminal and erases them when the work ends", function()
    local out = buffer()
    local bus = events.new()
    bus:add(events.text(out, { live = true, live_after = 0, formats = { note = function(ev) return ev.text end } }))
    local p = bus:progress("probing qwen3-coder")
    require("codeassist.task").sleep(0.25)
    bus:emit("note", { text = "a section" })
    p:done()
    bus:close()
    local text = out:text()
    assert.matches("… probing qwen3%-coder %(0%.%ds%)\n", text)
    assert.matches("\27%[1A\27%[Ja section\n", text)   -- permanent text goes above the live line
    assert.matches("\27%[1A\27%[J$", text)              -- and the live line is gone at the end
  end)
end)

describe("tty", function()
  it("measures and cuts text by columns, escape sequences aside", function()
    assert.are.equal(4, tty.width("\27[32m✓\27[0m ok"))
    assert.are.equal("abc…", tty.truncate("abcdefgh", 4))
    assert.are.equal("abc", tty.truncate("abc", 4))
    assert.are.same({ "  a    bb", "  ccc  d" }, tty.columns({ { "a", "bb" }, { "ccc", "d" } }, "  "))
  end)
end)
