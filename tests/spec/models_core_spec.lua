-- codeassist.models_core (runtime/models.c) given what a hostile server or a careless caller
-- can hand it: the audit's crash inputs of issue 13 (1a, 1c, 1d, 11), in the real binary.
local models = require "codeassist.models_core"

describe("models_core with hostile input", function()
  it("compares versions with a dot then a non-digit as their numbers (no stray pre-release)", function()
    assert.are.equal(0, models.version_compare("0.14.", "0.14."))
    assert.are.equal(0, models.version_compare("0.14.", "0.14.0"))
    assert.are.equal(1, models.version_compare("0.14.", "0.14.0-rc1"))
    assert.are.equal(1, models.version_compare("0.33.`0-rc2", "0.33.0-bc10"))
    assert.are.equal(1, models.version_compare("1.x", "1.0-rc1"))
    local c, err = models.version_compare("x0.14", "0.14.0")
    assert.is_nil(c)
    assert.are.equal("cannot compare versions 'x0.14' and '0.14.0'", err)
  end)

  it("skips list items that are not strings, and its nearest names survive a collection", function()
    -- cjson gives numbers for {"name": 1000001}: lua_tostring's strings used to be collected
    -- while match still pointed at them (garbage "nearest" names under GC stress).
    local pause, stepmul = collectgarbage("setpause", 1), collectgarbage("setstepmul", 1000)
    local ok, err = pcall(function()
      for _ = 1, 50 do
        local list = {}
        for i = 1, 40 do list[#list + 1] = 1000000 + i end
        for i = 1, 10 do list[#list + 1] = ("qwen3-coder:%db"):format(i) end
        list[#list + 1] = { name = "qwen3-coder" }
        list[#list + 1] = true
        local hit, nearest = models.match("qwen3-codr:latest", list)
        for _ = 1, 200 do local _ = { ("x"):rep(64) } end
        collectgarbage()
        assert.is_nil(hit)
        assert.are.equal(5, #nearest)
        for _, n in ipairs(nearest) do assert.matches("^qwen3%-coder:%d+b$", n) end
        hit, nearest = models.match("1000001", { 1000001, 1000002 })
        assert.is_nil(hit)
        assert.are.same({}, nearest)
      end
    end)
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
    assert(ok, err)
    assert.are.equal("qwen3-coder:8b", models.match("QWEN3-Coder:8B", { 42, "qwen3-coder:8b" }))
  end)

  it("clamps the distance limit: no overflow, no undefined cast", function()
    assert.are.equal(2147483647, models.distance(("x"):rep(300), "y", 2147483647))
    assert.are.equal(2147483647, models.distance(("x"):rep(300), "y", 1e12))
    assert.are.equal(2147483647, models.distance("a", ("b"):rep(250), 1e300))
    assert.are.equal(1, models.distance("abc", "abd", 2147483647))
    assert.are.equal(1, models.distance("abcdef", "z", -5))
    assert.are.equal(1, models.distance("abcdef", "z", 0 / 0))
    assert.are.equal(0, models.distance("Qwen3", "qwen3", -1e300))
  end)

  it("reads only plain decimal sizes", function()
    for _, s in ipairs{ "0x10B", "0x10", "nanB", "nan", "infB", "inf", "1e3B", "-1B", "B" } do
      assert.is_nil(models.parameters(s), s)
    end
    assert.are.equal(30.5e9, models.parameters("30.5B"))
    assert.are.equal(7e9, models.parameters("7"))
    assert.are.equal(137e6, models.parameters(" 137 M"))
  end)
end)
