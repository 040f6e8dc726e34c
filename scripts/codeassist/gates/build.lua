-- build: the project's real build, run in the sandbox and scored by its exit code alone. When
-- it fails, a model explains the errors and proposes fixes; it cannot change the score.
local common = require "codeassist.gates.common"

return {
  name = "build", kind = "measured", step = "build",
  rule = "100 when the build command exits 0, else 0 (measured, not asked)",
  schema = common.SCHEMA,
  prompt = [[The project's build failed; its output is below. Explain each error as a finding: what is
wrong, the file and line, and the change that fixes it (severity high for an error that stops the
build, medium for a warning that matters). Do not claim the build passes: it was measured.]],
  check = function(ctx) return ctx.measure("build") end,
  score = function(_, check) return check.score, check.reason end,
}
