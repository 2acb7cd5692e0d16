#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's own
examples: the Toxiproxy 2.12 API transcript's requests, stack/ configuration files, and hand-written
valid and invalid inputs. Run from the repository root; the output is committed. Seeds are small
and meaningful; libFuzzer's own finds go to build/fuzz/corpus, never here."""
import hashlib
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fuzz", "corpus")
TRANSCRIPT = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/toxiproxy-2.12-api-transcript.txt"

corpora = {}


def seed(target, data, name=None, raw=False):
    """raw: the string's characters are bytes (\xff is the byte 0xff, not U+00FF in UTF-8)."""
    if isinstance(data, str):
        data = data.encode("latin-1" if raw else "utf-8")
    name = name or hashlib.sha1(data).hexdigest()[:16]
    corpora.setdefault(target, {})[name] = data


def script(*requests):
    return "\n%%\n".join(requests)


# ---------------------------------------------------------------------------- Toxiproxy transcript
curl = re.compile(r"^\$ curl -i -X (\w+) '([^']*)'(?: -H '[^']*')?(?: --data-binary '((?:[^']|'\\'')*)')?\s*$")
requests = []
if os.path.exists(TRANSCRIPT):
    for line in open(TRANSCRIPT, encoding="utf-8"):
        m = curl.match(line)
        if not m:
            continue
        method, url, body = m.group(1), m.group(2), m.group(3)
        target = re.sub(r"^https?://[^/]+", "", url)
        requests.append((method, target, body))

echo = 'POST /proxies\n\n{"name":"echo","listen":"127.0.0.1:18480","upstream":"127.0.0.1:18100"}'
for method, target, body in requests:
    if body is not None:
        seed("faultproxy_json", body)
    text = f"{method} {target}\n" + (f"\n{body}" if body is not None else "")
    seed("faultproxy_api", script(echo, text) if "/proxies/echo" in target else text)
    if target == "/populate" and body:
        seed("faultproxy_config", body)
# The transcript as sessions of a dozen requests, each starting from the proxy they use.
for i in range(0, len(requests), 12):
    chunk = [f"{m} {t}\n" + (f"\n{b}" if b is not None else "") for m, t, b in requests[i:i + 12]]
    seed("faultproxy_api", script(echo, *chunk), f"transcript-{i // 12:02d}")

# ------------------------------------------------------------------------------ faultproxy, more
seed("faultproxy_api", script("GET /version", "GET /metrics", "GET /proxies/", "GET /nope//x",
                              "GET /proxies/%2e%2e", "PUT /proxies"), "routes")
seed("faultproxy_api", script("GET /version\nUser-Agent: Mozilla/5.0\n"), "browser")
# The web console: its files (revalidated), its types, and its guard (cross-origin refused, own accepted).
console = "User-Agent: Mozilla/5.0\nHost: 127.0.0.1:8474\nX-Faultproxy-Console: 1\nContent-Type: application/json\n"
seed("faultproxy_api", script(
    "GET /ui\nUser-Agent: Mozilla/5.0\nHost: 127.0.0.1:8474\n", "GET /ui/console.js\nHost: localhost\nIf-None-Match: *\n",
    "GET /ui/nosuch\nHost: [::1]:1\n", "GET /ui\nHost: evil.example\n", "GET /toxic-types\n",
    "POST /proxies\n" + console + "Origin: http://evil.example\n\n" + '{"name":"x","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}',
    "POST /proxies\n" + console + "Origin: http://127.0.0.1:8474\nSec-Fetch-Site: same-origin\n\n"
    + '{"name":"x","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}',
    "OPTIONS /proxies\nOrigin: http://evil.example\nAccess-Control-Request-Method: POST\n"), "console")
seed("faultproxy_api", script(
    'POST /populate\n\n[{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","toxics":'
    '[{"type":"latency","attributes":{"latency":100,"jitter":5}},{"type":"timeout","stream":"upstream",'
    '"attributes":{"timeout":0}}]}]',
    'PATCH /proxies/a/toxics/latency_downstream\n\n{"attributes":{"latency":5},"toxicity":0.5}',
    'POST /populate\n\n[{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","toxics":null}]',
    "DELETE /proxies/a/toxics/timeout_upstream", "POST /reset", "DELETE /proxies/a"), "populate-toxics")
proxies_json = open(os.path.join(ROOT, "stack", "proxies.json")).read()
proxies_json = re.sub(r"\$\{[A-Z_]+\}", "0", proxies_json)
seed("faultproxy_config", proxies_json, "stack-proxies")
seed("faultproxy_config", '[{"name":"r","listen":"127.0.0.1:0","upstream":"127.0.0.1:6379","enabled":false,'
     '"toxics":[{"name":"lat","type":"latency","stream":"downstream","toxicity":1,"attributes":'
     '{"latency":1000,"jitter":100}},{"type":"bandwidth","stream":"UPSTREAM","attributes":{"rate":1}},'
     '{"type":"slicer","attributes":{"average_size":1,"size_variation":1,"delay":1}},'
     '{"type":"limit_data","attributes":{"bytes":10}},{"type":"reset_peer","attributes":{"timeout":1}},'
     '{"type":"slow_close","attributes":{"delay":1}},{"type":"noop"}]}]', "toxics")
for text in ['null', '[null]', '[{"name":"x"}]', '[{"name":"a","upstream":"b"},{"name":"a","upstream":"b"}]',
             '{"name":"a"}', '[{"name":"a","upstream":"b","listen":"[::1]:0"}]',
             '[{"name":"a","upstream":"b","listen":"localhost:http"}]']:
    seed("faultproxy_config", text)
for text in ['{"a":[1,-0.5e+10,true,false,null,"\\u00e9\\ud83d\\ude00\\ud800"]}', '"\\u2028<>&"', '1e400',
             '{"Name":"x","NAME":"y"}', '[' * 50 + ']' * 50, '{"a":1} trailing', ' \t\n', '"\xff\xfe"',
             '-', '01', '{"a" 1}', '[1,]', 'nul', '"\\x"', '123456789012345678901234567890']:
    seed("faultproxy_json", text, raw=True)

# ---------------------------------------------------------------------------------- user-service
for text in ["u-1", "%C3%A9t%C3%A9", "a%2Fb", "%", "%zz", "%00", "%C2%85", "\xc3\xa9", "\xed\xa0\x80",
             "\xf4\x90\x80\x80", "\xc0\xaf", "x" * 255, "x" * 256, '{"name":"Jack"}', '{"name":""}',
             '{"name":1}', '{"name":"a","name":"b"}', '[]', '{"nom":"x"}', '{"name":"\\u00e9\\ud83d\\ude00"}',
             '{"name":"\\ud800"}', '{"name":"' + "n" * 256 + '"}', '{' * 40 + '}' * 40, 'not json',
             '{"name":"Jack"} extra', "\x7f", "line\nbreak", '{"name":"\xff"}']:
    seed("user_service_validation", text, raw=True)

def put(target, body, headers=""):
    """A PUT with the Content-Type user-service requires (and any extra header lines)."""
    return "PUT " + target + "\nContent-Type: application/json\n" + headers + "\n" + body


seed("user_service_api", script(put("/users/u-1", '{"name":"Jack"}'),
                                "GET /users/u-1", put("/users/u-1", '{"name":"Joe"}'), "GET /users/u-1",
                                "DELETE /users/u-1", "GET /users/u-1", "DELETE /users/u-1"), "round-trip")
seed("user_service_api", script("GET /health/live", "GET /health/ready", "GET /metrics", "GET /config",
                                "POST /health/live", "GET /nope", "GET /users/", "GET /users/a/b",
                                "PATCH /users/x", "HEAD /users/x", "GET /users/%zz?x=1"), "routes")
seed("user_service_api", script(put("/users/%C3%A9", '{"name":"\\u00e9"}'), "GET /users/%C3%A9",
                                put("/users/x", '{"name":1}'), put("/users/x", "not json"), "PUT /users/x",
                                put("/users/%00", '{"name":"a"}'), put("/users/" + "y" * 300, '{"name":"a"}'),
                                put("/users/x", '{"name":"a","name":"b"}'), put("/users/x", '{"name":"a","nom":1}'),
                                put("/users/x", '{"id":"x","name":"a"}'), put("/users/x", '{"id":"y","name":"a"}'),
                                'PUT /users/x\nContent-Type: text/plain\n\n{"name":"a"}', 'PUT /users/x\n\n{"name":"a"}'),
     "validation")
seed("user_service_api", script(put("/users/c", '{"name":"A"}', 'If-None-Match: *\n'),
                                put("/users/c", '{"name":"B"}', 'If-None-Match: *\n'),
                                "GET /users/c\nIf-None-Match: \"v101\"\n", "HEAD /users/c",
                                put("/users/c", '{"name":"C"}', 'If-Match: "v101"\n'),
                                put("/users/c", '{"name":"D"}', 'If-Match: "v101", W/"v102"\n'),
                                "DELETE /users/c\nIf-Match: \"v1\"\n", "DELETE /users/c\nIf-Match: *\n",
                                put("/users/c", '{"name":"E"}', 'If-Match: *\n'),
                                "GET /users?limit=2", "GET /users?limit=1&after=a", "GET /users?limit=0",
                                "HEAD /users", "PUT /users"), "conditional-and-pages")
seed("user_service_api", script("GET /users/a\nX-Request-Id: client-id-1\n", "GET /users/a\nX-Request-Id: has space\n",
                                "GET /users/a\nX-Request-Id: " + "r" * 200 + "\n"), "request-ids")
seed("user_service_api", script(put("/users/a", '{"name":"A"}'), "@store=fail\nGET /users/a",
                                "@master=fail @replica=fail\nGET /users/a", "@store=ok\n" + put("/users/a", '{"name":"B"}'),
                                "@master=ok @replica=reject\nGET /users/a", "GET /health/ready",
                                "@store=acklost\nDELETE /users/a", "@store=ok\nGET /users/a",
                                "@replicate=0\n" + put("/users/b", '{"name":"b"}'), "GET /users/b"), "faults")

example = open(os.path.join(ROOT, "stack", "user-service.example.json")).read()
seed("user_service_config", example, "example")
stack_cfg = re.sub(r"\$\{[A-Z_]+\}", "1", open(os.path.join(ROOT, "stack", "user-service.json")).read())
seed("user_service_config", stack_cfg, "stack")
seed("user_service_config", '{"listen":"[::1]:8080","redis":{"master":"127.0.0.1:1","key_prefix":"u:"}}\n%%\n'
     "USER_SERVICE_MYSQL_PORT=3307\nUSER_SERVICE_LOG_LEVEL=debug\nPATH=/bin\n%%\n--mysql.password=pw\n"
     "--redis.ttl_s\n60\n--print-config", "env-and-flags")
for text in ['{}', '[]', '{"redis":{"mastr":"x:1"}}', '{"request_deadline_ms":-1}', '{"mysql":{"port":70000}}',
             '{"listen":"localhost:80"}', '{"mysql":{"database":"a;drop"}}', '{"redis":{"key_prefix":""}}',
             '{"log_level":"loud"}', '{"redis":{"reconnect_min_ms":500,"reconnect_max_ms":100}}',
             '{}\n%%\nUSER_SERVICE_NOPE=1', '{}\n%%\n\n%%\n--help', '{}\n%%\n\n%%\n--listen',
             '{}\n%%\n\n%%\n--help\n--no-such-flag']:  # the last: regression (help with no usage text)
    seed("user_service_config", text)

# ---------------------------------------------------------------------------------- HTTP server
for text in ["GET / HTTP/1.1\r\nHost: a\r\n\r\n",
             "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nHEAD /c HTTP/1.1\r\n\r\n",
             "PUT /users/u HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"name\":\"Jack\"}",
             "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
             "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
             "GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n",
             "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /after-close HTTP/1.1\r\n\r\n",
             "HEAD / HTTP/1.1\r\n\r\n", "GET /throw HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
             "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
             "GET / HTTP/1.1\r\nX: " + "a" * 17000 + "\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
             "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
             "\r\n\r\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\n\n", "GET / HTTP/2.0\r\n\r\n"]:
    seed("http_server", text)

# ----------------------------------------------------------------------------------------- Redis
for text in ["+OK\r\n", "+PONG\r\n", "-ERR unknown command\r\n", "-NOSCRIPT No matching script.\r\n", ":1\r\n",
             ":-9223372036854775808\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*-1\r\n", "$0\r\n\r\n",
             "*2\r\n$4\r\nJack\r\n$3\r\n101\r\n", "*2\r\n$-1\r\n$-1\r\n", "*2\r\n$1\r\n0\r\n*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n",
             "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$3\r\na\x00b\r\n", "+OK\r\n:2\r\n$1\r\nx\r\n", "?bad\r\n",
             ":notanumber\r\n", "$2\r\nabc\r\n"]:
    # Layout: a piece-size byte (1 + byte % 64), then the bytes, fed in pieces of that size.
    seed("redis_reply", chr(len(text) % 7) + text, raw=True)
# Regression: found by this target (an array count hiredis 0.14 allocated at once).
seed("redis_reply", "\x3f*1\r\n*1155555555\r\n*1\r\n*1\r\n:1\r\n", "regression-huge-array-count")
# Found when ReplyReader replaced hiredis' reader: numbers as Redis writes them, and the depth limit
# counts empty arrays.
seed("redis_reply", "\x05$-0\r\n", "regression-minus-zero-length", raw=True)
seed("redis_reply", "\x00" + "*1\r\n" * 8 + "*0\r\n:1\r\n", "regression-empty-array-too-deep", raw=True)

# ----------------------------------------------------------------------------------------- MySQL
for type_index, flags, text in [(1, 0, "-128"), (8, 1, "18446744073709551615"), (8, 0, "9223372036854775808"),
                                (3, 0, "12abc"), (4, 0, "1.5"), (5, 0, "1e308"), (5, 0, "nan"), (16, 0, "3.14"),
                                (19, 0, "Jack"), (17, 0, "\x00\x01\x02"), (13, 1, "2024"), (8, 2, ""),
                                (12, 0, "2024-01-01 00:00:00"), (8, 0, "\x01\x00\x00\x00\x00\x00\x00\x00")]:
    seed("mysql_values", bytes([type_index, flags]) + text.encode("latin-1"))

# ------------------------------------------------------- protocol toxics (support/protocol_fuzz.h)
# Layout: chunk-size byte, selector byte, the client's stream, "\n%%\n", the server's stream.
def proto(target, piece, selector, client, server, raw=True):
    seed(target, chr(piece) + chr(selector) + client + "\n%%\n" + server, raw=raw)


def resp(*args):
    return "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)


for piece, selector in [(0, 0), (2, 1), (6, 0), (63, 1)]:
    proto("resp_parser", piece, selector, resp("GET", "a") + resp("SET", "b", "1") + "PING\r\n" + resp("GET", "c"),
          "$1\r\n1\r\n+OK\r\n+PONG\r\n$-1\r\n")
proto("resp_parser", 3, 1, resp("SUBSCRIBE", "ch") + resp("SET", "k", "v"),
      "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n>3\r\n+message\r\n+ch\r\n+hi\r\n")
proto("resp_parser", 1, 0, resp("HELLO", "3") + resp("EVALSHA", "abc", "0"),
      "%1\r\n+server\r\n+redis\r\n|1\r\n+k\r\n+v\r\n-NOSCRIPT No matching script.\r\n")
proto("resp_parser", 5, 1, "*x\r\n" + resp("SET", "k", "v"), "garbage")


def packet(seq, payload):
    n = len(payload)
    return chr(n & 0xff) + chr((n >> 8) & 0xff) + chr(n >> 16) + chr(seq) + payload


OK = packet(1, "\x00\x00\x00\x02\x00\x00\x00")
for piece, selector in [(0, 0), (3, 8), (7, 16), (63, 2), (9, 4)]:
    proto("mysql_parser", piece, selector,
          packet(0, "\x03SELECT 1") + packet(0, "\x03INSERT INTO t VALUES (1)") +
          packet(0, "\x16UPDATE t SET v = ? WHERE k = ?") +
          packet(0, "\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00") + packet(0, "\x19\x07\x00\x00\x00") + packet(0, "\x01"),
          packet(1, "\x01") + packet(2, "coldef") + packet(3, "\xfe\x00\x00\x02\x00") + packet(4, "\x011") +
          packet(5, "\xfe\x00\x00\x02\x00") + OK +
          packet(1, "\x00\x07\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00") + packet(2, "p") + packet(3, "p") +
          packet(4, "\xfe\x00\x00\x02\x00") + OK)
proto("mysql_parser", 4, 0, packet(1, "\x05\xa6\x0f\x00" + "\x00" * 28) + packet(0, "\x03SELECT 2"),
      packet(0, "\x0a10.11.6-MariaDB") + packet(2, "\x00\x00\x00\x02\x00\x00\x00") + OK)

for piece, selector in [(0, 1), (4, 0), (12, 1), (63, 0)]:
    proto("http_parser", piece, selector,
          "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
          "POST /users HTTP/1.1\r\nContent-Length: 2\r\nX-Fault: on\r\n\r\n{}"
          "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
          "HEAD /h HTTP/1.1\r\nx-envoy-fault-abort-request: 503\r\n\r\n",
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
          "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n"
          "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
proto("http_parser", 7, 1, "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x00")
proto("http_parser", 2, 0, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nuntil close")
# Regressions found by these targets: a command byte that makes the toxic stop interpreting
# (COM_SLEEP) in the middle of a chunk lost the bytes after it; the response half giving up while
# a command was half read lost that half.
seed("mysql_parser", b'\x03\x08\t\x00\x00\x00\x03WELECT 1\x19\x00\x00\x00\x03INSERT INTO t VALUE\x00\x00\x05\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\n%%\n\x01\x00\x00\x01\x01\x06\x00\x00\x02co\x00\x01\x00\x00\x02p\x01\x00\x00\x03p\x05\x00\x00\x04\xfe\x00\x00\x02\x00\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00', "regression-opaque-mid-chunk")
proto("resp_parser", 5, 1, "+OK\r\n3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "garbage")

# ------------------------------------------------------------------------------------------ write
for target, files in corpora.items():
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(files)} seeds")
