-- The model catalogue (Lua data): tiers by real parameter count, capability by name then family.
local catalogue = require "codeassist.catalogue"
local models = require "codeassist.models_core"

describe("catalogue", function()
  it("tiers by the real count, whatever the name says", function()
    local cases = { { "137M", "small" }, { "3.2B", "small" }, { "7B", "medium" }, { "14.8B", "medium" },
                    { "20B", "large" }, { "30.5B", "large" } }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], catalogue.tier(models.parameters(c[1])), c[1])
    end
    assert.are.equal("unknown", catalogue.tier(nil))
    assert.are.equal("unknown", catalogue.tier(-1))
  end)

  it("names capabilities by name patterns first, then the family", function()
    local cases = {
      { "qwen3-coder:latest", "qwen3moe", "coding" },
      { "qwq:32b", "qwen2", "reasoning" },           -- by name, before the family
      { "deepseek-r1:14b", "qwen2", "reasoning" },
      { "codestral:22b", "llama", "coding" },
      { "Qwen2.5-Coder:32b", "qwen2", "coding" },    -- qwen.*coder, any case
      { "llama3.2:latest", "llama", "reasoning" },
      { "gemma3:4b", "gemma3", "fast" },
      { "nomic-embed-text:latest", "nomic-bert", "general" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[3], catalogue.capability(c[1], c[2]), c[1])
    end
    assert.are.equal("general", catalogue.capability(nil, nil))
  end)

  it("is data a user can extend", function()
    table.insert(catalogue.NAME_PATTERNS, 1, { "^my%-coder", "coding" })
    assert.are.equal("coding", catalogue.capability("my-coder:7b", "llama"))
    table.remove(catalogue.NAME_PATTERNS, 1)
    assert.are.equal("reasoning", catalogue.capability("my-coder:7b", "llama"))
  end)

  it("picks the setup guide's table for the GPU", function()
    assert.matches("24GB", catalogue.recommendations(24).label)
    assert.matches("10%-16GB", catalogue.recommendations(12).label)
    assert.matches("8GB", catalogue.recommendations(8).label)
    assert.matches("8GB", catalogue.recommendations(0.5).label)
  end)
end)
