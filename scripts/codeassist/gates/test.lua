-- test: the project's real tests, run in the sandbox and scored from their results (exit
-- code, parsed JUnit/TAP/go/pytest/cargo output, coverage). When they fail, a model explains
-- the failures and proposes fixes; a model that says they pass cannot raise the score.
local common = require "codeassist.gates.common"

return {
  name = "test", kind = "measured", step = "test",
  rule = "100 when every test passes (less up to 15 below thresholds.min_coverage); with a failure at most "
    .. "60 × passed/total; no tests run: 50 (measured, not asked)",
  schema = common.SCHEMA,
  prompt = [[The project's tests failed; the failures and output are below. Explain each failure as a
finding: the test, the file and line, why it fails and the change that fixes it (severity high for
a failing test). Do not claim the tests pass: they were run and measured.]],
  check = function(ctx) return ctx.measure("test") end,
  score = function(_, check) return check.score, check.reason end,
}
