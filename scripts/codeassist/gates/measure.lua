-- The build and test gates, measured rather than asked: the project's own build and test
-- commands run in the agent's sandbox and are scored from their exit codes and the results
-- they print or write. A model only explains failures; it cannot change a score, which
-- depends on the run alone.
--
--   local plan, why = measure.detect(root, { build = cmd_or_nil, test = cmd_or_nil })
--   -- plan: {build = step | nil, test = step | nil, ecosystem, why, notes = {...}}
--   -- step: {command = "shell text", kind = "make"|"npm"|"cargo"|"go"|"pytest"|"maven"|
--   --        "gradle"|"composer"|"config", report = path or glob relative to root | nil}
--   local r = measure.run(plan.test, { root = root, sandbox = sb, timeout = 600 })
--   -- r: {ok, exit, timed_out, seconds, output, tests = {total, passed, failed, skipped,
--   --     failures = {{name, message, file, line}}} | nil, coverage, parsed_from, command, kind,
--   --     reports (the report files read), no_tests, interrupted, error (could not start)}
--   measure.score_build(r)                     --> 0..100, one-line reason
--   measure.score_test(r, { min_coverage = 80 }) --> 0..100, one-line reason
--   measure.describe(r)                        --> the result as text, for a model to explain
--
-- The scoring rules, printed with the scores (measure.SCORING):
--   build: exit 0 → 100; any other exit, a timeout, or a command that cannot start → 0.
--   test:  exit 0 and no failing test → 100, minus up to 15 in proportion to how far coverage
--          falls below min_coverage (0% coverage → −15); any failing test or a non-zero exit →
--          at most 60 × passed/total (so a required gate at 80 always fails while a test
--          fails); exit 0 but no test ran → 50 ("no tests ran"); timed out → 0. When the
--          output is in no format a parser knows (a Makefile's own script, say), exit 0 counts
--          as passing: the reason says the count is unknown.
local fs = require "codeassist.fs"
local json = require "codeassist.json"
local clock = require "codeassist.clock"
local errors = require "codeassist.errors"
local workspace = require "codeassist.agent.workspace"
local results = require "codeassist.gates.results"

local M = {}

M.SCORING = {
  build = "build: exit 0 → 100; any other exit, a timeout or a command that cannot start → 0",
  test = "test: exit 0 with no failing test → 100, minus up to 15 in proportion when coverage is below "
      .. "min_coverage; a failing test or a non-zero exit → at most 60 × passed/total; exit 0 with no "
      .. "test run → 50; timed out → 0",
}

M.NO_COMMAND = "no build or test command found: add gates.test.command to .claude/autonomous.yml"
M.OUTPUT_CAP = 16000          -- bytes of output kept in a result (head and tail)

-- Which parsers to try first for each kind of step (then every other one, in results.ORDER).
local PARSERS = {
  npm = { "jest", "vitest", "node", "tap", "mocha" },
  cargo = { "cargo" }, go = { "go-json" }, pytest = { "pytest" },
  maven = { "surefire" }, gradle = { "gradle" }, composer = { "phpunit" },
}

---------------------------------------------------------------------------------------------
-- Detection

local function exists(root, rel)
  return fs.stat(root .. "/" .. rel) ~= nil
end

local function read(root, rel)
  return fs.read(root .. "/" .. rel, { max_bytes = 4 * 1024 * 1024 })
end

-- The rules a Makefile defines (not its variables) and its default goal.
local function make_targets(text)
  local targets, first = {}, nil
  local goal = text:match("%.DEFAULT_GOAL%s*:?=%s*([^%s#]+)")
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if not line:match("^%s") and not line:match("^#") then
      local names, rest = line:match("^([^:=#]+):(.*)$")
      -- "a := b" and "a ::= b" are assignments; "a:: b" is a rule
      if names and not rest:match("^=") and not rest:match("^:=") then
        for name in names:gmatch("%S+") do
          if not name:find("[%%$]") then
            targets[name] = true
            if not first and not name:match("^%.") then first = name end
          end
        end
      end
    end
  end
  return targets, goal or first
end

local NOT_A_BUILD = { test = true, check = true, clean = true, install = true, help = true, lint = true,
                      distclean = true, uninstall = true, deps = true, format = true, fmt = true }

local function detect_make(root)
  local name
  for _, n in ipairs{ "GNUmakefile", "makefile", "Makefile" } do
    if exists(root, n) then name = n break end
  end
  if not name then return nil end
  local text = read(root, name) or ""
  local targets, goal = make_targets(text)
  local c = { ecosystem = "make", found = name }
  if targets.test then
    c.test = { command = "make test", kind = "make" }
  elseif targets.check then
    c.test = { command = "make check", kind = "make" }
  end
  if targets.build then
    c.build = { command = "make build", kind = "make" }
  elseif goal and not NOT_A_BUILD[goal] then
    c.build = { command = "make", kind = "make" }
  end
  local names = {}
  for _, t in ipairs{ "build", "all", "test", "check" } do if targets[t] then names[#names + 1] = t end end
  c.found = #names > 0 and (name .. " (targets " .. table.concat(names, ", ") .. ")") or name
  return c
end

local NPM_PLACEHOLDER = "no test specified"

local function detect_npm(root, notes)
  if not exists(root, "package.json") then return nil end
  local pkg = json.decode(read(root, "package.json") or "")
  if type(pkg) ~= "table" then
    notes[#notes + 1] = "package.json is not valid JSON: its scripts were not read"
    return nil
  end
  local scripts = type(pkg.scripts) == "table" and pkg.scripts or {}
  local c = { ecosystem = "npm", found = "package.json" }
  if type(scripts.test) == "string" and scripts.test:match("%S") and not scripts.test:find(NPM_PLACEHOLDER, 1, true) then
    c.test = { command = "npm test", kind = "npm" }
  end
  if type(scripts.build) == "string" and scripts.build:match("%S") then
    c.build = { command = "npm run build", kind = "npm" }
  end
  local deps = (type(pkg.dependencies) == "table" and next(pkg.dependencies))
            or (type(pkg.devDependencies) == "table" and next(pkg.devDependencies))
  if deps and not exists(root, "node_modules") and (c.test or c.build) then
    notes[#notes + 1] = "package.json has dependencies but node_modules is missing: nothing is installed "
      .. "for you (the sandbox has no network); run npm ci in the repository first"
  end
  return c
end

local function detect_cargo(root)
  if not exists(root, "Cargo.toml") then return nil end
  -- offline: the sandbox has no network, so say so at once rather than after retries
  return { ecosystem = "cargo", found = "Cargo.toml",
           build = { command = "cargo build --offline", kind = "cargo" },
           test = { command = "cargo test --offline --no-fail-fast", kind = "cargo" } }
end

local function detect_go(root, _, opts)
  if not exists(root, "go.mod") then return nil end
  return { ecosystem = "go", found = "go.mod",
           build = { command = "go build ./...", kind = "go" },
           test = { command = opts.coverage and "go test -json -cover ./..." or "go test -json ./...", kind = "go" } }
end

-- Whether root has Python tests: test_*.py or *_test.py in tests/, test/ or at the top.
local function has_python_tests(root)
  for _, dir in ipairs{ "", "tests/", "test/" } do
    for _, pat in ipairs{ "test_*.py", "*_test.py" } do
      local found = fs.glob(root .. "/" .. dir .. pat, { max = 1 })
      if found and #found > 0 then return true end
    end
  end
  local nested = fs.glob(root .. "/tests/**/test_*.py", { max = 1 })
  return nested and #nested > 0
end

M.PYTEST_REPORT = ".codeassist-pytest.xml"
M.PHPUNIT_REPORT = ".codeassist-phpunit.xml"

local function detect_python(root)
  local marker
  for _, f in ipairs{ "pytest.ini", "pyproject.toml", "setup.py", "setup.cfg", "tox.ini", "conftest.py" } do
    if exists(root, f) then marker = f break end
  end
  if not marker and has_python_tests(root) then marker = "Python tests (test_*.py)" end
  if not marker then return nil end
  -- a virtual environment in the repository has the project's own pytest and dependencies
  local python = "python3"
  for _, v in ipairs{ ".venv/bin/python", "venv/bin/python" } do
    if exists(root, v) then python = v break end
  end
  return { ecosystem = "pytest", found = marker,
           test = { command = python .. " -m pytest -q -p no:cacheprovider --junitxml=" .. M.PYTEST_REPORT,
                    kind = "pytest", report = M.PYTEST_REPORT, own_report = true } }
end

local function detect_maven(root, notes)
  if not exists(root, "pom.xml") then return nil end
  local mvn = exists(root, "mvnw") and "./mvnw" or "mvn"
  notes[#notes + 1] = "Maven runs offline (-o): the plugins and dependencies must already be in a "
    .. "repository the sandbox can see (its home is empty)"
  return { ecosystem = "maven", found = "pom.xml",
           build = { command = mvn .. " -q -o compile", kind = "maven" },
           test = { command = mvn .. " -q -o test", kind = "maven",
                    report = "**/target/surefire-reports/TEST-*.xml" } }
end

local function detect_gradle(root, notes)
  local found
  for _, f in ipairs{ "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts" } do
    if exists(root, f) then found = f break end
  end
  if not found then return nil end
  local gradle = exists(root, "gradlew") and "./gradlew" or "gradle"
  if gradle == "./gradlew" then
    notes[#notes + 1] = "./gradlew needs its Gradle distribution already downloaded, which the sandbox "
      .. "(no network, an empty home) cannot do"
  end
  return { ecosystem = "gradle", found = found,
           build = { command = gradle .. " --offline assemble", kind = "gradle" },
           test = { command = gradle .. " --offline test", kind = "gradle",
                    report = "**/build/test-results/*/TEST-*.xml" } }
end

local function detect_composer(root, notes)
  if not exists(root, "composer.json") then return nil end
  local pkg = json.decode(read(root, "composer.json") or "")
  local scripts = type(pkg) == "table" and type(pkg.scripts) == "table" and pkg.scripts or {}
  local c = { ecosystem = "composer", found = "composer.json" }
  if scripts.test then
    c.test = { command = "composer test", kind = "composer" }
  elseif exists(root, "vendor/bin/phpunit") or exists(root, "phpunit.xml") or exists(root, "phpunit.xml.dist") then
    local phpunit = exists(root, "vendor/bin/phpunit") and "vendor/bin/phpunit" or "phpunit"
    c.test = { command = phpunit .. " --log-junit " .. M.PHPUNIT_REPORT, kind = "composer",
               report = M.PHPUNIT_REPORT, own_report = true }
  end
  if not exists(root, "vendor") and type(pkg) == "table" and (pkg["require-dev"] or pkg.require) then
    notes[#notes + 1] = "composer.json has dependencies but vendor/ is missing: run composer install first "
      .. "(the sandbox has no network)"
  end
  return c.test and c or nil
end

-- In order of precedence.
local DETECTORS = { detect_make, detect_npm, detect_cargo, detect_go, detect_python, detect_maven,
                    detect_gradle, detect_composer }

-- A step from the config: shell text, or {command, report}.
local function config_step(v)
  if type(v) == "string" and v:match("%S") then return { command = v, kind = "config" } end
  if type(v) == "table" and type(v.command) == "string" and v.command:match("%S") then
    return { command = v.command, kind = "config", report = v.report }
  end
end

-- What to run for the project at root: a plan, or nil and why not (a sentence to print).
-- cfg: {build, test} commands from the config (they win), coverage = true to ask tools that
-- measure coverage only on request (go) to measure it.
function M.detect(root, cfg)
  errors.argcheck(type(root) == "string" and root ~= "", "measure.detect: give the repository's folder")
  cfg = cfg or {}
  local notes, found = {}, {}
  for _, detector in ipairs(DETECTORS) do
    local c = detector(root, notes, cfg)
    if c then found[#found + 1] = c end
  end
  local with_test, with_build
  for _, c in ipairs(found) do
    if c.test and not with_test then with_test = c end
    if c.build and not with_build then with_build = c end
  end
  -- the build comes with the tests' ecosystem when it has one (a Makefile may build what pytest tests)
  local build_c = (with_test and with_test.build) and with_test or with_build
  local plan = { notes = notes }
  local test_from, build_from = "the config", "the config"
  plan.test = config_step(cfg.test)
  if not plan.test and with_test then plan.test, test_from = with_test.test, with_test.found end
  plan.build = config_step(cfg.build)
  if not plan.build and build_c then plan.build, build_from = build_c.build, build_c.found end
  if not plan.test and not plan.build then return nil, M.NO_COMMAND end
  local why = {}
  if plan.test and plan.build and test_from == build_from then
    why[1] = ("%s: test `%s`, build `%s`"):format(test_from, plan.test.command, plan.build.command)
  else
    if plan.test then why[#why + 1] = ("test `%s` from %s"):format(plan.test.command, test_from) end
    if plan.build then why[#why + 1] = ("build `%s` from %s"):format(plan.build.command, build_from) end
  end
  if not plan.test then why[#why + 1] = M.NO_COMMAND:gsub("build or test", "test") end
  if not plan.build then why[#why + 1] = "no build command found (gates.build.command sets one)" end
  plan.ecosystem = (plan.test and plan.test.kind ~= "config" and plan.test.kind)
    or (plan.build and plan.build.kind ~= "config" and plan.build.kind) or "config"
  plan.why = table.concat(why, "; ")
  return plan
end

---------------------------------------------------------------------------------------------
-- Running

-- The report files there are now: {relative path = mtime}.
local function report_files(root, pattern)
  local files = {}
  if not pattern then return files end
  if not pattern:find("[*?[]") then
    local st = fs.stat(root .. "/" .. pattern)
    if st and st.type == "file" then files[pattern] = st.mtime end
    return files
  end
  local prefix = root .. "/"
  for _, path in ipairs(fs.glob(prefix .. pattern, { max = 2000 }) or {}) do
    local st = fs.stat(path)
    if st and st.type == "file" and path:sub(1, #prefix) == prefix then files[path:sub(#prefix + 1)] = st.mtime end
  end
  return files
end

-- Reports written by this run (new, or changed since it started), read through confine so a
-- symlink cannot lead the read outside the workspace.
local function read_reports(root, pattern, before)
  local docs, names = {}, {}
  local after = report_files(root, pattern)
  local paths = {}
  for rel, mtime in pairs(after) do
    if before[rel] ~= mtime then paths[#paths + 1] = rel end
  end
  table.sort(paths)
  for _, rel in ipairs(paths) do
    local real = fs.confine(root, rel)
    local text = real and fs.read(real, { max_bytes = 32 * 1024 * 1024 })
    if text then
      docs[#docs + 1] = workspace.utf8(text)
      names[#names + 1] = rel
    end
  end
  return docs, names
end

local function relative(file, roots)
  if not file then return nil end
  for _, r in ipairs(roots) do
    if file:sub(1, #r + 1) == r .. "/" then return file:sub(#r + 2) end
  end
  return file
end

-- What runners print when they found nothing to run (read only when no parser knew the output).
local NO_TESTS_SAID = { "no tests? ran", "no tests? found", "no tests to run", "no test files", "no tests collected",
                        "%f[%d]0 tests?%f[%W]", "ran 0 tests" }

-- Runs a step in the sandbox and reads its results. opts: {sandbox, root (default the
-- sandbox's), timeout = 600 seconds, output_cap = bytes of output kept}.
function M.run(step, opts)
  errors.argcheck(type(step) == "table" and type(step.command) == "string",
    "measure.run: give a step from measure.detect ({command = ..., kind = ...})")
  errors.argcheck(type(opts) == "table" and type(opts.sandbox) == "table" and opts.sandbox.run,
    "measure.run: give {sandbox = require('codeassist.agent.sandbox').new{...}, root = ...}")
  local sb = opts.sandbox
  local root = (opts.root or sb.root):gsub("/+$", "")
  local roots = { root }
  local ws = workspace.open(root)
  if ws and ws.root ~= root then roots[2] = ws.root end
  local timeout = opts.timeout or 600
  local before = report_files(root, step.report)
  local t0 = clock.monotonic()
  -- one stream, in the order things happened: compiler errors next to the tests they stop
  local r, err = sb:run("exec 2>&1\n" .. step.command, { timeout = timeout, max_output = 8 * 1024 * 1024 })
  local result = { command = step.command, kind = step.kind, timed_out = false,
                   seconds = clock.monotonic() - t0 }
  if not r then
    result.ok, result.exit, result.error = false, -1, tostring(err)
    result.output, result.parsed_from = tostring(err), "exit-code"
    return result
  end
  result.seconds = r.duration or result.seconds
  result.timed_out = r.timed_out == true
  result.interrupted = r.interrupted == true or nil
  result.exit = r.code or (r.signal and 128 + r.signal) or -1
  local text = r.stdout or ""
  if r.stderr and r.stderr ~= "" then text = text .. "\n" .. r.stderr end
  text = workspace.utf8(results.clean(text))
  result.output = workspace.cap(text, opts.output_cap or M.OUTPUT_CAP)

  local tests, how
  if step.report then
    local docs, names = read_reports(root, step.report, before)
    if #docs > 0 then
      tests = results.junit(docs)
      if tests then how, result.reports = "junit", names end
    end
    if step.own_report then
      for rel in pairs(report_files(root, step.report)) do os.remove(root .. "/" .. rel) end
    end
  end
  local parsed, name, coverage = results.parse(text, PARSERS[step.kind])
  if not tests then tests, how = parsed, name end
  result.coverage = coverage
  if tests then
    for _, f in ipairs(tests.failures) do f.file = relative(f.file, roots) end
  end
  result.tests = tests
  result.parsed_from = how or "exit-code"
  -- pytest exits 5 when it collected no test at all
  if step.kind == "pytest" and result.exit == 5 and (not tests or tests.total == 0) then result.no_tests = true end
  if not tests and result.exit == 0 then
    local lower = text:lower()
    for _, s in ipairs(NO_TESTS_SAID) do
      if lower:find(s) then result.no_tests = true break end
    end
  end
  if tests and tests.total == 0 and #tests.failures == 0 and result.exit == 0 then result.no_tests = true end
  result.ok = result.exit == 0 and not result.timed_out
              and (not tests or (tests.failed == 0 and #tests.failures == 0))
  return result
end

---------------------------------------------------------------------------------------------
-- Scoring

local function duration(s)
  s = s or 0
  if s < 60 then return ("%.1f s"):format(s) end
  return ("%d min %d s"):format(math.floor(s / 60), math.floor(s % 60))
end

local function one_line(s, max)
  s = (s or ""):gsub("%s+", " "):match("^%s*(.-)%s*$")
  max = max or 120
  if #s > max then s = workspace.utf8(s:sub(1, max - 1)):gsub("\239\191\189$", "") .. "…" end
  return s
end

-- The first line of output that looks like an error, for a build's reason.
local function first_error(output)
  for line in (output or ""):gmatch("[^\n]+") do
    local l = line:lower()
    if l:find("error") or l:find("fatal") or l:find("undefined") or l:find("cannot ") or l:find("not found")
       or l:find("no module named") or l:find("no such file") then
      return one_line(line)
    end
  end
end

-- A failure as "name (file:line): message".
local function failure_text(f, max)
  local where = f.file and (" (" .. f.file .. (f.line and (":" .. f.line) or "") .. ")") or ""
  local msg = f.message and f.message ~= "" and (": " .. f.message) or ""
  return one_line(f.name .. where .. msg, max)
end

-- Build: exit 0 → 100, anything else → 0.
function M.score_build(r)
  if not r then return 0, "no build command" end
  if r.error then return 0, "could not run `" .. r.command .. "`: " .. one_line(r.error) end
  if r.timed_out then return 0, "timed out after " .. duration(r.seconds) end
  if r.interrupted then return 0, "interrupted" end
  if r.exit == 0 then return 100, ("built (`%s` exit 0 in %s)"):format(r.command, duration(r.seconds)) end
  local hint = first_error(r.output)
  if r.exit == 127 then return 0, "command not found in the sandbox" .. (hint and (": " .. hint) or "") end
  return 0, ("build failed (`%s` exit %d)%s"):format(r.command, r.exit, hint and (": " .. hint) or "")
end

local function names(failures, n)
  local list = {}
  for i = 1, math.min(n, #failures) do list[i] = failures[i].name end
  local more = #failures - #list
  return table.concat(list, ", ") .. (more > 0 and (" (+" .. more .. " more)") or "")
end

-- Test: see the rules at the top. opts: {min_coverage = percent}.
function M.score_test(r, opts)
  opts = opts or {}
  if not r then return 0, "no test command" end
  if r.error then return 0, "could not run `" .. r.command .. "`: " .. one_line(r.error) end
  local t = r.tests
  if r.timed_out then
    local ran = t and t.total > 0 and (" (%d of the tests seen had passed)"):format(t.passed) or ""
    return 0, "timed out after " .. duration(r.seconds) .. ran
  end
  if r.interrupted then return 0, "interrupted" end
  local failing = t and (t.failed > 0 or #t.failures > 0)
  if r.no_tests and not failing and (r.exit == 0 or r.kind == "pytest") then
    return 50, "no tests ran"
  end
  if r.exit ~= 0 or failing then
    local score = 0
    if t and t.total > 0 then score = math.floor(60 * t.passed / t.total) end
    local reason
    if t and t.failed > 0 then
      reason = ("%d of %d tests failed: %s"):format(t.failed, t.total, names(t.failures, 3))
      if #t.failures == 0 then reason = ("%d of %d tests failed"):format(t.failed, t.total) end
    elseif t and #t.failures > 0 then
      reason = ("exit %d: %s"):format(r.exit, failure_text(t.failures[1]))
    elseif t and t.total > 0 then
      reason = ("exit %d although %d of %d tests passed"):format(r.exit, t.passed, t.total)
    elseif t then
      local hint = first_error(r.output)
      reason = ("exit %d before any test ran%s"):format(r.exit, hint and (": " .. hint) or "")
    elseif r.exit == 127 then
      local hint = first_error(r.output)
      reason = "command not found in the sandbox" .. (hint and (": " .. hint) or "")
    else
      local hint = first_error(r.output)
      reason = ("exit %d, no test results could be read%s"):format(r.exit, hint and (": " .. hint) or "")
    end
    return score, reason
  end
  local score, reason = 100, nil
  if t then
    reason = ("all %d tests passed"):format(t.passed) .. (t.skipped > 0 and (" (%d skipped)"):format(t.skipped) or "")
  else
    reason = "exit 0 (no test results could be read from the output: how many ran is unknown)"
  end
  local min = opts.min_coverage
  if min and min > 0 then
    if r.coverage then
      if r.coverage < min then
        local penalty = 15 * (min - math.max(0, r.coverage)) / min
        score = math.floor(100 - penalty)
        reason = reason .. ("; coverage %.1f%% is below %g%% (−%.1f)"):format(r.coverage, min, penalty)
      else
        reason = reason .. ("; coverage %.1f%%"):format(r.coverage)
      end
    else
      reason = reason .. ("; coverage not measured (min %g%%)"):format(min)
    end
  elseif r.coverage then
    reason = reason .. ("; coverage %.1f%%"):format(r.coverage)
  end
  return score, reason
end

-- The result as text for a model that explains a failure: the command, the counts, every
-- failure with its place, then the output (already capped).
function M.describe(r)
  if not r then return "nothing ran" end
  local out = {}
  local status = r.error and ("could not run: " .. r.error)
    or r.timed_out and ("timed out after " .. duration(r.seconds))
    or ("exit " .. tostring(r.exit) .. " after " .. duration(r.seconds))
  out[#out + 1] = ("`%s`: %s"):format(r.command or "?", status)
  local t = r.tests
  if t then
    out[#out + 1] = ("%d tests: %d passed, %d failed, %d skipped (read from %s)"):format(
      t.total, t.passed, t.failed, t.skipped, r.parsed_from)
    for _, f in ipairs(t.failures) do
      local where = f.file and (" at " .. f.file .. (f.line and (":" .. f.line) or "")) or ""
      out[#out + 1] = "FAILED " .. f.name .. where .. (f.message ~= "" and ("\n    " .. f.message:gsub("\n", "\n    ")) or "")
    end
    if t.failures_omitted then out[#out + 1] = ("(%d more failures not listed)"):format(t.failures_omitted) end
  end
  if r.coverage then out[#out + 1] = ("coverage %.1f%%"):format(r.coverage) end
  out[#out + 1] = "output:\n" .. (r.output or "")
  return table.concat(out, "\n")
end

return M
