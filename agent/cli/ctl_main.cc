// popguardctl: operator commands. `rules check` compiles rules exactly as
// the agent loads them (detect::LoadRules) and reports every problem.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "agent/detect/kernel_plan.h"
#include "agent/detect/load.h"

namespace {

int CheckRules(const std::vector<std::string>& paths) {
  popguard::detect::LoadedRules loaded = popguard::detect::LoadRules(paths);
  for (const auto& error : loaded.errors) std::cerr << error.ToString() << '\n';
  for (const auto& warning : loaded.warnings) {
    std::cerr << warning.location.file << ':' << warning.location.line
              << ": warning: " << warning.message << '\n';
  }
  // What the rules ask of the kernel, as the agent will configure it.
  if (loaded.engine) {
    const popguard::detect::KernelPlan plan =
        popguard::detect::PlanKernel(loaded.engine->rules(), pg_config{});
    for (const std::string& note : plan.notes) std::cout << "kernel: " << note << '\n';
  }
  const size_t count = loaded.engine ? loaded.engine->rules().size() : 0;
  std::cout << count << " rules compiled from " << loaded.files.size() << " file(s), "
            << loaded.errors.size() << " error(s), " << loaded.warnings.size() << " warning(s)";
  if (loaded.disabled_rules) std::cout << ", " << loaded.disabled_rules << " commented out";
  std::cout << '\n';
  return loaded.errors.empty() && loaded.engine ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"popguardctl: popguard operator commands"};
  app.require_subcommand(1);
  CLI::App* rules = app.add_subcommand("rules", "Rule files");
  rules->require_subcommand(1);
  std::vector<std::string> paths;
  CLI::App* check = rules->add_subcommand(
      "check", "Compile rules as the agent would; errors as file:line: message; exit 1 on any");
  check->add_option("PATH", paths, "Rule file or directory of *.rules")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Usage errors exit 2, as getopt-style tools do; --help exits 0.
    return app.exit(error) == 0 ? 0 : 2;
  }
  if (check->parsed()) return CheckRules(paths);
  return 0;
}
