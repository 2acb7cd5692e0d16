// toxiproxy-cli 2.12 recorded in ../shared/reference/toxiproxy-2.12-api-transcript.txt, sections 24
// (piped output) and 25 (under a TTY): each invocation in order, with its stdout, stderr and exit
// code. Both the unit test (cli_test.cpp, against an in-memory Toxiproxy) and the end-to-end test
// (cli_itest.cpp, against a real faultproxy) replay this sequence and compare byte for byte.
//
// Placeholders, replaced by expand(): {H} the API address, {ABC} {ECHO} {CLI} {CLI2} listen
// addresses of the proxies "a b/c", "echo", "cliproxy", "cliproxy2", {UP} their upstream, {DEAD} an
// address where nothing listens, {E} the ESC character of ANSI colour codes.
// Before the first case the server holds two proxies: "a b/c" ({ABC} -> {UP}) and "echo" ({ECHO} -> {UP}).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace faultproxy::cli::testdata {

struct TranscriptCase {
  std::vector<std::string> args;  // after the program name
  bool tty;                       // stdout is a terminal
  std::string out;
  std::string err;
  int code;
  bool env_url = false;  // -h is not given: TOXIPROXY_URL=http://{H} is set instead
};

inline std::string expand(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [key, value] : vars) {
    const std::string placeholder = "{" + key + "}";
    for (auto at = text.find(placeholder); at != std::string::npos;
         at = text.find(placeholder, at + value.size())) {
      text.replace(at, placeholder.size(), value);
    }
  }
  return text;
}

// clang-format off
inline const std::vector<TranscriptCase>& transcript_cases() {
  static const std::vector<TranscriptCase> cases = {
    {{"--version"}, false, R"~(toxiproxy-cli version 2.12.0
)~", "", 0},
    {{"-h", "{H}", "list"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
echo	{ECHO}	{UP}	enabled	0
)~", "", 0},
    {{"-h", "{H}", "create", "--listen", "{CLI}", "--upstream", "{UP}", "cliproxy"}, false, R"~(Created new proxy cliproxy
)~", "", 0},
    {{"-h", "{H}", "create", "--listen", "{CLI}", "--upstream", "{UP}", "cliproxy"}, false, "", R"~(Failed to create proxy: Create: HTTP 409: proxy already exists

)~", 1},
    {{"-h", "{H}", "create", "-l", "{CLI2}", "cliproxy2"}, false, R"~(NAME:
   toxiproxy-cli create - create a new proxy
  usage: 'toxiproxy-cli create --listen <addr> --upstream <addr> <proxyName>'


USAGE:
   toxiproxy-cli create [command options] [arguments...]

OPTIONS:
   --listen value, -l value    proxy will listen on this address
   --upstream value, -u value  proxy will forward to this address
   --help                      show help (default: false)
   
)~", R"~(Required argument 'upstream' was empty.

)~", 1},
    {{"-h", "{H}", "create", "--listen", "{CLI2}", "--upstream", "{UP}"}, false, R"~(NAME:
   toxiproxy-cli create - create a new proxy
  usage: 'toxiproxy-cli create --listen <addr> --upstream <addr> <proxyName>'


USAGE:
   toxiproxy-cli create [command options] [arguments...]

OPTIONS:
   --listen value, -l value    proxy will listen on this address
   --upstream value, -u value  proxy will forward to this address
   --help                      show help (default: false)
   
)~", R"~(Proxy name is required as the first argument.

)~", 1},
    {{"-h", "{H}", "list"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
cliproxy	{CLI}	{UP}	enabled	0
echo	{ECHO}	{UP}	enabled	0
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-a", "latency=100", "-a", "jitter=10", "cliproxy"}, false, R"~(Added downstream latency toxic 'latency_downstream' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "-t", "bandwidth", "-u", "-n", "bw", "-tox", "0.5", "-a", "rate=100", "cliproxy"}, false, R"~(Added upstream bandwidth toxic 'bw' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "cliproxy"}, false, "", R"~(Failed to add toxic: failed to add toxic to proxy cliproxy: AddToxic: HTTP 409: toxic already exists

)~", 1},
    {{"-h", "{H}", "toxic", "add", "-t", "nosuch", "cliproxy"}, false, "", R"~(Failed to add toxic: failed to add toxic to proxy cliproxy: AddToxic: HTTP 400: invalid toxic type

)~", 1},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-a", "latency=abc", "-n", "bad", "cliproxy"}, false, "", R"~(Failed to add toxic: failed to add toxic to proxy cliproxy: AddToxic: HTTP 400: bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64

)~", 1},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-tox", "2", "-n", "bad", "cliproxy"}, false, "", R"~(toxicity should be a float between 0 and 1.

)~", 1},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-n", "x", "nosuchproxy"}, false, "", R"~(Failed to add toxic: failed to retrieve proxy with name `nosuchproxy`: HTTP 404: proxy not found

)~", 1},
    {{"-h", "{H}", "inspect", "cliproxy"}, false, R"~(bw	type=bandwidth	stream=upstream	toxicity=0.50	attributes=[	rate=100	]
latency_downstream	type=latency	stream=downstream	toxicity=1.00	attributes=[	jitter=10	latency=100	]
)~", "", 0},
    {{"-h", "{H}", "list"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
cliproxy	{CLI}	{UP}	enabled	2
echo	{ECHO}	{UP}	enabled	0
)~", "", 0},
    {{"-h", "{H}", "toxic", "update", "-n", "latency_downstream", "-a", "jitter=20", "cliproxy"}, false, R"~(Updated toxic 'latency_downstream' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "update", "-n", "bw", "-tox", "0.1", "cliproxy"}, false, R"~(Updated toxic 'bw' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "update", "-n", "nosuch", "-a", "jitter=1", "cliproxy"}, false, "", R"~(Failed to update toxic: failed to update toxic 'nosuch' of proxy 'cliproxy': HTTP 404: toxic not found

)~", 1},
    {{"-h", "{H}", "toxic", "remove", "-n", "bw", "cliproxy"}, false, R"~(Removed toxic 'bw' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "delete", "-n", "bw", "cliproxy"}, false, "", R"~(Failed to remove toxic: failed to remove toxic 'bw' from proxy 'cliproxy': HTTP 404: toxic not found

)~", 1},
    {{"-h", "{H}", "toxic", "r", "-n", "latency_downstream", "cliproxy"}, false, R"~(Removed toxic 'latency_downstream' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toggle", "cliproxy"}, false, R"~(Proxy cliproxy is now disabled
)~", "", 0},
    {{"-h", "{H}", "inspect", "cliproxy"}, false, "", "", 0},
    {{"-h", "{H}", "list"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
cliproxy	{CLI}	{UP}	disabled	0
echo	{ECHO}	{UP}	enabled	0
)~", "", 0},
    {{"-h", "{H}", "toggle", "cliproxy"}, false, R"~(Proxy cliproxy is now enabled
)~", "", 0},
    {{"-h", "{H}", "inspect", "nosuch"}, false, "", R"~(Failed to retrieve proxy nosuch: HTTP 404: proxy not found

)~", 1},
    {{"-h", "{H}", "toggle", "nosuch"}, false, "", R"~(Failed to retrieve proxy nosuch: HTTP 404: proxy not found

)~", 1},
    {{"-h", "{H}", "delete", "nosuch"}, false, "", R"~(Failed to retrieve proxy nosuch: HTTP 404: proxy not found

)~", 1},
    {{"-h", "{H}", "inspect"}, false, R"~(NAME:
   toxiproxy-cli inspect - inspect a single proxy
  usage: 'toxiproxy-cli inspect <proxyName>'


USAGE:
   toxiproxy-cli inspect [command options] [arguments...]

OPTIONS:
   --help  show help (default: false)
   
)~", R"~(Proxy name is required as the first argument.

)~", 1},
    {{"-h", "{H}", "toxic"}, false, R"~(NAME:
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
   
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "cliproxy"}, false, R"~(NAME:
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
   
)~", R"~(Required argument 'type' was empty.

)~", 1},
    {{"-h", "{H}", "toxic", "add", "-t", "latency"}, false, R"~(NAME:
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
   
)~", R"~(Proxy name is missing.

)~", 1},
    {{"-h", "http://{H}", "ls"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
cliproxy	{CLI}	{UP}	enabled	0
echo	{ECHO}	{UP}	enabled	0
)~", "", 0},
    {{"-h", "{DEAD}", "list"}, false, "", R"~(Failed to retrieve proxies: fail to request: Get "http://{DEAD}/proxies": dial tcp {DEAD}: connect: connection refused
)~", 1},
    {{"list"}, false, R"~(a b/c	{ABC}	{UP}	enabled	0
cliproxy	{CLI}	{UP}	enabled	0
echo	{ECHO}	{UP}	enabled	0
)~", "", 0, true},
    {{"-h", "{H}", "nosuchcommand"}, false, "", R"~(No help topic for 'nosuchcommand'
)~", 3},
    {{"-h", "{H}", "list"}, true, R"~({E}[32mName			{E}[34mListen		{E}[33mUpstream		{E}[35mEnabled		{E}[31mToxics
{E}[0m{E}[0m======================================================================================
{E}[32ma b/c{E}[0m			{E}[34m{ABC}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m
{E}[32mcliproxy{E}[0m		{E}[34m{CLI}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m
{E}[32mecho{E}[0m			{E}[34m{ECHO}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m

{E}[0mHint: inspect toxics with `toxiproxy-cli inspect <proxyName>`
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-a", "latency=100", "cliproxy"}, true, R"~(Added downstream latency toxic 'latency_downstream' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "toxic", "add", "-t", "latency", "-u", "-a", "latency=5", "-n", "lat_up", "cliproxy"}, true, R"~(Added upstream latency toxic 'lat_up' on proxy 'cliproxy'
)~", "", 0},
    {{"-h", "{H}", "list"}, true, R"~({E}[32mName			{E}[34mListen		{E}[33mUpstream		{E}[35mEnabled		{E}[31mToxics
{E}[0m{E}[0m======================================================================================
{E}[32ma b/c{E}[0m			{E}[34m{ABC}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m
{E}[32mcliproxy{E}[0m		{E}[34m{CLI}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31m2{E}[0m
{E}[32mecho{E}[0m			{E}[34m{ECHO}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m

{E}[0mHint: inspect toxics with `toxiproxy-cli inspect <proxyName>`
)~", "", 0},
    {{"-h", "{H}", "inspect", "cliproxy"}, true, R"~({E}[35mName: {E}[0mcliproxy	{E}[34mListen: {E}[0m{CLI}	{E}[33mUpstream: {E}[0m{UP}
{E}[0m======================================================================
{E}[32mUpstream toxics:
{E}[0m{E}[34mlat_up:{E}[0m	type=latency	stream=upstream	toxicity=1.00	attributes=[	jitter=0	latency=5	]

{E}[32mDownstream toxics:
{E}[0m{E}[34mlatency_downstream:{E}[0m	type=latency	stream=downstream	toxicity=1.00	attributes=[	jitter=0	latency=100	]

{E}[0mHint: add a toxic with `toxiproxy-cli toxic add`
)~", "", 0},
    {{"-h", "{H}", "toggle", "cliproxy"}, true, R"~(Proxy {E}[31mcliproxy{E}[0m is now {E}[31mdisabled{E}[0m
)~", "", 0},
    {{"-h", "{H}", "toggle", "cliproxy"}, true, R"~(Proxy {E}[32mcliproxy{E}[0m is now {E}[32menabled{E}[0m
)~", "", 0},
    {{"-h", "{H}", "delete", "cliproxy"}, true, R"~(Deleted proxy cliproxy
)~", "", 0},
    {{"-h", "{H}", "list"}, true, R"~({E}[32mName			{E}[34mListen		{E}[33mUpstream		{E}[35mEnabled		{E}[31mToxics
{E}[0m{E}[0m======================================================================================
{E}[32ma b/c{E}[0m			{E}[34m{ABC}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m
{E}[32mecho{E}[0m			{E}[34m{ECHO}{E}[0m	{E}[33m{UP}{E}[0m		{E}[35menabled{E}[0m		{E}[31mNone{E}[0m

{E}[0mHint: inspect toxics with `toxiproxy-cli inspect <proxyName>`
)~", "", 0},
    {{"-h", "{H}", "inspect", "nosuch"}, true, "", R"~(Failed to retrieve proxy nosuch: HTTP 404: proxy not found

)~", 1},
  };
  return cases;
}
// clang-format on

}  // namespace faultproxy::cli::testdata
