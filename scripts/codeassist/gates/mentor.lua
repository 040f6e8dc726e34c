-- mentor: does the change fit the codebase's design, and does it do what the issue asks?
return require("codeassist.gates.common").reviewer{
  name = "mentor",
  penalty = { critical = 25, high = 15, medium = 5, low = 1 },
  prompt = [[You are a mentor reviewing whether this change solves the issue well and fits the
codebase: does it do what the issue asks (nothing missing, nothing extra)? Does it follow the
project's existing structure and conventions? Is it tested where it should be? Report each
concern once with its severity (critical: the issue is not solved; high: a design problem that
will hurt; medium: worth changing now; low: a suggestion; info: a note), the file and line, and
what to do. An empty findings list means you would approve it.]],
}
