-- The gates as modules: the built-in eight, a project's own, verdicts checked fail-closed,
-- scoring by rule, and shipped targets that the shipped rubrics can reach.
local support = require "support"
local gates = require "codeassist.gates"
local verdict = require "codeassist.gates.verdict"
local common = require "codeassist.gates.common"
local score = require "codeassist.score"
local preset = require "codeassist.preset"
local config = require "codeassist.config"

local function cfg_with(yaml_text)
  local path = support.write(support.tmpdir() .. "/autonomous.yml", yaml_text or "{}\n")
  return config.load{ path = path, env = function() return nil end }
end

local function finding(severity)
  return { severity = severity, title = "t", description = "d" }
end

describe("gates", function()
  teardown(support.cleanup)

  it("are the eight built-in modules, each with its rule", function()
    local all = gates.load(nil)
    local names = {}
    for name, g in pairs(all) do
      names[#names + 1] = name
      assert.are.equal(name, g.name)
      assert.is_string(g.rule)
      assert.is_string(g.prompt)
      assert.are.equal("built-in", g.source)
    end
    table.sort(names)
    assert.are.same({ "architect", "build", "devops", "mentor", "review", "security", "test", "ux" }, names)
    assert.are.equal("measured", all.build.kind)
    assert.are.equal("measured", all.test.kind)
    assert.are.equal("llm", all.security.kind)
  end)

  it("score reviewers from their findings by severity, never below 0; info costs nothing", function()
    local review = gates.load(nil).review
    assert.are.same({ 100, "no findings" }, { review.score({ summary = "ok", findings = {} }) })
    assert.are.same({ 85, "1 high, 1 medium, 1 low, 1 info" },
      { review.score({ summary = "", findings = { finding("high"), finding("medium"), finding("low"), finding("info") } }) })
    local many = {}
    for i = 1, 10 do many[i] = finding("critical") end
    assert.are.equal(0, (review.score({ summary = "", findings = many })))
  end)

  it("take a project's own gates from .codeassist/gates, and let them replace built-in ones", function()
    local root = support.tmpdir()
    support.write(root .. "/.codeassist/gates/perf.lua", [[
return require("codeassist.gates.common").reviewer{ name = "perf", weight = 5, parallel_group = 3,
  penalty = { critical = 50, high = 20, medium = 5, low = 1 }, prompt = "You review performance." }
]])
    support.write(root .. "/.codeassist/gates/review.lua", [[
return require("codeassist.gates.common").reviewer{ penalty = { critical = 100, high = 50, medium = 10, low = 2 },
  prompt = "Our own review rubric." }
]])
    local all = gates.load(root)
    assert.are.equal(root .. "/.codeassist/gates/perf.lua", all.perf.source)
    assert.are.equal(5, all.perf.weight)
    assert.are.equal("review", all.review.name)       -- named after its file
    assert.are.equal("Our own review rubric.", all.review.prompt)
    assert.are.equal(50, (all.review.score({ findings = { finding("high") } })))
  end)

  it("name the file and every problem of a project gate that is not a gate", function()
    local root = support.tmpdir()
    support.write(root .. "/.codeassist/gates/bad.lua", [[return { kind = "asked", prompt = 5, score = "high" }]])
    local ok, err = pcall(gates.load, root)
    assert.is_false(ok)
    assert.are.equal("config", err.kind)
    assert.matches("%.codeassist/gates/bad%.lua: the gate has %d problems", err.message)
    assert.matches("kind: 'asked' is not one of llm, measured", err.message)
    assert.matches("prompt", err.message)
    assert.matches("schema", err.message)
    support.write(root .. "/.codeassist/gates/bad.lua", [[return 42]])
    ok, err = pcall(gates.load, root)
    assert.is_false(ok)
    assert.matches("bad%.lua must return a gate table, not number", err.message)
  end)
end)

describe("verdicts", function()
  it("are found in a model's text: the whole answer, a fence, or the first object that decodes", function()
    assert.are.same({ a = 1 }, verdict.extract('  {"a": 1}  '))
    assert.are.same({ a = 2 }, verdict.extract('Here it is:\n```json\n{"a": 2}\n```\nThanks.'))
    assert.are.same({ a = 3 }, verdict.extract('I think {not json} but {"a": 3} is.'))
    assert.is_nil(verdict.extract("no JSON at all"))
    assert.is_nil(verdict.extract(nil))
  end)

  it("are checked against the schema, fail-closed, saying what is wrong and where", function()
    local S = common.SCHEMA
    assert.is_true(verdict.check(S, { summary = "ok", findings = {} }))
    assert.are.same({ false, "the answer: 'findings' is required" }, { verdict.check(S, { summary = "ok" }) })
    assert.are.same({ false, "summary must be a string" }, { verdict.check(S, { summary = 5, findings = {} }) })
    assert.are.same({ false, "findings[1].severity: 'bad' is not one of critical, high, medium, low, info" },
      { verdict.check(S, { summary = "", findings = { { severity = "bad", title = "t", description = "d" } } }) })
    assert.are.same({ false, "findings[1]: 'description' is required" },
      { verdict.check(S, { summary = "", findings = { { severity = "low", title = "t" } } }) })
    assert.are.same({ false, "findings must be an array" }, { verdict.check(S, { summary = "", findings = { x = 1 } }) })
  end)

  it("are asked the way each route can enforce them", function()
    local cfg = cfg_with()
    assert.are.equal("tool", verdict.mechanism(cfg, { provider = "anthropic" }))
    assert.are.equal("format", verdict.mechanism(cfg, { provider = "ollama" }))
    cfg = cfg_with("providers:\n  ollama:\n    protocol: anthropic\n")
    assert.are.equal("text", verdict.mechanism(cfg, { provider = "ollama" }))
  end)

  it("get one repair, with the reason, and then fail with it", function()
    local cfg = cfg_with()
    local answers, requests = {}, {}
    local router = { cfg = cfg, call = function(_, gate, req_for)
      local route = { provider = "ollama", model = "m" }
      local req = req_for(route)
      requests[#requests + 1] = req
      return { route = route, content = { { type = "text", text = table.remove(answers, 1) } } }
    end }
    local spec = { system = "sys", prompt = "review this", schema = common.SCHEMA }
    answers = { "Looks fine!", '{"summary": "ok", "findings": []}' }
    local v, info = verdict.ask(router, "review", spec)
    assert.are.same({ summary = "ok", findings = {} }, v)
    assert.are.equal(2, info.attempts)
    assert.are.same(common.SCHEMA, requests[1].format)                       -- Ollama's native format
    assert.matches("the answer was not a JSON object: Looks fine!", requests[2].messages[3].content)
    answers = { "no", '{"summary": 1, "findings": []}' }
    v, info = verdict.ask(router, "review", spec)
    assert.is_nil(v)
    assert.matches("^no valid verdict after one repair: summary must be a string", info.reason)
  end)
end)

describe("scoring", function()
  teardown(support.cleanup)

  it("weight-averages the gates and holds required gates to their threshold", function()
    local plan = { gates = { a = { weight = 30, required = true }, b = { weight = 10 },
                             c = { weight = 0, required = true, thresholds = { pass = 50 } } } }
    local results = { { gate = "a", score = 79 }, { gate = "b", score = 100 }, { gate = "c", score = 60 } }
    for _, r in ipairs(results) do score.judge(r, plan.gates[r.gate]) end
    local t = score.total(results, plan)
    assert.are.equal(84.3, t.total)                   -- (30 × 79 + 10 × 100) / 40, c has no weight
    assert.are.same({ "a" }, t.failed_required)       -- 79 < 80; c passes at its own 50
    assert.is_false(results[1].passed)
    assert.is_true(results[3].passed)
    assert.matches("a required gate passes at its threshold %(default 80%)", t.rules)
  end)

  it("lets every shipped preset reach its target with the shipped rubrics", function()
    local cfg = cfg_with("providers:\n  ollama:\n    enabled: true\n")
    local all = gates.load(nil)
    for _, name in ipairs(preset.BUILTIN) do
      local plan = preset.plan(preset.load(name, cfg), cfg)
      -- a clean change, and one with a low finding from every reviewer
      for _, low in ipairs{ false, true } do
        local results = {}
        for gate, g in pairs(all) do
          if plan.gates[gate] then
            local s = g.kind == "measured" and 100 or g.score({ summary = "", findings = low and { finding("low") } or {} })
            results[#results + 1] = score.judge({ gate = gate, score = s }, plan.gates[gate])
          end
        end
        local t = score.total(results, plan)
        assert.is_true(t.total >= plan.target_score, ("%s: %s < %s%s"):format(name, t.total, plan.target_score,
          low and " with one low finding per reviewer" or ""))
        assert.are.same({}, t.failed_required, name)
      end
    end
  end)
end)

describe("the change the gates review", function()
  teardown(support.cleanup)

  it("gives every file a share, so a big file cannot hide the rest; lockfiles only in the summary", function()
    local d = support.tmpdir()
    local function sh(c) local r = support.sh(c, { cwd = d }); assert(r.code == 0, r.stderr); return r.stdout end
    sh("git init -q -b main . && echo a > z.txt && git add -A && git -c user.name=t -c user.email=t@t commit -qm i")
    local base = sh("git rev-parse HEAD"):gsub("%s+$", "")
    local big = {}
    for i = 1, 20000 do big[i] = "line " .. i end
    support.write(d .. "/aaa_big.txt", table.concat(big, "\n"))
    support.write(d .. "/package-lock.json", table.concat(big, "\n"))
    sh("printf '\\351t\\351\\n' >> z.txt && git add -A && git -c user.name=t -c user.email=t@t commit -qm c")
    local repo = require("codeassist.git").open(d, nil)
    local out = require("codeassist.loop.worktree").change_of({ repo = repo, base = base })
    assert.is_true(#out < 64000)
    assert.matches("^%(the diff of 1 file was cut to fit", out)
    assert.matches("package%-lock%.json | 20000", out)              -- in the summary
    assert.is_nil(out:find("diff --git a/package-lock.json", 1, true))
    assert.matches("diff %-%-git a/z%.txt", out)                    -- the small change is whole
    local prompt = require("codeassist.loop.prompts").gate({ prompt = "Review." }, { title = "t", body = "caf\233" }, out)
    assert.is_nil(prompt:find("[\233]"))                             -- Latin-1 bytes made valid UTF-8
  end)

  it("names every file it cannot show, when too many changed to show them all", function()
    local d = support.tmpdir()
    local function sh(c) local r = support.sh(c, { cwd = d }); assert(r.code == 0, r.stderr); return r.stdout end
    sh("git init -q -b main . && echo a > a.txt && git add -A && git -c user.name=t -c user.email=t@t commit -qm i")
    local base = sh("git rev-parse HEAD"):gsub("%s+$", "")
    local body = {}
    for i = 1, 700 do body[i] = "x" .. i end
    for i = 1, 60 do support.write(("%s/f%02d.txt"):format(d, i), table.concat(body, "\n")) end
    sh("git add -A && git -c user.name=t -c user.email=t@t commit -qm many")
    local out = require("codeassist.loop.worktree").change_of({ repo = require("codeassist.git").open(d, nil), base = base })
    assert.is_true(#out < 66000)
    local named = out:match("did not fit and are in the summary only: ([^;]+);") or ""
    for i = 1, 60 do
      local f = ("f%02d.txt"):format(i)
      assert.is_truthy(out:find("diff --git a/" .. f, 1, true) or named:find(f, 1, true), f .. " is neither shown nor named")
    end
  end)
end)

