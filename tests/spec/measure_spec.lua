-- The measured build and test gates: what to run is detected from the project's files, every
-- parser reads the sample outputs in tests/fixtures/results/ (real captures where the tool is
-- on this machine, the tools' documented formats elsewhere), the scores follow the stated
-- rules, and real projects run through the real sandbox (pass, fail with names, timeout).
local support = require "support"
local fs = require "codeassist.fs"
local proc = require "codeassist.proc"
local sandbox = require "codeassist.agent.sandbox"
local measure = require "codeassist.gates.measure"
local results = require "codeassist.gates.results"

local FIXTURES = support.root .. "/tests/fixtures/"

local function fixture(name)
  return assert(fs.read(FIXTURES .. "results/" .. name))
end

-- A copy of a sample project in a temp folder (runs write into it).
local function project(name)
  local dir = support.tmpdir() .. "/" .. name
  support.sh(("cp -R '%sprojects/%s' '%s'"):format(FIXTURES, name, dir))
  return dir
end

local function failure_named(tests, name)
  for _, f in ipairs(tests.failures) do
    if f.name == name then return f end
  end
  local names = {}
  for _, f in ipairs(tests.failures) do names[#names + 1] = f.name end
  error(("no failure named %q among: %s"):format(name, table.concat(names, " | ")), 2)
end

local function counts(t)
  return { t.total, t.passed, t.failed, t.skipped }
end

describe("measure.detect", function()
  after_each(support.cleanup)

  it("a Makefile with a test target: make test, and its build target", function()
    local plan = assert(measure.detect(project("make_pass")))
    assert.are.equal("make", plan.ecosystem)
    assert.are.same({ command = "make test", kind = "make" }, plan.test)
    assert.are.same({ command = "make build", kind = "make" }, plan.build)
    assert.matches("Makefile %(targets build, all, test%)", plan.why)
  end)

  it("a Makefile with a check target: make check, and plain make for its default goal", function()
    local plan = assert(measure.detect(project("make_check")))
    assert.are.equal("make check", plan.test.command)
    assert.are.equal("make", plan.build.command)
  end)

  it("package.json: npm test and npm run build", function()
    local plan = assert(measure.detect(project("npm_node")))
    assert.are.equal("npm", plan.ecosystem)
    assert.are.same({ command = "npm test", kind = "npm" }, plan.test)
    assert.are.same({ command = "npm run build", kind = "npm" }, plan.build)
    assert.are.same({}, plan.notes)
  end)

  it("npm's placeholder test script is no test; missing node_modules is a note, nothing is installed", function()
    local plan = assert(measure.detect(project("npm_placeholder")))
    assert.is_nil(plan.test)
    assert.are.equal("npm run build", plan.build.command)
    assert.matches("no test command found: add gates%.test%.command to %.claude/autonomous%.yml", plan.why)
    assert.matches("node_modules is missing", plan.notes[1])
    assert.is_falsy(plan.build.command:find("install") or plan.build.command:find("npm ci"))
  end)

  it("Cargo.toml: cargo build and cargo test, offline", function()
    local plan = assert(measure.detect(project("cargo_proj")))
    assert.are.equal("cargo", plan.ecosystem)
    assert.are.equal("cargo build --offline", plan.build.command)
    assert.are.equal("cargo test --offline --no-fail-fast", plan.test.command)
  end)

  it("go.mod: go build ./... and go test -json ./... (with -cover on request)", function()
    local dir = project("go_proj")
    local plan = assert(measure.detect(dir))
    assert.are.equal("go", plan.ecosystem)
    assert.are.equal("go build ./...", plan.build.command)
    assert.are.equal("go test -json ./...", plan.test.command)
    assert.are.equal("go test -json -cover ./...", measure.detect(dir, { coverage = true }).test.command)
  end)

  it("Python: pytest with a JUnit report the run reads, from pyproject.toml or from tests/test_*.py alone", function()
    local plan = assert(measure.detect(project("pytest_proj")))
    assert.are.equal("pytest", plan.ecosystem)
    assert.are.equal("python3 -m pytest -q -p no:cacheprovider --junitxml=.codeassist-pytest.xml", plan.test.command)
    assert.are.equal(".codeassist-pytest.xml", plan.test.report)
    assert.is_nil(plan.build)
    assert.matches("from pyproject%.toml", plan.why)
    local bare = assert(measure.detect(project("pytest_bare")))
    assert.are.equal("pytest", bare.test.kind)
    assert.matches("test_%*%.py", bare.why)
  end)

  it("a virtual environment in the repository runs its own pytest", function()
    local dir = project("pytest_bare")
    support.write(dir .. "/.venv/bin/python", "#!/bin/sh\n")
    assert.matches("^%.venv/bin/python %-m pytest", measure.detect(dir).test.command)
  end)

  it("a Makefile without tests still builds what pytest tests", function()
    local plan = assert(measure.detect(project("make_and_pytest")))
    assert.are.equal("pytest", plan.test.kind)
    assert.are.equal("make", plan.build.command)
    assert.are.equal("pytest", plan.ecosystem)
  end)

  it("Maven, Gradle (its wrapper first) and Composer, with where their reports are", function()
    local mvn = assert(measure.detect(project("maven_proj")))
    assert.are.equal("mvn -q -o test", mvn.test.command)
    assert.are.equal("**/target/surefire-reports/TEST-*.xml", mvn.test.report)
    local gradle = assert(measure.detect(project("gradle_proj")))
    assert.are.equal("./gradlew --offline test", gradle.test.command)
    assert.are.equal("**/build/test-results/*/TEST-*.xml", gradle.test.report)
    assert.matches("gradlew", gradle.notes[1])
    local composer = assert(measure.detect(project("composer_proj")))
    assert.are.equal("composer test", composer.test.command)
    local phpunit = assert(measure.detect(project("composer_phpunit")))
    assert.are.equal("phpunit --log-junit .codeassist-phpunit.xml", phpunit.test.command)
    assert.are.equal(".codeassist-phpunit.xml", phpunit.test.report)
  end)

  it("precedence: a Makefile's test target beats package.json, package.json beats the rest", function()
    local dir = project("npm_node")
    support.write(dir .. "/Makefile", "test:\n\tnode --test\n")
    support.write(dir .. "/go.mod", "module x\n")
    local plan = assert(measure.detect(dir))
    assert.are.equal("make test", plan.test.command)
    assert.are.equal("npm run build", plan.build.command)   -- the Makefile has no build of its own
    os.remove(dir .. "/Makefile")
    assert.are.equal("npm test", measure.detect(dir).test.command)
  end)

  it("commands from the config win (kind config), one gate at a time", function()
    local dir = project("make_pass")
    local plan = assert(measure.detect(dir, { test = "./run-tests --fast" }))
    assert.are.same({ command = "./run-tests --fast", kind = "config" }, plan.test)
    assert.are.equal("make build", plan.build.command)
    assert.are.equal("make", plan.ecosystem)
    assert.matches("test `%./run%-tests %-%-fast` from the config", plan.why)
    local both = assert(measure.detect(project("empty"), { build = "./build.sh",
                                                           test = { command = "./t.sh", report = "out/junit.xml" } }))
    assert.are.equal("config", both.ecosystem)
    assert.are.same({ command = "./t.sh", kind = "config", report = "out/junit.xml" }, both.test)
    assert.are.equal("./build.sh", both.build.command)
  end)

  it("nothing found: nil and a reason the loop can print", function()
    local plan, why = measure.detect(project("empty"))
    assert.is_nil(plan)
    assert.are.equal("no build or test command found: add gates.test.command to .claude/autonomous.yml", why)
  end)
end)

describe("results parsers", function()
  describe("JUnit XML", function()
    it("pytest's report: failures, an error at setup, skips and xfails, entities", function()
      local t = assert(results.junit(fixture("junit_pytest.xml")))
      assert.are.same({ 9, 4, 3, 2 }, counts(t))
      local f = failure_named(t, "tests.test_calc.test_add")
      assert.are.equal("assert -1 == 5\n +  where -1 = add(2, 3)", f.message)
      assert.are.equal("tests/test_calc.py", f.file)
      assert.are.equal(8, f.line)
      assert.are.equal('failed on setup with "RuntimeError: no database"',
        failure_named(t, "tests.test_calc.test_with_fixture").message)
      assert.are.equal(15, failure_named(t, "tests.test_calc.TestDivide.test_by_zero").line)
    end)

    it("surefire: one file per class, CDATA (holding markup) ignored, the test's own stack frame", function()
      local dir = FIXTURES .. "results/surefire-reports/"
      local t = assert(results.junit{ fixture("surefire-reports/TEST-com.example.CalcTest.xml"),
                                      assert(fs.read(dir .. "TEST-com.example.StringsTest.xml")) })
      assert.are.same({ 6, 3, 2, 1 }, counts(t))
      local adds = failure_named(t, "com.example.CalcTest.adds")
      assert.are.equal("AssertionFailedError: expected: <5> but was: <-1>", adds.message)
      assert.are.equal("CalcTest.java", adds.file)
      assert.are.equal(12, adds.line)
      local div = failure_named(t, "com.example.CalcTest.divides")
      assert.are.equal("ArithmeticException: / by zero", div.message)
      assert.are.equal(18, div.line)                       -- the test's frame, not Calc.divide's
    end)

    it("gradle's report (app// frames)", function()
      local t = assert(results.junit(fixture("junit_gradle.xml")))
      assert.are.same({ 3, 2, 1, 0 }, counts(t))
      local f = failure_named(t, "com.example.CalcTest.adds()")
      assert.are.equal("CalcTest.java", f.file)
      assert.are.equal(12, f.line)
    end)

    it("PHPUnit's nested testsuites with file and line attributes; the failing line from the body", function()
      local t = assert(results.junit(fixture("junit_phpunit.xml")))
      assert.are.same({ 5, 3, 1, 1 }, counts(t))
      local f = failure_named(t, "Tests.CalcTest.testAdd")
      assert.are.equal("Failed asserting that -1 matches expected 5.", f.message)
      assert.are.equal("/home/dev/app/tests/CalcTest.php", f.file)
      assert.are.equal(12, f.line)
    end)

    it("jest-junit: a failure without a message attribute, located outside node_modules", function()
      local t = assert(results.junit(fixture("junit_jest.xml")))
      assert.are.same({ 5, 3, 1, 1 }, counts(t))
      local f = failure_named(t, "sum adds two numbers")
      assert.are.equal("Error: expect(received).toBe(expected) // Object.is equality", f.message)
      assert.are.equal("/home/dev/app/src/sum.test.js", f.file)
      assert.are.equal(5, f.line)
    end)

    it("counts only: the innermost suites' attributes, in any order and quotes", function()
      local t = assert(results.junit(fixture("junit_counts_only.xml")))
      assert.are.same({ 12, 8, 3, 1 }, counts(t))
    end)

    it("attribute order, single quotes, '>' in a value, numeric entities, namespaces", function()
      local t = assert(results.junit([[<?xml version="1.0"?>
<!-- <testcase name="in a comment"/> -->
<ns:testsuites xmlns:ns="urn:x"><ns:testsuite name='s'>
  <ns:testcase time='0.1' name='a &gt; b' classname='K'><ns:failure type='E' message='1 &lt; 2 &#38; 3 &#x3E; 2 &#233;t&#xE9;'>x</ns:failure></ns:testcase>
  <ns:testcase name="ok"   classname="K" />
  <ns:testcase classname="K" name="skipped"><ns:skipped/></ns:testcase>
</ns:testsuite></ns:testsuites>]]))
      assert.are.same({ 3, 1, 1, 1 }, counts(t))
      assert.are.equal("K.a > b", t.failures[1].name)
      assert.are.equal("E: 1 < 2 & 3 > 2 été", t.failures[1].message)
      -- a body's text is unescaped, its CDATA is not
      local t2 = assert(results.junit('<testsuite><testcase name="c"><failure>a &amp;lt; b<![CDATA[ &lt;kept&gt; ]]></failure></testcase></testsuite>'))
      assert.are.equal("a &lt; b &lt;kept&gt;", t2.failures[1].message)
    end)

    it("not JUnit: nil", function()
      assert.is_nil(results.junit("<html><body>no</body></html>"))
      assert.is_nil(results.junit("plain text"))
    end)
  end)

  describe("TAP", function()
    it("node --test (real capture): subtests counted as leaves, SKIP and TODO, YAML diagnostics", function()
      local t = assert(results.tap(fixture("node_test_tap.txt")))
      assert.are.same({ 6, 2, 2, 2 }, counts(t))
      local f = failure_named(t, "subtracts")
      assert.are.equal("Expected values to be strictly equal:\n\n2 !== 3", f.message)
      assert.are.equal("/home/dev/app/math.test.js", f.file)
      assert.are.equal(5, f.line)
      assert.are.equal(10, failure_named(t, 'compares <tags> & "quotes"').line)
    end)

    it("busted (real capture): '# file @ line' and the failure message", function()
      local t = assert(results.tap(fixture("busted_tap.txt")))
      assert.are.same({ 4, 1, 2, 1 }, counts(t))
      local f = failure_named(t, "calc subtracts")
      assert.are.equal("x_spec.lua", f.file)
      assert.are.equal(3, f.line)
      assert.matches("^x_spec%.lua:3: Expected objects to be equal%.", f.message)
    end)

    it("TAP 13 with a plan first, at: as a mapping, a failing TODO that is not a failure", function()
      local t = assert(results.tap(fixture("tap_prove.txt")))
      assert.are.same({ 6, 2, 1, 3 }, counts(t))
      local f = failure_named(t, "reads a quoted value")
      assert.are.equal("quoted value lost its escapes", f.message)
      assert.are.equal("t/config.t", f.file)
      assert.are.equal(41, f.line)
    end)

    it("a '#' that is no directive stays in the name", function()
      local t = assert(results.tap("1..3\nnot ok 1 - handles issue #12\nok 2 - parses #hashtags # skip no parser\nok 3 # TODO\n"))
      assert.are.same({ 3, 0, 1, 2 }, counts(t))
      assert.are.equal("handles issue #12", t.failures[1].name)
    end)

    it("Bail out! and a plan that was not met are failures", function()
      local bail = assert(results.tap(fixture("tap_bail_out.txt")))
      assert.are.equal(2, bail.failed)
      assert.are.equal("Could not connect to the database: connection refused", failure_named(bail, "Bail out!").message)
      local short = assert(results.tap(fixture("tap_short_plan.txt")))
      assert.are.same({ 4, 3, 1, 0 }, counts(short))
      assert.are.equal("planned 5 tests but 3 ran", failure_named(short, "plan").message)
    end)

    it("not TAP: nil (go's 'ok  pkg' lines included)", function()
      assert.is_nil(results.tap("hello\nall good\n"))
      assert.is_nil(results.tap(fixture("go_test_cover.txt")))
    end)
  end)

  describe("go test -json", function()
    it("pass, fail, skip per test; a parent counts through its subtests; coverage per package", function()
      local t, coverage = results.go_json(fixture("go_test_fail.json"))
      assert.are.same({ 8, 5, 2, 1 }, counts(t))
      local add = failure_named(t, "example.com/calc.TestAdd")
      assert.are.equal("Add(2, 3) = -1, want 5", add.message)
      assert.are.equal("calc_test.go", add.file)
      assert.are.equal(9, add.line)
      local sub = failure_named(t, "example.com/calc.TestDiv/by_zero")
      assert.are.equal(34, sub.line)
      assert.matches("want ErrDivByZero\ncalc_test%.go:35: and the result was %+Inf", sub.message)
      assert.are.equal(2, #t.failures)                     -- TestDiv itself is not listed again
      assert.near(80.7, coverage, 0.001)                   -- (71.4 + 90.0) / 2
    end)

    it("a package that does not build (Go 1.24's build-fail events) is a failure", function()
      local t = assert(results.go_json(fixture("go_test_build_fail.json")))
      assert.are.same({ 2, 1, 1, 0 }, counts(t))
      local f = failure_named(t, "build example.com/calc/broken")
      assert.are.equal("broken/broken.go:7:9: undefined: strings.Reverse", f.message)
      assert.are.equal("broken/broken.go", f.file)
      assert.are.equal(7, f.line)
    end)

    it("a panic: the running test fails, located in its _test.go frame", function()
      local t = assert(results.go_json(fixture("go_test_panic.json")))
      assert.are.same({ 2, 1, 1, 0 }, counts(t))
      local f = failure_named(t, "example.com/calc.TestParse")
      assert.are.equal("panic: runtime error: index out of range [3] with length 3 [recovered]", f.message)
      assert.are.equal("/home/dev/calc/parse_test.go", f.file)
      assert.are.equal(8, f.line)
    end)

    it("build errors printed as plain text before the JSON (older Go) name the package", function()
      local t = assert(results.go_json("# example.com/x\n./x.go:3:2: undefined: y\n"
        .. '{"Action":"start","Package":"example.com/x"}\n'
        .. '{"Action":"output","Package":"example.com/x","Output":"FAIL\\texample.com/x [build failed]\\n"}\n'
        .. '{"Action":"fail","Package":"example.com/x","Elapsed":0}\n'))
      local f = failure_named(t, "package example.com/x")
      assert.matches("undefined: y", f.message)
      assert.are.equal("x.go", f.file)
      assert.are.equal(3, f.line)
    end)

    it("not go test -json: nil", function()
      assert.is_nil(results.go_json(fixture("cargo_pass.txt")))
    end)
  end)

  describe("pytest", function()
    it("-q: the summary line, FAILED/ERROR lines, and where each traceback points", function()
      local t = assert(results.pytest(fixture("pytest_q_fail.txt")))
      assert.are.same({ 9, 4, 3, 2 }, counts(t))       -- xfailed counts as skipped, an error as failed
      local add = failure_named(t, "tests/test_calc.py::test_add")
      assert.are.equal("assert -1 == 5", add.message)
      assert.are.equal("tests/test_calc.py", add.file)
      assert.are.equal(8, add.line)
      local cls = failure_named(t, "tests/test_calc.py::TestDivide::test_by_zero")
      assert.are.equal(15, cls.line)                       -- the test's own line, not calc.py's
      local setup = failure_named(t, "ERROR tests/test_calc.py::test_with_fixture")
      assert.are.equal("RuntimeError: no database", setup.message)
      assert.are.equal(22, setup.line)
    end)

    it("a collection error names the module and its E line", function()
      local t = assert(results.pytest(fixture("pytest_collect_error.txt")))
      assert.are.same({ 1, 0, 1, 0 }, counts(t))
      local f = failure_named(t, "ERROR tests/test_calc.py")
      assert.are.equal("ModuleNotFoundError: No module named 'calc'", f.message)
      assert.are.equal("tests/test_calc.py", f.file)
      assert.are.equal(3, f.line)
    end)

    it("the decorated summary, and pytest-cov's TOTAL line", function()
      local text = fixture("pytest_cov_pass.txt")
      assert.are.same({ 8, 8, 0, 0 }, counts(assert(results.pytest(text))))
      assert.are.equal(95, results.coverage(text))
    end)

    it("no tests ran", function()
      assert.are.same({ 0, 0, 0, 0 }, counts(assert(results.pytest(fixture("pytest_no_tests.txt")))))
      assert.is_nil(results.pytest("collected 3 items\n"))
    end)
  end)

  describe("cargo test (real captures)", function()
    it("sums every 'test result:' line (unit, integration, doc tests) and reads each panic", function()
      local t = assert(results.cargo(fixture("cargo_fail.txt")))
      assert.are.same({ 6, 2, 3, 1 }, counts(t))
      local adds = failure_named(t, "tests::adds")
      assert.are.equal("assertion `left == right` failed\n  left: -1\n right: 5", adds.message)
      assert.are.equal("src/lib.rs", adds.file)
      assert.are.equal(14, adds.line)
      assert.are.equal("boom: 42", failure_named(t, "tests::panics_with_message").message)
      local doc = failure_named(t, "src/lib.rs - add (line 3)")
      assert.are.equal("src/lib.rs", doc.file)
      assert.are.equal(3, doc.line)
      assert.are.same({ 6, 5, 0, 1 }, counts(assert(results.cargo(fixture("cargo_pass.txt")))))
    end)

    it("a compile error: no test ran, the error is named", function()
      local t = assert(results.cargo(fixture("cargo_compile_error.txt")))
      assert.are.same({ 0, 0, 0, 0 }, counts(t))
      local f = failure_named(t, "compile")
      assert.are.equal("error[E0277]: cannot add `&str` to `i32`", f.message)
      assert.are.equal("src/lib.rs", f.file)
      assert.are.equal(6, f.line)
      assert.are.equal(1, #t.failures)
    end)
  end)

  describe("JavaScript runners", function()
    it("jest: the Tests line, each ● block, a suite that failed to run, the coverage table", function()
      local text = fixture("jest_fail.txt")
      local t = assert(results.jest(text))
      assert.are.same({ 5, 3, 1, 1 }, counts(t))
      local f = failure_named(t, "sum › adds two numbers")
      assert.are.equal("expect(received).toBe(expected) // Object.is equality\nExpected: 5\nReceived: -1", f.message)
      assert.are.equal("src/sum.test.js", f.file)
      assert.are.equal(5, f.line)
      local suite = failure_named(t, "Test suite failed to run: src/broken.test.js")
      assert.are.equal(1, suite.line)
      assert.are.equal(85.71, results.coverage(text))
      assert.are.same({ 5, 5, 0, 0 }, counts(assert(results.jest(fixture("jest_pass.txt")))))
    end)

    it("vitest: the Tests line and the FAIL blocks", function()
      local t = assert(results.vitest(fixture("vitest_fail.txt")))
      assert.are.same({ 5, 3, 1, 1 }, counts(t))
      local f = failure_named(t, "src/sum.test.ts › sum › adds two numbers")
      assert.are.equal("AssertionError: expected -1 to be 5 // Object.is equality", f.message)
      assert.are.equal(5, f.line)
    end)

    it("node's spec reporter (real capture)", function()
      local t = assert(results.node(fixture("node_test_spec.txt")))
      assert.are.same({ 6, 2, 2, 2 }, counts(t))
      local f = failure_named(t, "subtracts")
      assert.are.equal("math.test.js", f.file)
      assert.are.equal(5, f.line)
      assert.matches("2 !== 3", f.message)
    end)

    it("mocha: passing/pending/failing and the numbered failures", function()
      local t = assert(results.mocha(fixture("mocha_fail.txt")))
      assert.are.same({ 4, 2, 1, 1 }, counts(t))
      local f = failure_named(t, "calc adds two numbers")
      assert.are.equal("AssertionError [ERR_ASSERTION]: -1 == 5", f.message)
      assert.are.equal("test/calc.test.js", f.file)
      assert.are.equal(6, f.line)
    end)
  end)

  describe("JVM and PHP consoles", function()
    it("maven -q: the total line and the Results section", function()
      local t = assert(results.surefire(fixture("maven_quiet_fail.txt")))
      assert.are.same({ 6, 3, 2, 1 }, counts(t))
      local f = failure_named(t, "CalcTest.adds")
      assert.are.equal("expected: <5> but was: <-1>", f.message)
      assert.are.equal(12, f.line)
      assert.are.equal(18, failure_named(t, "CalcTest.divides").line)
    end)

    it("gradle: tests completed, failed, skipped", function()
      local t = assert(results.gradle(fixture("gradle_fail.txt")))
      assert.are.same({ 5, 2, 2, 1 }, counts(t))
      assert.are.equal(12, failure_named(t, "CalcTest.adds()").line)
    end)

    it("phpunit: FAILURES! and OK, the failures but not the skipped tests, Lines coverage", function()
      local text = fixture("phpunit_fail.txt")
      local t = assert(results.phpunit(text))
      assert.are.same({ 5, 3, 1, 1 }, counts(t))
      assert.are.equal(1, #t.failures)
      local f = failure_named(t, "Tests\\CalcTest::testAdd")
      assert.are.equal("Failed asserting that -1 matches expected 5.", f.message)
      assert.are.equal(12, f.line)
      assert.are.equal(85, results.coverage(text))
      assert.are.same({ 5, 5, 0, 0 }, counts(assert(results.phpunit(fixture("phpunit_pass.txt")))))
    end)
  end)

  describe("coverage and choosing a parser", function()
    it("go's per-package lines, tarpaulin, nothing", function()
      assert.near(80.7, results.coverage(fixture("go_test_cover.txt")), 0.001)
      assert.are.equal(81.25, results.coverage("|| Tested/Total Lines:\n81.25% coverage, 13/16 lines covered\n"))
      assert.is_nil(results.coverage(fixture("cargo_pass.txt")))
    end)

    it("every sample is recognised by its own parser, colours and CRs stripped", function()
      local expect = {
        ["busted_tap.txt"] = "tap", ["node_test_tap.txt"] = "tap", ["tap_prove.txt"] = "tap",
        ["cargo_fail.txt"] = "cargo", ["cargo_pass.txt"] = "cargo", ["cargo_compile_error.txt"] = "cargo",
        ["go_test_fail.json"] = "go-json", ["go_test_panic.json"] = "go-json",
        ["pytest_q_fail.txt"] = "pytest", ["pytest_cov_pass.txt"] = "pytest", ["jest_fail.txt"] = "jest",
        ["vitest_fail.txt"] = "vitest", ["node_test_spec.txt"] = "node", ["mocha_fail.txt"] = "mocha",
        ["maven_quiet_fail.txt"] = "surefire", ["gradle_fail.txt"] = "gradle", ["phpunit_fail.txt"] = "phpunit",
      }
      for name, parser in pairs(expect) do
        local text = fixture(name)
        local _, got = results.parse(text)
        assert.are.equal(parser, got, name)
        local coloured = text:gsub("\n", "\27[0m\r\n"):gsub("(%d+) passed", "\27[32m%1 passed\27[39m")
        local _, got2 = results.parse(coloured)
        assert.are.equal(parser, got2, name .. " (coloured)")
      end
      local tests, got = results.parse("building...\ndone\n")
      assert.is_nil(tests)
      assert.is_nil(got)
    end)
  end)
end)

describe("scoring", function()
  local function run_result(fields)
    local r = { ok = false, exit = 0, timed_out = false, seconds = 1.5, output = "", command = "make test",
                kind = "make", parsed_from = "tap" }
    for k, v in pairs(fields) do r[k] = v end
    return r
  end
  local function tests(total, passed, failed, skipped, failures)
    return { total = total, passed = passed, failed = failed, skipped = skipped, failures = failures or {} }
  end

  it("build: exit 0 → 100, else 0; a timeout → 0, 'timed out'", function()
    assert.are.equal(100, (measure.score_build(run_result{ exit = 0 })))
    local s, why = measure.score_build(run_result{ exit = 2, command = "make",
      output = "cc -c x.c\nx.c:3:1: error: expected ';' before '}' token\nmake: *** [x.o] Error 1\n" })
    assert.are.equal(0, s)
    assert.are.equal("build failed (`make` exit 2): x.c:3:1: error: expected ';' before '}' token", why)
    s, why = measure.score_build(run_result{ exit = 143, timed_out = true, seconds = 600 })
    assert.are.equal(0, s)
    assert.matches("^timed out after 10 min 0 s", why)
    s, why = measure.score_build(run_result{ exit = 127, output = "sh: 1: cargo: not found\n" })
    assert.are.equal(0, s)
    assert.are.equal("command not found in the sandbox: sh: 1: cargo: not found", why)
    assert.are.equal(0, (measure.score_build(nil)))
  end)

  it("test: all passing → 100; coverage below the minimum costs up to 15, in proportion", function()
    local r = run_result{ exit = 0, tests = tests(10, 9, 0, 1), coverage = 40 }
    local s, why = measure.score_test(r)
    assert.are.equal(100, s)
    assert.are.equal("all 9 tests passed (1 skipped); coverage 40.0%", why)
    s, why = measure.score_test(r, { min_coverage = 80 })
    assert.are.equal(92, s)                                 -- 100 − 15 × (80 − 40) / 80 = 92.5
    assert.matches("coverage 40%.0%% is below 80%% %(−7%.5%)", why)
    assert.are.equal(85, (measure.score_test(run_result{ exit = 0, tests = tests(3, 3, 0, 0), coverage = 0 },
                                             { min_coverage = 80 })))
    assert.are.equal(100, (measure.score_test(run_result{ exit = 0, tests = tests(3, 3, 0, 0), coverage = 90 },
                                              { min_coverage = 80 })))
    s, why = measure.score_test(run_result{ exit = 0, tests = tests(3, 3, 0, 0) }, { min_coverage = 80 })
    assert.are.equal(100, s)
    assert.matches("coverage not measured", why)
  end)

  it("test: any failure or a non-zero exit → at most 60 × passed/total, so a gate at 80 fails", function()
    local fails = { { name = "t_sub", message = "expected 1, got 5" }, { name = "t_div" }, { name = "t_mod" },
                    { name = "t_pow" } }
    local s, why = measure.score_test(run_result{ exit = 1, tests = tests(100, 96, 4, 0, fails) })
    assert.are.equal(57, s)                                 -- floor(60 × 96 / 100)
    assert.are.equal("4 of 100 tests failed: t_sub, t_div, t_mod (+1 more)", why)
    -- a failure parsed even though the command exited 0 still fails the gate
    s = measure.score_test(run_result{ exit = 0, tests = tests(10, 9, 1, 0, { { name = "x" } }) })
    assert.are.equal(54, s)
    -- everything passed, yet the command failed (a crash after the tests, a coverage floor)
    s, why = measure.score_test(run_result{ exit = 2, tests = tests(10, 10, 0, 0) })
    assert.are.equal(60, s)
    assert.are.equal("exit 2 although 10 of 10 tests passed", why)
    -- nothing could be read and it failed
    s, why = measure.score_test(run_result{ exit = 1, tests = nil, parsed_from = "exit-code",
                                            output = "Traceback...\nImportError: cannot import name 'x'\n" })
    assert.are.equal(0, s)
    assert.are.equal("exit 1, no test results could be read: ImportError: cannot import name 'x'", why)
    -- a compile error: no test ran, the error is the reason
    s, why = measure.score_test(run_result{ exit = 101, kind = "cargo", tests = tests(0, 0, 0, 0,
      { { name = "compile", message = "error[E0277]: cannot add", file = "src/lib.rs", line = 6 } }) })
    assert.are.equal(0, s)
    assert.are.equal("exit 101: compile (src/lib.rs:6): error[E0277]: cannot add", why)
  end)

  it("test: no tests ran but exit 0 → 50; pytest's exit 5 is that too; a timeout → 0", function()
    local s, why = measure.score_test(run_result{ exit = 0, tests = tests(0, 0, 0, 0), no_tests = true })
    assert.are.equal(50, s)
    assert.are.equal("no tests ran", why)
    assert.are.equal(50, (measure.score_test(run_result{ exit = 5, kind = "pytest", tests = tests(0, 0, 0, 0),
                                                         no_tests = true })))
    s, why = measure.score_test(run_result{ exit = 143, timed_out = true, seconds = 2, tests = tests(5, 5, 0, 0) })
    assert.are.equal(0, s)
    assert.are.equal("timed out after 2.0 s (5 of the tests seen had passed)", why)
  end)

  it("test: exit 0 with output no parser knows passes, saying the count is unknown", function()
    local s, why = measure.score_test(run_result{ exit = 0, parsed_from = "exit-code" })
    assert.are.equal(100, s)
    assert.matches("how many ran is unknown", why)
  end)

  it("an interrupted run, and a command the sandbox could not start, score 0", function()
    assert.are.same({ 0, "interrupted" }, { measure.score_test(run_result{ exit = 143, interrupted = true }) })
    assert.are.same({ 0, "interrupted" }, { measure.score_build(run_result{ exit = 143, interrupted = true }) })
    local dir = support.tmpdir()
    local broken = { root = dir, run = function() return nil, "bwrap: cannot start (test)" end }
    local r = measure.run({ command = "make test", kind = "make" }, { sandbox = broken })
    assert.is_false(r.ok)
    assert.are.equal("bwrap: cannot start (test)", r.error)
    assert.are.same({ 0, "could not run `make test`: bwrap: cannot start (test)" }, { measure.score_test(r) })
    assert.are.equal(0, (measure.score_build(r)))
    support.cleanup()
  end)

  it("the rules are stated for printing", function()
    assert.matches("60 × passed/total", measure.SCORING.test)
    assert.matches("exit 0 → 100", measure.SCORING.build)
  end)
end)

describe("measure.run (real runs in the sandbox)", function()
  local sb
  local function sandbox_for(root)
    sb = assert(sandbox.new{ root = root, mode = "auto" })
    return sb
  end
  after_each(function()
    if sb then sb:close() sb = nil end
    support.cleanup()
  end)

  it("a passing make project: build 100, tests read from TAP, 100", function()
    local dir = project("make_pass")
    local plan = assert(measure.detect(dir))
    local b = measure.run(plan.build, { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.is_true(b.ok)
    assert.are.equal(0, b.exit)
    assert.are.equal(100, (measure.score_build(b)))
    assert.is_not_nil(fs.stat(dir .. "/out/calc.sh"))     -- the build wrote into the workspace
    local r = measure.run(plan.test, { root = dir, sandbox = sb, timeout = 60 })
    assert.is_true(r.ok)
    assert.are.equal("tap", r.parsed_from)
    assert.are.same({ 4, 3, 0, 1 }, counts(r.tests))
    assert.is_false(r.timed_out)
    assert.is_true(r.seconds >= 0 and r.seconds < 30)
    local s, why = measure.score_test(r)
    assert.are.equal(100, s)
    assert.are.equal("all 3 tests passed (1 skipped)", why)
  end)

  it("a failing make project: the build's error and the failing test are named", function()
    local dir = project("make_fail")
    local plan = assert(measure.detect(dir))
    local b = measure.run(plan.build, { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.is_false(b.ok)
    assert.are.equal(2, b.exit)
    local s, why = measure.score_build(b)
    assert.are.equal(0, s)
    assert.matches("build failed %(`make build` exit 2%): src/format%.sh: 5: Syntax error", why)
    local r = measure.run(plan.test, { root = dir, sandbox = sb, timeout = 60 })
    assert.is_false(r.ok)
    assert.are.equal(2, r.exit)
    assert.are.same({ 4, 2, 1, 1 }, counts(r.tests))
    local f = failure_named(r.tests, "sub subtracts")
    assert.are.equal("expected 1, got 5", f.message)
    assert.are.equal("tests/run.sh", f.file)
    assert.are.equal(22, f.line)
    s, why = measure.score_test(r)
    assert.are.equal(30, s)                                 -- 60 × 2 / 4
    assert.are.equal("1 of 4 tests failed: sub subtracts", why)
    assert.matches("FAILED sub subtracts at tests/run%.sh:22\n    expected 1, got 5", measure.describe(r))
    assert.matches("make: %*%*%* %[Makefile:11: test%] Error 1", r.output)   -- stderr is in the output
  end)

  it("a test run that hangs is cut at its timeout, reported, and leaves nothing running", function()
    local dir = project("make_slow")
    local plan = assert(measure.detect(dir))
    local r = measure.run(plan.test, { root = dir, sandbox = sandbox_for(dir), timeout = 1 })
    assert.is_true(r.timed_out)
    assert.is_false(r.ok)
    assert.is_true(r.seconds < 15)
    assert.matches("ok 1 %- starts", r.output)
    local s, why = measure.score_test(r)
    assert.are.equal(0, s)
    assert.matches("^timed out after 1%.%d s", why)
    for _, pid in ipairs(fs.list("/proc")) do
      local cmd = pid:match("^%d+$") and fs.read("/proc/" .. pid .. "/cmdline")
      assert.are_not.equal("sleep\0" .. "37\0", cmd)
    end
  end)

  it("a config command that writes a JUnit report: read after the run, paths made relative", function()
    local dir = project("empty")
    local xml = ([[<testsuite tests="2"><testcase classname="suite" name="works"/><testcase classname="suite" name="breaks"><failure message="boom">at %s/lib/x.js:7:3</failure></testcase></testsuite>]]):format(dir)
    support.write(dir .. "/make-report.sh", "mkdir -p out\ncat > out/junit.xml <<'EOF'\n" .. xml .. "\nEOF\necho ran; exit 1\n")
    local plan = assert(measure.detect(dir, { test = { command = "sh make-report.sh", report = "out/junit.xml" } }))
    local r = measure.run(plan.test, { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.are.equal("junit", r.parsed_from)
    assert.are.same({ "out/junit.xml" }, r.reports)
    assert.are.same({ 2, 1, 1, 0 }, counts(r.tests))
    local f = failure_named(r.tests, "suite.breaks")
    assert.are.equal("lib/x.js", f.file)
    assert.are.equal(7, f.line)
    assert.is_not_nil(fs.stat(dir .. "/out/junit.xml"))   -- the project's own path: left alone
    -- a stale report (not rewritten by the next run) is not read again
    local r2 = measure.run({ command = "echo nothing", kind = "config", report = "out/junit.xml" },
                           { root = dir, sandbox = sb, timeout = 60 })
    assert.are.equal("exit-code", r2.parsed_from)
    assert.is_nil(r2.tests)
  end)

  it("a glob of reports (surefire's one file per class) is read in full", function()
    local dir = project("empty")
    -- the fixtures are copied in first: the sandbox sees the project, not this checkout (whose
    -- path may lie under the /tmp the sandbox replaces)
    assert.are.equal(0, support.sh(("cp -R '%sresults/surefire-reports' '%s/fixture-reports'"):format(FIXTURES, dir)).code)
    local step = { command = "mkdir -p core/target && cp -R fixture-reports core/target/surefire-reports && exit 1",
                   kind = "maven", report = "**/target/surefire-reports/TEST-*.xml" }
    local r = measure.run(step, { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.are.equal("junit", r.parsed_from)
    assert.are.same({ "core/target/surefire-reports/TEST-com.example.CalcTest.xml",
                      "core/target/surefire-reports/TEST-com.example.StringsTest.xml" }, r.reports)
    assert.are.same({ 6, 3, 2, 1 }, counts(r.tests))
    assert.are.equal(30, (measure.score_test(r)))
  end)

  it("output no parser knows: exit 0 passes unless it says no test ran", function()
    local dir = project("empty")
    local r = measure.run({ command = "echo 'All 10 tests passed'", kind = "config" },
                          { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.are.equal("exit-code", r.parsed_from)
    assert.is_true(r.ok)
    assert.are.equal(100, (measure.score_test(r)))
    local none = measure.run({ command = "echo 'No tests found, exiting'", kind = "config" },
                             { root = dir, sandbox = sb, timeout = 60 })
    local s, why = measure.score_test(none)
    assert.are.equal(50, s)
    assert.are.equal("no tests ran", why)
  end)

  it("a report path measure chose is removed after it is read", function()
    local dir = project("empty")
    local step = { command = "printf '<testsuite><testcase name=\"a\"/></testsuite>' > .codeassist-x.xml",
                   kind = "config", report = ".codeassist-x.xml", own_report = true }
    local r = measure.run(step, { root = dir, sandbox = sandbox_for(dir), timeout = 60 })
    assert.are.equal("junit", r.parsed_from)
    assert.are.same({ 1, 1, 0, 0 }, counts(r.tests))
    assert.is_nil(fs.stat(dir .. "/.codeassist-x.xml"))
  end)

  it("long output keeps its head and tail; a command that cannot be found is said so", function()
    local dir = project("empty")
    local r = measure.run({ command = "seq 1 20000; echo 'ok 1 - last'", kind = "config" },
                          { root = dir, sandbox = sandbox_for(dir), timeout = 60, output_cap = 2000 })
    assert.is_true(#r.output < 2300)
    assert.matches("^1\n2\n", r.output)
    assert.matches("bytes cut from the middle", r.output)
    assert.matches("ok 1 %- last\n?$", r.output)
    local missing = measure.run({ command = "no-such-tool-here --test", kind = "config" },
                                { root = dir, sandbox = sb, timeout = 60 })
    assert.are.equal(127, missing.exit)
    local s, why = measure.score_test(missing)
    assert.are.equal(0, s)
    assert.matches("^command not found in the sandbox", why)
  end)

  it("npm test with node's own runner: the failing test named", function()
    local has = proc.run{ "sh", "-c", "command -v npm && command -v node", timeout = 10 }
    if not has or has.code ~= 0 then pending("npm and node are not installed here") return end
    local dir = project("npm_node")
    local plan = assert(measure.detect(dir))
    local b = measure.run(plan.build, { root = dir, sandbox = sandbox_for(dir), timeout = 120 })
    assert.are.equal(100, (measure.score_build(b)))
    local r = measure.run(plan.test, { root = dir, sandbox = sb, timeout = 120 })
    assert.is_false(r.ok)
    assert.is_truthy(r.parsed_from == "tap" or r.parsed_from == "node")   -- Node ≥ 23 prints spec
    assert.are.same({ 4, 2, 1, 1 }, counts(r.tests))
    local f = failure_named(r.tests, "sub subtracts")
    assert.are.equal("test/calc.test.js", f.file)
    assert.are.equal(6, f.line)
    assert.matches("5 !== 1", f.message)
    assert.are.equal(30, (measure.score_test(r)))
  end)

  it("pytest, where the sandbox's python3 has it: failures named from the JUnit report", function()
    local dir = project("pytest_proj")
    local probe = assert(sandbox_for(dir):run('python3 -c "import pytest"', { timeout = 30 }))
    if probe.code ~= 0 then pending("pytest is not installed for the sandbox's python3") return end
    local plan = assert(measure.detect(dir))
    local r = measure.run(plan.test, { root = dir, sandbox = sb, timeout = 120 })
    assert.are.equal("junit", r.parsed_from)
    assert.are.same({ 3, 1, 1, 1 }, counts(r.tests))
    assert.are.equal("tests/test_calc.py", failure_named(r.tests, "tests.test_calc.test_sub").file)
    assert.is_nil(fs.stat(dir .. "/.codeassist-pytest.xml"))
  end)
end)
