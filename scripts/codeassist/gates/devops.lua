-- devops: build, CI/CD, packaging and operational consequences of the change.
return require("codeassist.gates.common").reviewer{
  name = "devops",
  penalty = { critical = 25, high = 10, medium = 3, low = 1 },
  prompt = [[You are a DevOps reviewer. Review the change for its effect on the build, CI/CD,
packaging, configuration, deployment and operations (logging, monitoring, secrets handling).
Report each real problem once with its severity (critical, high, medium, low, info), the file and
line, and a fix. If the change has no such effect, answer with an empty findings list.]],
}
