-- What the loop's specs share: a project with a bug (tests/fakes/make_project.sh), the scripted
-- models (examples/loop-scenario.json), and `codeassist run` with the gh stand-in on PATH.
local support = require "support"
local fs = require "codeassist.fs"
local cjson = require "cjson"

local M = {}

-- A project with a bug, a Makefile that builds and tests it, a bare remote, and issue #7
-- (tests/fakes/make_project.sh, shared with `make demo` and `make bench`).
function M.project(opts)
  opts = opts or {}
  local top = support.tmpdir()
  local made = support.sh(("sh %s/tests/fakes/make_project.sh %s"):format(support.root, top))
  assert(made.code == 0, made.stderr)
  local dir = top .. "/repo"
  if opts.config then support.write(dir .. "/.claude/autonomous.yml", opts.config) end
  return { dir = dir, top = top, forge = top .. "/forge", remote = top .. "/remote.git" }
end

M.CLEAN = { summary = "Looks right.", findings = {} }

-- The scripted models (examples/loop-scenario.json, shared with `make demo` and `make bench`),
-- with some conversations replaced: scenario{implement = replies, review = replies, ...,
-- models = a GPU's list}. A verdict reaches Claude as its forced tool call.
function M.scenario(replace)
  replace = replace or {}
  local doc = cjson.decode(fs.read(support.root .. "/examples/loop-scenario.json"))
  for _, conv in ipairs(doc.conversations) do
    if replace[conv.gate] then conv.replies = replace[conv.gate] end
  end
  doc.models = replace.models
  return doc
end

-- Two iterations whose every reply depends only on what was asked (so a repeated request gets
-- the same answer): the agent breaks the build in iteration 1 and fixes it in iteration 2.
function M.two_iterations()
  local doc = M.scenario()
  local agent = {}
  local keep = {}
  for _, c in ipairs(doc.conversations) do
    if c.gate ~= "implement" then keep[#keep + 1] = c end
  end
  -- an edit already made before a crash fails when the resumed agent makes it again: done too
  agent[#agent + 1] = { match = "replaced 1 occurrence", replies = { { text = "Done." } } }
  agent[#agent + 1] = { match = "old_string was not found", replies = { { text = "Done already." } } }
  agent[#agent + 1] = { match = "(iteration 2)", replies = { { tool_calls = { { name = "edit",
    input = { path = "calc.sh", old_string = "$2 )) ))", new_string = "$2 ))" } } } } } }
  agent[#agent + 1] = { match = "(iteration 1)", replies = { { tool_calls = { { name = "edit",
    input = { path = "calc.sh", old_string = "$1 - $2", new_string = "$1 + $2 ))" } } } } } }
  for _, c in ipairs(agent) do keep[#keep + 1] = c end
  doc.conversations = keep
  return doc
end

-- The models ollama_hybrid names, as a 24 GB GPU's owner has them (as in `make demo`).
M.HYBRID_MODELS = cjson.decode(fs.read(support.root .. "/examples/demo-models.json")).models

-- ollama_only's mapping names models the simulator lacks: route those gates to installed ones
M.INSTALLED = { "--route", "build=ollama:qwen3-coder", "--route", "architect=ollama:qwen3-coder",
                "--route", "devops=ollama:qwen3-coder" }

function M.run(p, args, env)
  local e = { PATH = support.root .. "/tests/fakes:" .. os.getenv("PATH"), FAKE_FORGE_DIR = p.forge, NO_COLOR = "1",
              ANTHROPIC_API_KEY = false, OLLAMA_HOST = false, GH_TOKEN = false }
  for k, v in pairs(env or {}) do e[k] = v end
  local argv = { "run" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return support.codeassist(argv, { cwd = p.dir, env = e, timeout = 120 })
end

function M.gh_calls(p)
  local calls = {}
  local text = fs.read(p.forge .. "/calls.jsonl") or ""
  for line in text:gmatch("[^\n]+") do calls[#calls + 1] = table.concat(cjson.decode(line).argv, " ") end
  return calls
end

function M.ollama_config(url, extra)
  return ("iteration_delay: 0\nproviders:\n  default: ollama\n  ollama:\n    enabled: true\n    base_url: %s\n    model: qwen3-coder\n%s")
    :format(url, extra or "")
end

return M
