-- Every gate on Claude: the reference setup; needs ANTHROPIC_API_KEY.
local preset = require "codeassist.preset"

return preset.define{
  name = "claude",
  description = "every gate and the agent on Claude",
  default_route = { provider = "claude", floor = "critical" },
  force_routes = true,   -- "every gate on Claude" means it, whatever gate_providers says
}
