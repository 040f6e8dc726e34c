-- architect: system-level security and performance consequences of the change.
return require("codeassist.gates.common").reviewer{
  name = "architect",
  penalty = { critical = 30, high = 12, medium = 4, low = 1 },
  prompt = [[You are a software architect. Review the change below for its system-level consequences:
performance (complexity, I/O in loops, memory), scalability, security posture, coupling and
failure handling. Report each real problem once with its severity (critical, high, medium, low,
info), the file and line, and a recommendation. An empty findings list means no concerns.]],
}
