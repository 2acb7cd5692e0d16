// The command tree of faultproxy-cli (toxiproxy-cli's commands, aliases and flags) and its help
// texts, rendered exactly as toxiproxy-cli 2.12 (urfave/cli v2 templates through text/tabwriter)
// renders them. The program name is a parameter: invoked as `toxiproxy-cli` (a symlink), every text
// is byte-identical to toxiproxy-cli's; invoked as `faultproxy-cli`, that name appears instead.
//
// Usage:
//   const CommandSet& set = command_set();
//   const CommandDef* cmd = find_command(set.commands, "ls");      // -> "list"
//   std::cout << app_help("faultproxy-cli");
//   std::cout << command_help("faultproxy-cli", *cmd, {});          // `list --help`
//   std::cout << command_help("faultproxy-cli", *add, {"toxic"});   // `toxic add --help`
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "faultproxy/go/flag.h"

namespace faultproxy::cli {

// toxiproxy-cli's flags are Go's (urfave/cli over the flag package).
using go::FlagKind;
using go::FlagSpec;
using go::parse_flags;
using go::ParsedFlags;

// The version toxiproxy-cli reports; faultproxy-cli implements that release's interface.
inline constexpr std::string_view kCliVersion = "2.12.0";
inline constexpr std::string_view kDefaultHost = "http://localhost:8474";

struct FlagDef {
  FlagSpec spec;
  std::string help;  // "--listen value, -l value\tproxy will listen on this address"
};

enum class Action {
  kList,
  kInspect,
  kCreate,
  kToggle,
  kDelete,
  kToxic,
  kToxicAdd,
  kToxicUpdate,
  kToxicRemove,
  kHelp
};

struct CommandDef {
  std::vector<std::string> names;
  std::string usage;        // may hold "{name}" for the program name, "\n" and "\t" as urfave renders them
  std::string args_usage;   // "<proxyName>", "[command]", or empty for "[arguments...]"
  std::string description;  // may hold "{name}"
  std::vector<FlagDef> flags;
  std::vector<CommandDef> subcommands;
  Action action = Action::kHelp;
};

struct CommandSet {
  std::vector<FlagDef> global_flags;
  std::vector<CommandDef> commands;
};

const CommandSet& command_set();

// The command (or subcommand) with that name or alias, nullptr if none.
const CommandDef* find_command(const std::vector<CommandDef>& commands, std::string_view name);

std::vector<FlagSpec> specs_of(const std::vector<FlagDef>& flags);

// `faultproxy-cli help`
std::string app_help(std::string_view program);

// `<program> <parents...> <cmd> --help`; a command with subcommands (`toxic`) gets the subcommand
// template with its command list.
std::string command_help(std::string_view program, const CommandDef& cmd,
                         const std::vector<std::string>& parents);

}  // namespace faultproxy::cli
