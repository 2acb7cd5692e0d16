// Fuzz target: faultproxy's -config file (and POST /populate's body), loaded as main() loads it:
// parse_populate, then ProxyCollection::populate on an empty collection (in a private network
// namespace, since populate binds every listen address).
//
// Checked, besides memory safety and UB: on success every entry exists as configured (name,
// upstream, enabled with a listener, toxics in order); on failure nothing exists; what GET /proxies
// would show, written back as a config file, parses to the same proxies and toxics.
#include <boost/json.hpp>

#include "common/log.h"
#include "faultproxy/api.h"
#include "faultproxy/go/json.h"
#include "support/fuzz_support.h"

namespace {

using fuzz_support::check;
using namespace faultproxy;
using Entries = std::vector<ProxyCollection::PopulateEntry>;

bool same_toxic(const ToxicDef& a, const ToxicDef& b) {
  return a.name == b.name && a.type == b.type && a.stream == b.stream && a.direction == b.direction &&
         a.toxicity == b.toxicity && a.attributes == b.attributes && a.client.text == b.client.text &&
         a.client.cidr == b.client.cidr && a.start_after_ms == b.start_after_ms &&
         a.duration_ms == b.duration_ms;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common::log::set_level(common::log::Level::off);
  fuzz_support::isolate_network();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_populate(text);
  if (auto* e = std::get_if<ApiError>(&parsed)) {
    // 400, or 409 for two toxics of one proxy with the same name (as POST .../toxics answers).
    check((e->status == 400 || e->status == 409) && !e->message.empty(), "a config parse error's status",
          std::to_string(e->status) + " " + e->message);
    return 0;
  }
  const Entries entries = std::get<Entries>(parsed);

  Workers workers(1);
  ProxyCollection proxies(workers, {.seed = 1});
  std::vector<std::string> names;
  const auto err = proxies.populate(std::get<Entries>(parsed), names);
  workers.control().poll();
  if (err) {
    check(proxies.proxies().empty(), "a failed populate left proxies behind", err->message);
    return 0;
  }
  check(names.size() == entries.size(), "populate names one proxy per entry");
  check(proxies.proxies().size() == entries.size(), "populate created a proxy per entry");

  std::string rendered = "[";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const Proxy* p = proxies.find(e.config.name);
    check(p && names[i] == e.config.name, "an entry's proxy is missing", e.config.name);
    check(
        p->upstream == e.config.upstream && p->enabled == e.enabled && (p->listener != nullptr) == e.enabled,
        "a proxy differs from its entry", e.config.name);
    // Every toxic of the entry, in order, but those whose time window (duration_ms) may have
    // ended while the control context ran: those remove themselves.
    const auto& want = e.toxics ? *e.toxics : std::vector<ToxicDef>{};
    std::size_t have = 0;
    for (const ToxicDef& w : want) {
      if (have < p->toxics.size() && p->toxics[have].name == w.name) {
        check(same_toxic(p->toxics[have], w), "a toxic differs from its entry", w.name);
        ++have;
      } else {
        check(w.duration_ms > 0, "a toxic of the entry is missing", w.name);
      }
    }
    check(have == p->toxics.size(), "a proxy has toxics its entry does not", e.config.name);
    const std::string json = proxy_json(*p);
    boost::system::error_code ec;
    boost::json::parse(json, ec);
    check(!ec && faultproxy::go::json::parse_first(json).ok(), "proxy_json is not valid JSON", json);
    if (i) rendered += ',';
    rendered += json;
  }
  rendered += ']';

  // GET /proxies' shapes, read back as a config file.
  auto reparsed = parse_populate(rendered);
  check(std::holds_alternative<Entries>(reparsed), "rendered proxies do not parse as a config", rendered);
  const auto& back = std::get<Entries>(reparsed);
  check(back.size() == entries.size(), "rendered proxies: count", rendered);
  for (std::size_t i = 0; i < back.size(); ++i) {
    const Proxy* p = proxies.find(back[i].config.name);
    check(p && back[i].config.upstream == p->upstream && back[i].config.listen == p->listen &&
              back[i].enabled == p->enabled && back[i].toxics && back[i].toxics->size() == p->toxics.size(),
          "rendered proxy does not read back", rendered);
    const auto ordered = p->ordered_toxics();
    for (std::size_t k = 0; k < ordered.size(); ++k)
      check(same_toxic((*back[i].toxics)[k], *ordered[k]), "rendered toxic does not read back", rendered);
  }
  proxies.stop_all();
  workers.control().poll();
  return 0;
}
