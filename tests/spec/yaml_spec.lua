-- codeassist.yaml: core-schema scalars, anchors, and errors that point at line and column.
local yaml = require "codeassist.yaml"
local cjson = require "cjson"
local support = require "support"

-- The message of the parse failure yaml.load gives for text, after checking its kind and
-- that its line and col fields agree with the message.
local function err(text)
  local v, e = yaml.load(text, { name = "c.yml" })
  assert.is_nil(v)
  assert.are.equal("parse", e.kind, tostring(e))
  assert.are.equal("c.yml", e.file)
  assert.are.equal(("c.yml:%d:%d: "):format(e.line, e.col), e.message:match("^c%.yml:%d+:%d+: "))
  assert.are.equal(e.message, tostring(e))
  return e.message
end

describe("codeassist.yaml", function()
  it("reads YAML 1.2 core-schema scalars; quoted scalars stay strings", function()
    local v = assert(yaml.load([[
ints: [1, -2, 0x10, 0o17, +3]
floats: [2.5, -1e3, .inf, -.Inf, .nan]
bools: [true, False, TRUE]
nulls: [null, ~, Null]
strings: ['1', "true", yes, no, on, 1.2.3, 0777x]
empty:
]]))
    assert.are.same({ 1, -2, 16, 15, 3 }, v.ints)
    assert.are.equal(2.5, v.floats[1])
    assert.are.equal(-1000, v.floats[2])
    assert.are.equal(math.huge, v.floats[3])
    assert.are.equal(-math.huge, v.floats[4])
    assert.is_true(v.floats[5] ~= v.floats[5])
    assert.are.same({ true, false, true }, v.bools)
    for i = 1, 3 do assert.are.equal(yaml.null, v.nulls[i]) end
    assert.are.same({ "1", "true", "yes", "no", "on", "1.2.3", "0777x" }, v.strings)
    assert.are.equal(yaml.null, v.empty)
  end)

  it("uses the same null as cjson so configs round-trip", function()
    assert.are.equal(cjson.null, yaml.null)
  end)

  it("keeps mapping keys as strings, as written", function()
    local v = assert(yaml.load("1: a\ntrue: b\nnull: c\n"))
    assert.are.same({ ["1"] = "a", ["true"] = "b", ["null"] = "c" }, v)
  end)

  it("shares anchored values with their aliases, merges nothing silently", function()
    local v = assert(yaml.load("base: &b {model: qwen3, ctx: 8192}\ngate: *b\nlist: [&x 1, *x]\n"))
    assert.are.equal(v.base, v.gate)
    assert.are.same({ 1, 1 }, v.list)
  end)

  it("reads an empty document or only comments as null", function()
    assert.are.equal(yaml.null, yaml.load(""))
    assert.are.equal(yaml.null, yaml.load("# nothing here\n"))
  end)

  it("names line and column for a tab indent", function()
    assert.are.equal("c.yml:3:1: tab character used for indentation; YAML allows only spaces",
      err("a: 1\nb:\n\tc: 2\n"))
  end)

  it("rejects duplicate keys, pointing at the second and naming the first", function()
    assert.are.equal("c.yml:3:1: duplicate key 'a' (first defined at line 1)", err("a: 1\nb: 2\na: 3\n"))
    assert.are.equal("c.yml:4:3: duplicate key 'k' (first defined at line 2)",
      err("top:\n  k: 1\n  x: 0\n  k: 3\n"))
    assert.matches("^c%.yml:2:13: duplicate key 'k'", err("top:\n  x: {k: 2, k: 3}\n"))
  end)

  it("points at the opening of an unclosed quote", function()
    assert.matches("^c%.yml:2:6: unclosed quote", err("a: 1\nb:   'x\nd: 2\n"))
    assert.matches("^c%.yml:1:4: unclosed quote", err('a: "x\nb: 2\n'))
  end)

  it("rejects a second document clearly", function()
    assert.matches("^c%.yml:3:1: a second YAML document starts here", err("---\na: 1\n---\nb: 2\n"))
  end)

  it("rejects an alias to an unknown anchor", function()
    assert.matches("^c%.yml:1:4: unknown anchor '%*nope'", err("a: *nope\n"))
  end)

  it("reports libyaml's own syntax errors with a position", function()
    assert.matches("^c%.yml:%d+:%d+: ", err("a: [1, 2\nb: 3\n"))
    assert.matches("^c%.yml:%d+:%d+: ", err("a: b: c\n"))
  end)

  it("records where every mapping and key is, for config errors", function()
    local marks = {}
    local v = assert(yaml.load("top:\n  key: 1\n  other: [1]\n", { marks = marks }))
    assert.are.same({ line = 2, col = 3 }, { line = marks[v.top].line, col = marks[v.top].col })
    assert.are.same({ line = 3, col = 3 }, marks[v.top].keys.other)
    assert.are.same({ line = 1, col = 1 }, marks[v].keys.top)
  end)

  it("loads files, names them in errors, and caps their size", function()
    local dir = support.tmpdir()
    support.write(dir .. "/ok.yml", "a: [1]\n# padding\n")
    support.write(dir .. "/bad.yml", "a: 1\na: 2\n")
    assert.are.same({ a = { 1 } }, yaml.load_file(dir .. "/ok.yml"))
    local v, e = yaml.load_file(dir .. "/bad.yml")
    assert.is_nil(v)
    assert.are.equal("parse", e.kind)
    assert.are.same({ 2, 1 }, { e.line, e.col })
    assert.are.equal(dir .. "/bad.yml:2:1: duplicate key 'a' (first defined at line 1)", e.message)
    v, e = yaml.load_file(dir .. "/missing.yml")
    assert.is_nil(v)
    assert.are.equal("not_found", e.kind)
    assert.are.equal("cannot read '" .. dir .. "/missing.yml': No such file or directory", e.message)
    assert.are.equal(dir .. "/missing.yml", e.path)
    v, e = yaml.load_file(dir .. "/ok.yml", { max_bytes = 8 })
    assert.is_nil(v)
    assert.are.equal("too_large", e.kind)
    assert.matches("ok%.yml': it is 17 bytes, more than the limit of 8", e.message)
    local ok, raised = pcall(function() local v = yaml.load_file(dir .. "/ok.yml", { max_bytes = {} }); return v end)
    assert.is_false(ok)
    assert.matches("^tests/spec/yaml_spec%.lua:%d+: bad argument #2 to 'load_file' %(max_bytes must be a number >= 0%)",
      raised)
    support.cleanup()
  end)

  it("refuses nesting deep enough to exhaust the stack", function()
    local e = err(string.rep("[", 1000) .. string.rep("]", 1000))
    assert.matches("^c%.yml:1:%d+: ", e)
  end)
end)
