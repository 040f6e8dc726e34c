-- The original's prototype targets: 80 in up to 5 iterations; only test, security and build
-- count. Routing comes from the config.
local preset = require "codeassist.preset"

return preset.define{
  name = "prototype",
  description = "quick targets (80, 5 iterations): test, security, build",
  target_score = 80,
  max_iterations = 5,
  gates = {
    test = { weight = 40, required = true }, security = { weight = 30, required = false },
    build = { weight = 30, required = true }, review = { weight = 0, required = false },
    mentor = { weight = 0, required = false }, architect = { weight = 0, required = false },
    ux = { weight = 0, required = false }, devops = { weight = 0, required = false },
  },
}
