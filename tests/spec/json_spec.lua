-- codeassist.json: lua-cjson plus an explicit empty array, and failures instead of raises.
local json = require "codeassist.json"
local cjson = require "cjson"

describe("json", function()
  it("keeps a marked empty array an array, at any depth, and leaves other tables alone", function()
    local schema = { type = "object", properties = {}, required = json.array{} }
    assert.are.same('{"required":[]}', json.encode{ required = json.array() })
    local text = json.encode{ tools = { { name = "t", input_schema = schema } } }
    local back = cjson.decode(text)
    assert.are.equal("[]", text:match('"required":(%[%])'))
    assert.are.equal("{}", text:match('"properties":({})'))
    assert.are.same({}, back.tools[1].input_schema.required)
    assert.are.equal('{"a":[1,2]}', json.encode{ a = json.array{ 1, 2 } })
    -- the value given is not changed
    assert.is_true(json.is_array(schema.required))
  end)

  it("encodes a body without markers exactly as lua-cjson does", function()
    local body = { messages = { { role = "user", content = "hi" } }, n = 3, ok = true }
    assert.are.equal(cjson.encode(body), json.encode(body))
  end)

  it("returns failures of kind parse instead of raising", function()
    local text, err = json.encode{ f = function() end }
    assert.is_nil(text)
    assert.are.equal("parse", err.kind)
    assert.matches("cannot encode as JSON", err.message)
    local v
    v, err = json.decode('{"a": ')
    assert.is_nil(v)
    assert.are.equal("parse", err.kind)
    assert.matches('not JSON %(.*%): {"a":', err.message)
    v, err = json.decode(nil)
    assert.are.equal("parse", err.kind)
  end)
end)
