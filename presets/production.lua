-- The original's strict/production targets: 98 in up to 20 iterations, every gate but ux and
-- devops required. Routing comes from the config (providers.default, gate_providers).
local preset = require "codeassist.preset"

return preset.define{
  name = "production",
  description = "strict targets (98, 20 iterations), routing from the config",
  target_score = 98,
  max_iterations = 20,
  gates = {
    test = { weight = 20, required = true }, security = { weight = 25, required = true },
    build = { weight = 10, required = true }, review = { weight = 15, required = true },
    mentor = { weight = 15, required = true }, architect = { weight = 10, required = true },
    ux = { weight = 5, required = false }, devops = { weight = 0, required = false },
  },
}
