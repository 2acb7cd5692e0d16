#include "faultproxy/cli/cli.h"

#include "faultproxy/cli/commands.h"
#include "faultproxy/cli/render.h"
#include "faultproxy/cli/toxiproxy_client.h"
#include "faultproxy/go/strconv.h"

namespace faultproxy::cli {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUnknownCommand = 3;

class Runner {
 public:
  Runner(std::string_view program, CliIo io, const TransportFactory& transports)
      : program_(program), io_(io), transports_(transports) {}

  int run(const std::vector<std::string>& args, const CliEnvironment& env) {
    const CommandSet& set = command_set();
    ParsedFlags global = parse_flags(args, specs_of(set.global_flags));
    if (!global.error.empty()) {
      io_.err << "Incorrect Usage. " << global.error << "\n\n";
      io_.out << app_help(program_);
      return kExitError;
    }
    if (global.help_requested || global.flag("help")) return show(app_help(program_));
    if (global.flag("version"))
      return show(std::string(program_) + " version " + std::string(kCliVersion) + "\n");

    if (auto it = global.strings.find("host"); it != global.strings.end()) {
      host_ = it->second;
    } else if (env.toxiproxy_url && !env.toxiproxy_url->empty()) {
      host_ = *env.toxiproxy_url;
    } else {
      host_ = std::string(kDefaultHost);
    }

    if (global.args.empty()) return show(app_help(program_));
    return dispatch(set.commands, global.args, {});
  }

 private:
  int show(const std::string& text) {
    io_.out << text;
    return 0;
  }

  int unknown(const std::string& name) {
    io_.err << "No help topic for '" << name << "'\n";
    return kExitUnknownCommand;
  }

  // toxiproxy-cli's errorf: the message (which may end in "\n") then a newline, exit 1.
  int fail(const std::string& message) {
    io_.err << message << "\n";
    return kExitError;
  }

  // cli.ShowSubcommandHelp followed by errorf.
  int fail_with_help(const CommandDef& cmd, const std::vector<std::string>& parents,
                     const std::string& message) {
    io_.out << command_help(program_, cmd, parents);
    return fail(message);
  }

  // `help [command]` at the top level or under `toxic`.
  int help(const std::vector<CommandDef>& siblings, const std::vector<std::string>& args,
           const std::vector<std::string>& parents, const CommandDef* parent) {
    if (args.empty())
      return show(parent == nullptr ? app_help(program_) : command_help(program_, *parent, {}));
    const CommandDef* target = find_command(siblings, args.front());
    if (target == nullptr) return unknown(args.front());
    return show(command_help(program_, *target, parents));
  }

  int dispatch(const std::vector<CommandDef>& commands, const std::vector<std::string>& args,
               const std::vector<std::string>& parents, const CommandDef* parent = nullptr) {
    const CommandDef* cmd = find_command(commands, args.front());
    if (cmd == nullptr) return unknown(args.front());
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd->action == Action::kHelp) return help(commands, rest, parents, parent);

    ParsedFlags flags = parse_flags(rest, specs_of(cmd->flags));
    if (!flags.error.empty()) {
      io_.err << "Incorrect Usage: " << flags.error << "\n\n";
      io_.out << command_help(program_, *cmd, parents);
      return kExitError;
    }
    if (flags.help_requested || flags.flag("help")) return show(command_help(program_, *cmd, parents));

    if (cmd->action == Action::kToxic) {
      if (flags.args.empty()) return show(command_help(program_, *cmd, parents));
      std::vector<std::string> sub_parents = parents;
      sub_parents.push_back(cmd->names.front());
      return dispatch(cmd->subcommands, flags.args, sub_parents, cmd);
    }
    return act(*cmd, parents, flags);
  }

  int act(const CommandDef& cmd, const std::vector<std::string>& parents, const ParsedFlags& flags) {
    const std::string first = flags.args.empty() ? std::string() : flags.args.front();
    auto transport = transports_(host_);
    ToxiproxyClient client(*transport);

    switch (cmd.action) {
      case Action::kList: {
        auto proxies = client.proxies();
        if (!proxies.ok()) return fail("Failed to retrieve proxies: " + proxies.error);
        return show(render_list(*proxies.value, io_.tty, program_));
      }
      case Action::kInspect: {
        if (first.empty())
          return fail_with_help(cmd, parents, "Proxy name is required as the first argument.\n");
        auto proxy = client.proxy(first);
        if (!proxy.ok()) return fail("Failed to retrieve proxy " + first + ": " + proxy.error + "\n");
        return show(render_inspect(*proxy.value, io_.tty, program_));
      }
      case Action::kToggle: {
        if (first.empty())
          return fail_with_help(cmd, parents, "Proxy name is required as the first argument.\n");
        auto proxy = client.proxy(first);
        if (!proxy.ok()) return fail("Failed to retrieve proxy " + first + ": " + proxy.error + "\n");
        Proxy changed = *proxy.value;
        if (changed.name.empty()) changed.name = first;
        changed.enabled = !changed.enabled;
        auto saved = client.save_proxy(changed);
        if (!saved.ok()) return fail("Failed to toggle proxy " + first + ": " + saved.error + "\n");
        return show(render_toggle(first, saved.value->enabled, io_.tty));
      }
      case Action::kCreate: {
        if (first.empty())
          return fail_with_help(cmd, parents, "Proxy name is required as the first argument.\n");
        const std::string listen = flags.value("listen");
        if (listen.empty()) return fail_with_help(cmd, parents, "Required argument 'listen' was empty.\n");
        const std::string upstream = flags.value("upstream");
        if (upstream.empty())
          return fail_with_help(cmd, parents, "Required argument 'upstream' was empty.\n");
        auto created = client.create_proxy(first, listen, upstream);
        if (!created.ok()) return fail("Failed to create proxy: " + created.error + "\n");
        return show("Created new proxy " + first + "\n");
      }
      case Action::kDelete: {
        if (first.empty())
          return fail_with_help(cmd, parents, "Proxy name is required as the first argument.\n");
        auto proxy = client.proxy(first);
        if (!proxy.ok()) return fail("Failed to retrieve proxy " + first + ": " + proxy.error + "\n");
        auto deleted = client.delete_proxy(proxy.value->name.empty() ? first : proxy.value->name);
        if (!deleted.ok()) return fail("Failed to delete proxy: " + deleted.error + "\n");
        return show("Deleted proxy " + first + "\n");
      }
      case Action::kToxicAdd:
      case Action::kToxicUpdate:
      case Action::kToxicRemove:
        return toxic(cmd, parents, flags, client);
      case Action::kToxic:
      case Action::kHelp:
        break;
    }
    return show(command_help(program_, cmd, parents));
  }

  // toxiproxy-cli's parseToxicity: an optional --toxicity that must parse as a float32 within 0..1.
  std::optional<float> toxicity(const ParsedFlags& flags) {
    const std::string text = flags.value("toxicity");
    if (text.empty()) return 1.0f;
    auto tox = go::parse_float32(text);
    if (!tox || *tox > 1 || *tox < 0) return std::nullopt;
    return *tox;
  }

  int toxic(const CommandDef& cmd, const std::vector<std::string>& parents, const ParsedFlags& flags,
            ToxiproxyClient& client) {
    ToxicOptions options;
    options.proxy_name = flags.args.empty() ? std::string() : flags.args.front();
    if (options.proxy_name.empty()) return fail_with_help(cmd, parents, "Proxy name is missing.\n");
    options.toxic_name = flags.value("toxicName");

    if (cmd.action == Action::kToxicRemove) {
      auto removed = client.remove_toxic(options);
      if (!removed.ok()) return fail("Failed to remove toxic: " + removed.error + "\n");
      return show("Removed toxic '" + options.toxic_name + "' on proxy '" + options.proxy_name + "'\n");
    }

    if (cmd.action == Action::kToxicAdd) {
      options.type = flags.value("type");
      if (options.type.empty()) return fail_with_help(cmd, parents, "Required argument 'type' was empty.\n");
      const bool upstream = flags.flag("upstream");
      if (upstream && flags.flag("downstream")) {
        return fail("Only one should be specified: upstream or downstream.\n");
      }
      options.stream = upstream ? "upstream" : "downstream";
    }
    auto tox = toxicity(flags);
    if (!tox) return fail("toxicity should be a float between 0 and 1.\n");
    options.toxicity = *tox;
    std::vector<std::string> raw_attributes = flags.slice("attribute");
    options.fields = take_toxic_fields(raw_attributes);  // faultproxy's extension, not attributes
    options.attributes = parse_attributes(raw_attributes);

    if (cmd.action == Action::kToxicAdd) {
      auto added = client.add_toxic(options);
      if (!added.ok()) return fail("Failed to add toxic: " + added.error + "\n");
      return show("Added " + added.value->stream + " " + added.value->type + " toxic '" + added.value->name +
                  "' on proxy '" + options.proxy_name + "'\n");
    }
    auto updated = client.update_toxic(options);
    if (!updated.ok()) return fail("Failed to update toxic: " + updated.error + "\n");
    return show("Updated toxic '" + updated.value->name + "' on proxy '" + options.proxy_name + "'\n");
  }

  std::string_view program_;
  CliIo io_;
  const TransportFactory& transports_;
  std::string host_;
};

}  // namespace

int run_cli(std::string_view program, const std::vector<std::string>& args, const CliEnvironment& env,
            CliIo io, const TransportFactory& transports) {
  return Runner(program, io, transports).run(args, env);
}

}  // namespace faultproxy::cli
