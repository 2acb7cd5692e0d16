#include "faultproxy/cli/render.h"

#include <cstdio>

#include "faultproxy/go/strconv.h"

namespace faultproxy::cli {
namespace {

std::string_view color(bool tty, std::string_view code) {
  return tty ? code : std::string_view();
}

std::string_view color_enabled(bool tty, bool enabled) {
  return color(tty, enabled ? ansi::kGreen : ansi::kRed);
}

std::string_view enabled_text(bool enabled) {
  return enabled ? "enabled" : "disabled";
}

// toxiproxy-cli's printWidth: the value, a tab, and on a TTY enough extra tabs to line columns up.
void print_width(std::string& out, bool tty, std::string_view col, std::string_view value, int num_tabs) {
  if (tty) {
    num_tabs -= static_cast<int>(value.size()) / 8 + 1;
    if (num_tabs < 0) num_tabs = 0;
  } else {
    num_tabs = 0;
  }
  out += color(tty, col);
  out += value;
  out += color(tty, ansi::kNone);
  out += '\t';
  out.append(static_cast<std::size_t>(num_tabs), '\t');
}

void hint(std::string& out, bool tty, std::string_view message) {
  if (!tty) return;
  out += "\n";
  out += ansi::kNone;
  out += "Hint: ";
  out += message;
  out += "\n";
}

std::string format_toxicity(float toxicity) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(toxicity));
  return buf;
}

void list_toxics(std::string& out, bool tty, const std::vector<const Toxic*>& toxics,
                 std::string_view stream) {
  if (tty) {
    out += color(tty, ansi::kGreen);
    out += stream;
    out += " toxics:\n";
    out += color(tty, ansi::kNone);
    if (toxics.empty()) {
      out += color(tty, ansi::kRed);
      out += "Proxy has no ";
      out += stream;
      out += " toxics enabled.\n";
      out += color(tty, ansi::kNone);
      return;
    }
  }
  for (const Toxic* t : toxics) {
    if (tty) {
      out += color(tty, ansi::kBlue);
      out += t->name + ":";
      out += color(tty, ansi::kNone);
      out += '\t';
    } else {
      out += t->name + "\t";
    }
    out += "type=" + t->type + "\t";
    out += "stream=" + t->stream + "\t";
    out += "toxicity=" + format_toxicity(t->toxicity) + "\t";
    // faultproxy's toxic-level fields, where set
    if (!t->client_cidr.empty()) out += "client_cidr=" + t->client_cidr + "\t";
    if (t->start_after_ms != 0) out += "start_after_ms=" + go::format_float_v(t->start_after_ms) + "\t";
    if (t->duration_ms != 0) out += "duration_ms=" + go::format_float_v(t->duration_ms) + "\t";
    out += "attributes=[";
    for (const auto& [key, value] : t->attributes)
      out += "\t" + key + "=" + format_attribute(value);
    out += "\t]\n";
  }
}

}  // namespace

std::string format_attribute(const go::json::Value& v) {
  using Kind = go::json::Value::Kind;
  switch (v.kind) {
    case Kind::number:
      return go::format_float_v(go::parse_float64(v.text).value_or(0));
    case Kind::string:
      return v.text;
    case Kind::boolean:
      return v.boolean ? "true" : "false";
    case Kind::null:
      return "<nil>";
    case Kind::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v.items) {
        if (!first) out += ' ';
        first = false;
        out += format_attribute(e);
      }
      return out + "]";
    }
    case Kind::object: {
      std::map<std::string, const go::json::Value*> sorted;  // a Go map: the last of a key, keys sorted
      for (const auto& [key, value] : v.members)
        sorted[key] = &value;
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, e] : sorted) {
        if (!first) out += ' ';
        first = false;
        out += k + ":" + format_attribute(*e);
      }
      return out + "]";
    }
  }
  return {};
}

std::string render_list(const ProxyMap& proxies, bool tty, std::string_view program) {
  std::string out;
  if (tty) {
    out += color(tty, ansi::kGreen);
    out += "Name\t\t\t";
    out += color(tty, ansi::kBlue);
    out += "Listen\t\t";
    out += color(tty, ansi::kYellow);
    out += "Upstream\t\t";
    out += color(tty, ansi::kPurple);
    out += "Enabled\t\t";
    out += color(tty, ansi::kRed);
    out += "Toxics\n";
    out += color(tty, ansi::kNone);
    out += color(tty, ansi::kNone);
    out += "======================================================================================\n";
    if (proxies.empty()) {
      out += color(tty, ansi::kRed);
      out += "no proxies\n";
      out += color(tty, ansi::kNone);
      hint(out, tty, "create a proxy with `" + std::string(program) + " create`");
      return out;
    }
  }
  for (const auto& [name, proxy] : proxies) {
    std::string toxics = std::to_string(proxy.toxics.size());
    if (toxics == "0" && tty) toxics = "None";
    print_width(out, tty, color_enabled(tty, proxy.enabled), proxy.name, 3);
    print_width(out, tty, ansi::kBlue, proxy.listen, 2);
    print_width(out, tty, ansi::kYellow, proxy.upstream, 3);
    print_width(out, tty, ansi::kPurple, enabled_text(proxy.enabled), 2);
    out += color(tty, ansi::kRed);
    out += toxics;
    out += color(tty, ansi::kNone);
    out += "\n";
  }
  hint(out, tty, "inspect toxics with `" + std::string(program) + " inspect <proxyName>`");
  return out;
}

std::string render_inspect(const Proxy& proxy, bool tty, std::string_view program) {
  std::string out;
  if (!tty) {
    std::vector<const Toxic*> all;
    for (const auto& t : proxy.toxics)
      all.push_back(&t);
    list_toxics(out, tty, all, "");
    return out;
  }
  out += color(tty, ansi::kPurple);
  out += "Name: ";
  out += color(tty, ansi::kNone);
  out += proxy.name + "\t";
  out += color(tty, ansi::kBlue);
  out += "Listen: ";
  out += color(tty, ansi::kNone);
  out += proxy.listen + "\t";
  out += color(tty, ansi::kYellow);
  out += "Upstream: ";
  out += color(tty, ansi::kNone);
  out += proxy.upstream + "\n";
  out += color(tty, ansi::kNone);
  out += "======================================================================\n";
  if (proxy.toxics.empty()) {
    out += color(tty, ansi::kRed);
    out += "Proxy has no toxics enabled.\n";
    out += color(tty, ansi::kNone);
  } else {
    std::vector<const Toxic*> up, down;
    for (const auto& t : proxy.toxics)
      (t.stream == "upstream" ? up : down).push_back(&t);
    list_toxics(out, tty, up, "Upstream");
    out += "\n";
    list_toxics(out, tty, down, "Downstream");
  }
  hint(out, tty, "add a toxic with `" + std::string(program) + " toxic add`");
  return out;
}

std::string render_toggle(const std::string& name, bool enabled, bool tty) {
  std::string out = "Proxy ";
  out += color_enabled(tty, enabled);
  out += name;
  out += color(tty, ansi::kNone);
  out += " is now ";
  out += color_enabled(tty, enabled);
  out += enabled_text(enabled);
  out += color(tty, ansi::kNone);
  out += "\n";
  return out;
}

}  // namespace faultproxy::cli
