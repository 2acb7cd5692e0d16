#include "faultproxy/cli/commands.h"

#include "faultproxy/go/tabwriter.h"

namespace faultproxy::cli {
namespace {

// The toxic command's description, as toxiproxy-cli 2.12 prints it (each line is indented by three
// more spaces when rendered).
constexpr std::string_view kToxicDescription =
    "Default Toxics:\n"
    "  latency:    delay all data +/- jitter\n"
    "              latency=<ms>,jitter=<ms>\n"
    "\n"
    "  bandwidth:  limit to max kb/s\n"
    "              rate=<KB/s>\n"
    "\n"
    "  slow_close: delay from closing\n"
    "              delay=<ms>\n"
    "\n"
    "  timeout:    stop all data and close after timeout\n"
    "              timeout=<ms>\n"
    "\n"
    "  reset_peer: simulate TCP RESET (Connection reset by peer) on the connections by closing\n"
    "              the stub Input immediately or after a timeout\n"
    "              timeout=<ms>\n"
    "\n"
    "  slicer:     slice data into bits with optional delay\n"
    "              average_size=<bytes>,size_variation=<bytes>,delay=<microseconds>\n"
    "\n"
    "  toxic add:\n"
    "    usage: {name} toxic add --type <toxicType> [--downstream|--upstream] \\\n"
    "            --toxicName <toxicName> [--toxicity <float>] \\\n"
    "            --attribute <key=value> [--attribute <key2=value2>] <proxyName>\n"
    "\n"
    "\n"
    "    example: {name} toxic add -t latency -n myToxic -a latency=100 -a jitter=50 myProxy\n"
    "\n"
    "  toxic update:\n"
    "    usage: {name} toxic update --toxicName <toxicName> [--toxicity <float>] \\\n"
    "            --attribute <key1=value1> [--attribute <key2=value2>] <proxyName>\n"
    "\n"
    "    example: {name} toxic update -n myToxic -a jitter=25 myProxy\n"
    "\n"
    "  toxic delete:\n"
    "    usage: {name} toxic delete --toxicName <toxicName> <proxyName>\n"
    "\n"
    "    example: {name} toxic delete -n myToxic myProxy";

FlagDef help_flag() {
  return {{{"help"}, FlagKind::kBool}, "--help\tshow help (default: false)"};
}

FlagDef toxic_name_flag() {
  return {{{"toxicName", "n"}, FlagKind::kString}, "--toxicName value, -n value\tname of the toxic"};
}

FlagDef toxicity_flag() {
  return {
      {{"toxicity", "tox"}, FlagKind::kString},
      "--toxicity value, --tox value\ttoxicity of toxic should be a float between 0 and 1 (default: 1.0)"};
}

FlagDef attribute_flag() {
  return {{{"attribute", "a"}, FlagKind::kStringSlice},
          "--attribute value, -a value\ttoxic attribute in key=value format"};
}

CommandDef help_command() {
  CommandDef c;
  c.names = {"help", "h"};
  c.usage = "Shows a list of commands or help for one command";
  c.args_usage = "[command]";
  c.action = Action::kHelp;
  return c;
}

CommandSet build() {
  CommandSet set;
  set.global_flags = {
      {{{"host", "h"}, FlagKind::kString},
       "--host value, -h value\ttoxiproxy host to connect to (default: \"http://localhost:8474\") "
       "[$TOXIPROXY_URL]"},
      help_flag(),
      {{{"version", "v"}, FlagKind::kBool}, "--version, -v\tprint the version (default: false)"},
  };

  CommandDef list;
  list.names = {"list", "l", "li", "ls"};
  list.usage = "list all proxies\n\tusage: '{name} list'\n";
  list.flags = {help_flag()};
  list.action = Action::kList;

  CommandDef inspect;
  inspect.names = {"inspect", "i", "ins"};
  inspect.usage = "inspect a single proxy\n\tusage: '{name} inspect <proxyName>'\n";
  inspect.flags = {help_flag()};
  inspect.action = Action::kInspect;

  CommandDef create;
  create.names = {"create", "c", "new"};
  create.usage =
      "create a new proxy\n\tusage: '{name} create --listen <addr> --upstream <addr> <proxyName>'\n";
  create.flags = {
      {{{"listen", "l"}, FlagKind::kString}, "--listen value, -l value\tproxy will listen on this address"},
      {{{"upstream", "u"}, FlagKind::kString},
       "--upstream value, -u value\tproxy will forward to this address"},
      help_flag(),
  };
  create.action = Action::kCreate;

  CommandDef toggle;
  toggle.names = {"toggle", "tog"};
  toggle.usage = "\ttoggle enabled status on a proxy\n\t\tusage: '{name} toggle <proxyName>'\n";
  toggle.flags = {help_flag()};
  toggle.action = Action::kToggle;

  CommandDef del;
  del.names = {"delete", "d"};
  del.usage = "\tdelete a proxy\n\t\tusage: '{name} delete <proxyName>'\n";
  del.flags = {help_flag()};
  del.action = Action::kDelete;

  CommandDef add;
  add.names = {"add", "a"};
  add.usage = "add a new toxic";
  add.args_usage = "<proxyName>";
  add.flags = {
      toxic_name_flag(),
      {{{"type", "t"}, FlagKind::kString}, "--type value, -t value\ttype of toxic"},
      toxicity_flag(),
      attribute_flag(),
      {{{"upstream", "u"}, FlagKind::kBool}, "--upstream, -u\tadd toxic to upstream (default: false)"},
      {{{"downstream", "d"}, FlagKind::kBool}, "--downstream, -d\tadd toxic to downstream (default: true)"},
      help_flag(),
  };
  add.action = Action::kToxicAdd;

  CommandDef update;
  update.names = {"update", "u"};
  update.usage = "update an enabled toxic";
  update.args_usage = "<proxyName>";
  update.flags = {toxic_name_flag(), toxicity_flag(), attribute_flag(), help_flag()};
  update.action = Action::kToxicUpdate;

  CommandDef remove;
  remove.names = {"remove", "r", "delete", "d"};
  remove.usage = "remove an enabled toxic";
  remove.args_usage = "<proxyName>";
  remove.flags = {toxic_name_flag(), help_flag()};
  remove.action = Action::kToxicRemove;

  CommandDef toxic;
  toxic.names = {"toxic", "t"};
  toxic.usage = "\tadd, remove or update a toxic\n\t\tusage: see '{name} toxic'\n";
  toxic.description = std::string(kToxicDescription);
  toxic.flags = {help_flag()};
  toxic.subcommands = {add, update, remove, help_command()};
  toxic.action = Action::kToxic;

  set.commands = {list, inspect, create, toggle, del, toxic, help_command()};
  return set;
}

std::string with_name(std::string_view text, std::string_view program) {
  std::string out;
  constexpr std::string_view kPlaceholder = "{name}";
  std::size_t pos = 0;
  while (true) {
    const auto at = text.find(kPlaceholder, pos);
    out.append(text.substr(pos, at - pos));
    if (at == std::string_view::npos) break;
    out.append(program);
    pos = at + kPlaceholder.size();
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.append(sep);
    out += parts[i];
  }
  return out;
}

// urfave/cli's `{{wrap .Description 3}}`-style indentation of continuation lines.
std::string indent_description(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += "   ";
  }
  return out;
}

}  // namespace

const CommandSet& command_set() {
  static const CommandSet set = build();
  return set;
}

const CommandDef* find_command(const std::vector<CommandDef>& commands, std::string_view name) {
  for (const auto& c : commands) {
    for (const auto& n : c.names) {
      if (n == name) return &c;
    }
  }
  return nullptr;
}

std::vector<FlagSpec> specs_of(const std::vector<FlagDef>& flags) {
  std::vector<FlagSpec> specs;
  specs.reserve(flags.size());
  for (const auto& f : flags)
    specs.push_back(f.spec);
  return specs;
}

std::string app_help(std::string_view program) {
  const CommandSet& set = command_set();
  std::string t;
  t += "NAME:\n   ";
  t += program;
  t += " - Simulate network and system conditions\n\nUSAGE:\n   ";
  t += program;
  t += " [global options] command [command options] [arguments...]\n\nVERSION:\n   ";
  t += kCliVersion;
  t += "\n\nCOMMANDS:";
  for (const auto& c : set.commands)
    t += "\n   " + join(c.names, ", ") + "\t" + with_name(c.usage, program);
  t += "\n\nGLOBAL OPTIONS:\n   ";
  for (std::size_t i = 0; i < set.global_flags.size(); ++i) {
    if (i > 0) t += "\n   ";
    t += set.global_flags[i].help;
  }
  t += "\n";
  return go::tabwrite(t);
}

std::string command_help(std::string_view program, const CommandDef& cmd,
                         const std::vector<std::string>& parents) {
  std::string help_name(program);
  for (const auto& p : parents)
    help_name += " " + p;
  help_name += " " + cmd.names.front();

  std::string t =
      "NAME:\n   " + help_name + " - " + with_name(cmd.usage, program) + "\n\nUSAGE:\n   " + help_name;
  const bool has_subcommands = !cmd.subcommands.empty();
  if (has_subcommands) t += " command";
  if (!cmd.flags.empty()) t += " [command options]";
  t += " " + (cmd.args_usage.empty() ? std::string("[arguments...]") : cmd.args_usage);
  if (!cmd.description.empty())
    t += "\n\nDESCRIPTION:\n   " + indent_description(with_name(cmd.description, program));
  if (has_subcommands) {
    t += "\n\nCOMMANDS:";
    for (const auto& s : cmd.subcommands)
      t += "\n   " + join(s.names, ", ") + "\t" + with_name(s.usage, program);
  }
  if (!cmd.flags.empty()) {
    t += "\n\nOPTIONS:\n   ";
    for (const auto& f : cmd.flags)
      t += f.help + "\n   ";
  }
  t += "\n";
  return go::tabwrite(t);
}

}  // namespace faultproxy::cli
