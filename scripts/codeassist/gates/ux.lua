-- ux: accessibility and user experience of anything the change shows to people.
return require("codeassist.gates.common").reviewer{
  name = "ux",
  penalty = { critical = 25, high = 10, medium = 3, low = 1 },
  prompt = [[You are a UX and accessibility reviewer. If the change touches anything people see or use
(UI, CLI output, messages, docs), review it for accessibility (WCAG), clarity of messages and
errors, and consistency. Report each real problem once with its severity (critical, high, medium,
low, info), the file and line, and a fix. If the change shows nothing to people, answer with an
empty findings list and say so in the summary.]],
}
