-- Every gate and the agent on Claude: the reference setup; needs ANTHROPIC_API_KEY.
local preset = require "codeassist.preset"

return preset.define{
  name = "claude",
  description = "every gate and the agent on Claude",
  default_route = { provider = "claude", floor = "critical" },
}
