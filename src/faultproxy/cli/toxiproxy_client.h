// The Toxiproxy API as toxiproxy-cli's Go client (github.com/Shopify/toxiproxy/v2/client) uses it:
// the same requests, the same JSON bodies (key order, number formatting), and the same error texts,
// which the CLI prints verbatim ("failed to add toxic to proxy p: AddToxic: HTTP 409: toxic already
// exists"). Where the Go client would fail obscurely, this one says what happened instead:
//   - a non-JSON error body (a 404 for an unknown path) becomes "HTTP 404: 404 page not found";
//   - names are percent-encoded in paths (Go cuts a name at '?' or '#' and rejects '%').
//
// Usage:
//   HttpClient http(normalize_endpoint("127.0.0.1:8474"), {});
//   ToxiproxyClient client(http);
//   Result<ProxyMap> all = client.proxies();
//   if (!all.ok()) std::cerr << all.error;
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "faultproxy/cli/http_client.h"
#include "faultproxy/go/json.h"

namespace faultproxy::cli {

template <typename T>
struct Result {
  std::optional<T> value;
  std::string error;
  bool ok() const { return value.has_value(); }
  static Result failure(std::string e) { return Result{std::nullopt, std::move(e)}; }
};

struct Done {};

struct Toxic {
  std::string name;
  std::string type;
  std::string stream;
  float toxicity = 0;                                 // Go's client keeps it as float32
  std::map<std::string, go::json::Value> attributes;  // sorted, as the CLI prints them
  // faultproxy's toxic-level fields; "" and 0 when absent.
  std::string client_cidr{};
  double start_after_ms = 0, duration_ms = 0;
};

struct Proxy {
  std::string name;
  std::string listen;
  std::string upstream;
  bool enabled = false;
  std::vector<Toxic> toxics;
};

using ProxyMap = std::map<std::string, Proxy>;  // sorted by name, as `list` prints them

// An attribute from `-a key=value`: a number when Go's ParseFloat accepts the value, else a string.
using AttributeValue = std::variant<double, std::string>;
using Attributes = std::map<std::string, AttributeValue>;

// "-a latency=100" -> {"latency": 100.0}; an entry without '=' is ignored; the last of a key wins.
Attributes parse_attributes(const std::vector<std::string>& raw);

// faultproxy's toxic-level fields, given as attributes so that the flags and help texts stay
// toxiproxy-cli's: `-a client_cidr=127.0.1.0/24` ("" clears the filter on update),
// `-a start_after_ms=1000`, `-a duration_ms=3000`. Sent beside the attributes; unset: not sent.
struct ToxicFields {
  std::optional<std::string> client_cidr{};
  std::optional<AttributeValue> start_after_ms{}, duration_ms{};  // numbers when Go's ParseFloat takes them
};
// Takes those entries out of `raw` (the last of a key wins).
ToxicFields take_toxic_fields(std::vector<std::string>& raw);

struct ToxicOptions {
  std::string proxy_name;
  std::string toxic_name;
  std::string type;
  std::string stream;
  float toxicity = 1;
  Attributes attributes;
  ToxicFields fields{};  // faultproxy's toxic-level fields
};

// JSON decoding of the server's answers into Go's client structs (exposed for tests).
Result<Proxy> decode_proxy(const go::json::Value& v);
Result<Toxic> decode_toxic(const go::json::Value& v);

// Request bodies exactly as Go's json.Marshal writes them; an error for NaN/Inf numbers
// ("json: unsupported value: NaN").
Result<std::string> encode_new_proxy(const std::string& name, const std::string& listen,
                                     const std::string& upstream);
Result<std::string> encode_proxy(const Proxy& proxy);
Result<std::string> encode_add_toxic(const ToxicOptions& options);
// The fields set in `fields` are appended after the attributes (faultproxy's extension); without
// them the bodies are toxiproxy-cli's to the byte.
Result<std::string> encode_update_toxic(float toxicity, const Attributes& attributes,
                                        const ToxicFields& fields = {});
// `,"client_cidr":...,"start_after_ms":...,"duration_ms":...` for the fields set, "" for none.
Result<std::string> encode_toxic_fields(const ToxicFields& fields);

// "/proxies/" + name with everything outside RFC 3986's pchar set percent-encoded.
std::string proxy_path(std::string_view name);

class ToxiproxyClient {
 public:
  explicit ToxiproxyClient(Transport& transport) : transport_(transport) {}

  Result<ProxyMap> proxies();
  Result<Proxy> proxy(const std::string& name);
  Result<Proxy> create_proxy(const std::string& name, const std::string& listen, const std::string& upstream);
  // POST /proxies/{name} with the whole proxy (Go's Proxy.Save on an existing proxy); returns the
  // proxy as the server now has it.
  Result<Proxy> save_proxy(const Proxy& proxy);
  Result<Done> delete_proxy(const std::string& name);
  Result<Toxic> add_toxic(const ToxicOptions& options);
  Result<Toxic> update_toxic(const ToxicOptions& options);
  Result<Done> remove_toxic(const ToxicOptions& options);

 private:
  // The body of a 2xx answer, or Go's error text: "fail to request: ..." or "HTTP 404: proxy not found".
  Result<std::string> call(std::string_view method, const std::string& path,
                           const std::optional<std::string>& body);

  Transport& transport_;
};

}  // namespace faultproxy::cli
