#include "faultproxy/cli/commands.h"

#include <gtest/gtest.h>

namespace faultproxy::cli {
namespace {

// toxiproxy-cli 2.12's help texts, from the API transcript (section 26).
// clang-format off
const char* const kAppHelp = R"~(NAME:
   toxiproxy-cli - Simulate network and system conditions

USAGE:
   toxiproxy-cli [global options] command [command options] [arguments...]

VERSION:
   2.12.0

COMMANDS:
   list, l, li, ls  list all proxies
                    usage: 'toxiproxy-cli list'

   inspect, i, ins  inspect a single proxy
                    usage: 'toxiproxy-cli inspect <proxyName>'

   create, c, new  create a new proxy
                   usage: 'toxiproxy-cli create --listen <addr> --upstream <addr> <proxyName>'

   toggle, tog    toggle enabled status on a proxy
                  usage: 'toxiproxy-cli toggle <proxyName>'

   delete, d    delete a proxy
                usage: 'toxiproxy-cli delete <proxyName>'

   toxic, t    add, remove or update a toxic
               usage: see 'toxiproxy-cli toxic'

   help, h  Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --host value, -h value  toxiproxy host to connect to (default: "http://localhost:8474") [$TOXIPROXY_URL]
   --help                  show help (default: false)
   --version, -v           print the version (default: false)
)~";

const char* const kToxicHelp = R"~(NAME:
   toxiproxy-cli toxic -   add, remove or update a toxic
                             usage: see 'toxiproxy-cli toxic'


USAGE:
   toxiproxy-cli toxic command [command options] [arguments...]

DESCRIPTION:
   Default Toxics:
     latency:    delay all data +/- jitter
                 latency=<ms>,jitter=<ms>
   
     bandwidth:  limit to max kb/s
                 rate=<KB/s>
   
     slow_close: delay from closing
                 delay=<ms>
   
     timeout:    stop all data and close after timeout
                 timeout=<ms>
   
     reset_peer: simulate TCP RESET (Connection reset by peer) on the connections by closing
                 the stub Input immediately or after a timeout
                 timeout=<ms>
   
     slicer:     slice data into bits with optional delay
                 average_size=<bytes>,size_variation=<bytes>,delay=<microseconds>
   
     toxic add:
       usage: toxiproxy-cli toxic add --type <toxicType> [--downstream|--upstream] \
               --toxicName <toxicName> [--toxicity <float>] \
               --attribute <key=value> [--attribute <key2=value2>] <proxyName>
   
   
       example: toxiproxy-cli toxic add -t latency -n myToxic -a latency=100 -a jitter=50 myProxy
   
     toxic update:
       usage: toxiproxy-cli toxic update --toxicName <toxicName> [--toxicity <float>] \
               --attribute <key1=value1> [--attribute <key2=value2>] <proxyName>
   
       example: toxiproxy-cli toxic update -n myToxic -a jitter=25 myProxy
   
     toxic delete:
       usage: toxiproxy-cli toxic delete --toxicName <toxicName> <proxyName>
   
       example: toxiproxy-cli toxic delete -n myToxic myProxy

COMMANDS:
   add, a                add a new toxic
   update, u             update an enabled toxic
   remove, r, delete, d  remove an enabled toxic
   help, h               Shows a list of commands or help for one command

OPTIONS:
   --help  show help (default: false)
   
)~";

const char* const kToxicAddHelp = R"~(NAME:
   toxiproxy-cli toxic add - add a new toxic

USAGE:
   toxiproxy-cli toxic add [command options] <proxyName>

OPTIONS:
   --toxicName value, -n value    name of the toxic
   --type value, -t value         type of toxic
   --toxicity value, --tox value  toxicity of toxic should be a float between 0 and 1 (default: 1.0)
   --attribute value, -a value    toxic attribute in key=value format
   --upstream, -u                 add toxic to upstream (default: false)
   --downstream, -d               add toxic to downstream (default: true)
   --help                         show help (default: false)
   
)~";

const char* const kCreateHelp = R"~(NAME:
   toxiproxy-cli create - create a new proxy
  usage: 'toxiproxy-cli create --listen <addr> --upstream <addr> <proxyName>'


USAGE:
   toxiproxy-cli create [command options] [arguments...]

OPTIONS:
   --listen value, -l value    proxy will listen on this address
   --upstream value, -u value  proxy will forward to this address
   --help                      show help (default: false)
   
)~";
// clang-format on

TEST(Help, TextsAreToxiproxyClis) {
  EXPECT_EQ(app_help("toxiproxy-cli"), kAppHelp);
  const auto& commands = command_set().commands;
  const CommandDef* toxic = find_command(commands, "toxic");
  ASSERT_NE(toxic, nullptr);
  EXPECT_EQ(command_help("toxiproxy-cli", *toxic, {}), kToxicHelp);
  EXPECT_EQ(command_help("toxiproxy-cli", *find_command(toxic->subcommands, "add"), {"toxic"}),
            kToxicAddHelp);
  EXPECT_EQ(command_help("toxiproxy-cli", *find_command(commands, "create"), {}), kCreateHelp);
}

TEST(Help, UnrecordedTextsFollowTheSameTemplates) {
  const auto& commands = command_set().commands;
  EXPECT_EQ(command_help("toxiproxy-cli", *find_command(commands, "delete"), {}),
            "NAME:\n"
            "   toxiproxy-cli delete -   delete a proxy\n"
            "                              usage: 'toxiproxy-cli delete <proxyName>'\n"
            "\n\n"
            "USAGE:\n"
            "   toxiproxy-cli delete [command options] [arguments...]\n"
            "\n"
            "OPTIONS:\n"
            "   --help  show help (default: false)\n"
            "   \n");
  const CommandDef* remove = find_command(find_command(commands, "t")->subcommands, "d");
  ASSERT_NE(remove, nullptr);
  EXPECT_EQ(command_help("toxiproxy-cli", *remove, {"toxic"}),
            "NAME:\n"
            "   toxiproxy-cli toxic remove - remove an enabled toxic\n"
            "\n"
            "USAGE:\n"
            "   toxiproxy-cli toxic remove [command options] <proxyName>\n"
            "\n"
            "OPTIONS:\n"
            "   --toxicName value, -n value  name of the toxic\n"
            "   --help                       show help (default: false)\n"
            "   \n");
}

TEST(Help, UsesTheProgramName) {
  const std::string help = app_help("faultproxy-cli");
  EXPECT_EQ(help.find("toxiproxy-cli"), std::string::npos);
  EXPECT_NE(help.find("   faultproxy-cli - Simulate network and system conditions\n"), std::string::npos);
  EXPECT_NE(help.find("usage: 'faultproxy-cli list'"), std::string::npos);
  const std::string toxic =
      command_help("faultproxy-cli", *find_command(command_set().commands, "toxic"), {});
  EXPECT_EQ(toxic.find("toxiproxy-cli"), std::string::npos);
  EXPECT_NE(toxic.find("example: faultproxy-cli toxic add -t latency"), std::string::npos);
}

TEST(Commands, NamesAndAliases) {
  const auto& commands = command_set().commands;
  for (const char* alias : {"list", "l", "li", "ls"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kList);
  for (const char* alias : {"inspect", "i", "ins"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kInspect);
  for (const char* alias : {"create", "c", "new"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kCreate);
  for (const char* alias : {"toggle", "tog"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kToggle);
  for (const char* alias : {"delete", "d"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kDelete);
  for (const char* alias : {"toxic", "t"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kToxic);
  for (const char* alias : {"help", "h"})
    EXPECT_EQ(find_command(commands, alias)->action, Action::kHelp);
  EXPECT_EQ(find_command(commands, "remove"), nullptr);
  const auto& subs = find_command(commands, "toxic")->subcommands;
  for (const char* alias : {"add", "a"})
    EXPECT_EQ(find_command(subs, alias)->action, Action::kToxicAdd);
  for (const char* alias : {"update", "u"})
    EXPECT_EQ(find_command(subs, alias)->action, Action::kToxicUpdate);
  for (const char* alias : {"remove", "r", "delete", "d"}) {
    EXPECT_EQ(find_command(subs, alias)->action, Action::kToxicRemove);
  }
}

}  // namespace
}  // namespace faultproxy::cli
