// The protocol toxics through the two pipelines of one connection (no sockets): what the server
// gets from the client's bytes and what the client gets from the server's, fed in pieces of every
// size so that decisions never depend on chunk boundaries.
#include "faultproxy/protocol_toxics.h"

#include <gtest/gtest.h>

#include "faultproxy/mysql_parser.h"
#include "faultproxy/protocol_test_support.h"

namespace faultproxy {
namespace {

using namespace std::chrono_literals;
using testing_protocols::Connection2;

std::string resp(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args)
    out += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
  return out;
}

// ---- redis ----------------------------------------------------------------------------------------

TEST(RedisError, AnswersMatchingCommandsInPipelineOrder) {
  const std::string get_a = resp({"GET", "a"}), set_b = resp({"SET", "b", "2"}), get_c = resp({"GET", "c"});
  const std::string replies = "$1\r\n1\r\n$1\r\n3\r\n";
  const std::string error = "-READONLY You can't write against a read only replica.\r\n";
  for (std::size_t piece = 1; piece <= 40; ++piece) {
    Connection2 c(ToxicType::redis_error, {{"commands", std::string("set, hset")}});
    EXPECT_EQ(c.client_sends(get_a + set_b + get_c, piece), get_a + get_c) << piece;
    EXPECT_EQ(c.to_client(), "");  // the GET's reply comes first
    c.server_sends(replies, piece);
    EXPECT_EQ(c.to_client(), "$1\r\n1\r\n" + error + "$1\r\n3\r\n") << piece;
    EXPECT_EQ(c.session.actions, 1);
  }
}

TEST(RedisError, AnswersAtOnceWhenNothingIsOutstanding) {
  Connection2 c(ToxicType::redis_error,
                {{"error", std::string("LOADING Redis is loading the dataset in memory")}});
  EXPECT_EQ(c.client_sends("PING\r\n"), "");  // inline commands too; "" matches every command
  EXPECT_EQ(c.session.wakes, 1);
  c.run();
  EXPECT_EQ(c.to_client(), "-LOADING Redis is loading the dataset in memory\r\n");
}

TEST(RedisError, SubscriptionsAndGarbagePassUntouched) {
  Connection2 c(ToxicType::redis_error, {{"commands", std::string("SET")}});
  const std::string sub = resp({"SUBSCRIBE", "ch"}), set = resp({"SET", "k", "v"});
  EXPECT_EQ(c.client_sends(sub), sub);
  c.server_sends("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  EXPECT_EQ(c.client_sends(set), sub + set);  // no longer interpreted
  Connection2 g(ToxicType::redis_error, {});
  EXPECT_EQ(g.client_sends("*x\r\n" + set), "*x\r\n" + set);
  g.run();
  EXPECT_EQ(g.to_client(), "");
}

TEST(RedisError, ToxicityZeroAndUnquietStartsPassEverything) {
  const std::string set = resp({"SET", "k", "v"});
  Connection2 off(ToxicType::redis_error, {}, /*toxicity=*/0);
  EXPECT_EQ(off.client_sends(set), set);
  Connection2 busy(ToxicType::redis_error, {});
  busy.session.is_quiet = false;  // an answer may be on its way: not a safe place to start
  EXPECT_EQ(busy.client_sends(set), set);
  busy.server_sends("+OK\r\n");
  busy.session.is_quiet = true;
  EXPECT_EQ(busy.client_sends(set), set);  // from here on it acts
  busy.run();
  EXPECT_EQ(busy.to_client(), "+OK\r\n-READONLY You can't write against a read only replica.\r\n");
}

TEST(RedisError, RemovalSendsThePromisedAnswers) {
  Connection2 c(ToxicType::redis_error, {{"commands", std::string("SET")}});
  c.client_sends(resp({"GET", "a"}) + resp({"SET", "b", "c"}));
  c.remove_toxic();
  EXPECT_EQ(c.to_client(), "-READONLY You can't write against a read only replica.\r\n");
  const std::string set = resp({"SET", "b", "c"});
  EXPECT_EQ(c.client_sends(set).substr(c.to_server().size() - set.size()), set);
}

TEST(RedisDelay, DelaysMatchingCommandsAndWhatFollowsThem) {
  Connection2 c(ToxicType::redis_delay, {{"commands", std::string("get")}, {"latency", std::int64_t{100}}});
  const std::string set = resp({"SET", "k", "v"}), get = resp({"GET", "k"});
  EXPECT_EQ(c.client_sends(set + get + set), set);
  c.now += 99ms;
  c.run();
  EXPECT_EQ(c.to_server(), set);
  c.now += 1ms;
  c.run();
  EXPECT_EQ(c.to_server(), set + get + set);
}

// ---- mysql ----------------------------------------------------------------------------------------

std::string packet(std::uint8_t seq, std::string_view payload) {
  std::string out;
  for (int i = 0; i < 3; ++i)
    out.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  out.push_back(static_cast<char>(seq));
  return out + std::string(payload);
}
std::string query(std::string_view sql) {
  return packet(0, "\x03" + std::string(sql));
}
std::string hello(std::uint32_t flags) {
  std::string p;
  for (int i = 0; i < 4; ++i)
    p.push_back(static_cast<char>((flags >> (8 * i)) & 0xff));
  return packet(1, p + std::string(28, '\0'));
}
const std::string kOk = packet(1, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));

TEST(MysqlError, ReplacesMatchingStatementsWithTheErrorInPlace) {
  for (std::size_t piece : {1, 3, 7, 1000}) {
    Connection2 c(ToxicType::mysql_error, {{"statement", std::string("^\\s*insert")}});
    c.session.head = hello(0x200 | 0x8000).substr(0, 8);
    const std::string greeting = packet(0,
                                        "\x0a"
                                        "10.11.6-MariaDB");
    c.server_sends(greeting, piece);
    EXPECT_EQ(c.client_sends(hello(0x200 | 0x8000), piece), hello(0x200 | 0x8000));
    c.server_sends(packet(2, std::string("\x00\x00\x00\x02\x00\x00\x00", 7)), piece);
    const std::string select = query("SELECT 1");
    c.client_sends(select + query("Insert INTO t VALUES (1)"), piece);
    // The deadlock's stand-in is a ROLLBACK: MariaDB rolls the transaction back on 1213.
    const std::string rollback = query("ROLLBACK");
    EXPECT_EQ(c.to_server().substr(c.to_server().size() - select.size() - rollback.size()), select + rollback)
        << piece;
    const std::string result = packet(1, "\x01") + packet(2, "coldef") + packet(3, "\xfe\x00\x00\x02\x00") +
                               packet(4,
                                      "\x01"
                                      "1") +
                               packet(5, "\xfe\x00\x00\x02\x00");
    c.server_sends(result + kOk, piece);
    const std::string error = mysql_error_packet(
        1, 1213, "40001", "Deadlock found when trying to get lock; try restarting transaction");
    EXPECT_EQ(c.to_client().substr(c.to_client().size() - result.size() - error.size()), result + error)
        << piece;
  }
}

TEST(MysqlError, ActsOnExecutionsOfMatchingPreparedStatements) {
  Connection2 c(ToxicType::mysql_error, {{"statement", std::string("update")}, {"code", std::int64_t{1290}}});
  c.session.head = hello(0x200).substr(0, 8);
  const std::string prepare = packet(0, "\x16UPDATE user SET name = ? WHERE id = ?");
  EXPECT_EQ(c.client_sends(prepare), prepare);
  const std::string prepared =
      packet(1, std::string("\x00\x07\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00", 12)) + packet(2, "param") +
      packet(3, "param") + packet(4, "\xfe\x00\x00\x02\x00");
  c.server_sends(prepared);
  const std::string execute = packet(0, std::string("\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00", 10));
  const std::string other = packet(0, std::string("\x17\x08\x00\x00\x00\x00\x01\x00\x00\x00", 10));
  c.client_sends(execute + other);
  EXPECT_EQ(c.to_server(), prepare + query("DO 0") + other);
  c.server_sends(kOk + kOk);
  EXPECT_EQ(c.to_client(),
            prepared +
                mysql_error_packet(1, 1290, "HY000",
                                   "The MariaDB server is running with the --read-only option so it cannot "
                                   "execute this statement") +
                kOk);
  // Closed, the statement id is forgotten (the server may reuse it).
  c.client_sends(packet(0, std::string("\x19\x07\x00\x00\x00", 5)));
  c.client_sends(execute);
  EXPECT_EQ(c.to_server().substr(c.to_server().size() - execute.size()), execute);
}

TEST(MysqlError, ClientLibraryCodesCutTheConnectionMidResult) {
  Connection2 c(ToxicType::mysql_error, {{"code", std::int64_t{2013}}});
  c.session.head = hello(0x200).substr(0, 8);
  const std::string select = query("SELECT * FROM big");
  EXPECT_EQ(c.client_sends(select), select);  // it reaches the server
  c.server_sends(packet(1, "\x02") + packet(2, "coldef"));
  EXPECT_EQ(c.to_client(), packet(1, "\x02"));
  EXPECT_TRUE(c.client_closed());
}

TEST(MysqlError, KilledConnectionsCloseAfterTheError) {
  Connection2 c(ToxicType::mysql_error, {{"code", std::int64_t{1927}}, {"message", std::string("bye")}});
  c.session.head = hello(0x200).substr(0, 8);
  c.client_sends(query("SELECT 1"));
  c.server_sends(kOk);
  EXPECT_EQ(c.to_client(), mysql_error_packet(1, 1927, "70100", "bye"));
  EXPECT_TRUE(c.client_closed());
}

TEST(MysqlError, TlsAndCompressedConnectionsPassUntouched) {
  for (std::uint32_t flag : {0x800u, 0x20u}) {
    Connection2 c(ToxicType::mysql_error, {});
    c.session.head = hello(0x200 | flag).substr(0, 8);
    const std::string q = query("INSERT INTO t VALUES (1)");
    EXPECT_EQ(c.client_sends(q), q);
    c.server_sends(kOk);
    EXPECT_EQ(c.to_client(), kOk);
  }
}

TEST(MysqlDelay, DelaysMatchingStatementsOnly) {
  Connection2 c(ToxicType::mysql_delay,
                {{"statement", std::string("^SELECT")}, {"latency", std::int64_t{50}}});
  c.session.head = hello(0x200).substr(0, 8);
  const std::string insert = query("INSERT 1"), select = query("select 2");
  EXPECT_EQ(c.client_sends(insert), insert);
  c.server_sends(kOk);
  EXPECT_EQ(c.client_sends(select), insert);
  c.now += 50ms;
  c.run();
  EXPECT_EQ(c.to_server(), insert + select);
}

// ---- http -----------------------------------------------------------------------------------------

TEST(HttpAbort, AbortsMatchingRequestsInPipelineOrder) {
  const std::string a = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string fault =
      "POST /users/1 HTTP/1.1\r\nHost: x\r\nX-Chaos: on\r\nContent-Length: 4\r\n\r\nbody";
  const std::string b = "GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string ra = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
  const std::string rb = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
  for (std::size_t piece : {1, 2, 5, 13, 1000}) {
    Connection2 c(ToxicType::http_abort, {{"status", std::int64_t{500}},
                                          {"path_prefix", std::string("/users")},
                                          {"header", std::string("x-chaos: on")},
                                          {"body", std::string("boom")}});
    EXPECT_EQ(c.client_sends(a + fault + b, piece), a + b) << piece;
    c.server_sends(ra + rb, piece);
    EXPECT_EQ(c.to_client(), ra +
                                 "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\ncontent-type: "
                                 "text/plain\r\n\r\nboom" +
                                 rb)
        << piece;
  }
}

TEST(HttpAbort, HeaderControlledAndClosingRequests) {
  Connection2 c(ToxicType::http_abort, {{"status", std::int64_t{0}}});
  const std::string plain = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(c.client_sends(plain), plain);  // status 0: only requests asking for it
  c.server_sends("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(c.client_sends("GET / HTTP/1.1\r\nx-envoy-fault-abort-request: 429\r\nConnection: close\r\n\r\n"),
            plain);
  c.run();
  EXPECT_EQ(
      c.to_client(),
      "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: "
      "close\r\n\r\n");
  EXPECT_TRUE(c.client_closed());
}

TEST(HttpAbort, PercentageIsDrawnPerRequestAndReproducible) {
  auto faulted = [](std::uint64_t seed) {
    Connection2 c(ToxicType::http_abort, {{"percentage", 30.0}}, 1, seed);
    std::string pattern;
    for (int i = 0; i < 200; ++i) {
      const std::size_t before = c.to_server().size();
      c.client_sends("GET / HTTP/1.1\r\n\r\n");
      pattern += c.to_server().size() == before ? 'x' : '.';
      c.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
    return pattern;
  };
  const std::string p = faulted(7);
  EXPECT_EQ(p, faulted(7));
  const auto n = std::count(p.begin(), p.end(), 'x');
  EXPECT_GT(n, 30);  // 60 expected
  EXPECT_LT(n, 95);
}

TEST(HttpDelay, DelaysMatchingRequestsByLatencyOrHeader) {
  Connection2 c(ToxicType::http_delay, {{"method", std::string("GET")}, {"latency", std::int64_t{20}}});
  const std::string post = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  const std::string get = "GET / HTTP/1.1\r\nx-envoy-fault-delay-request: 200\r\n\r\n";
  EXPECT_EQ(c.client_sends(post + get), post);
  c.now += 199ms;
  c.run();
  EXPECT_EQ(c.to_server(), post);
  c.now += 1ms;
  c.run();
  EXPECT_EQ(c.to_server(), post + get);
}

// ---- attributes -----------------------------------------------------------------------------------

TEST(ProtocolSettings, ValidationNamesTheAttribute) {
  auto error = [](ToxicType t, std::size_t i, AttributeValue v) {
    Attributes a = default_attributes(t);
    a[i] = std::move(v);
    auto r = compile_protocol_settings(t, a);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  EXPECT_EQ(error(ToxicType::redis_error, 0, std::string("SET,")).rfind("commands: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::redis_error, 1, std::string("a\r\nb")).rfind("error: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::redis_delay, 1, std::int64_t{-1}).rfind("latency: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::mysql_error, 0, std::string("(")).rfind("statement: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::mysql_error, 1, std::int64_t{70000}).rfind("code: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::mysql_error, 2, std::string("4000")).rfind("sqlstate: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::http_abort, 0, std::int64_t{99}).rfind("status: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::http_abort, 1, 100.5).rfind("percentage: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::http_abort, 2, std::string("G T")).rfind("method: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::http_abort, 4, std::string(": v")).rfind("header: ", 0), 0u);
  EXPECT_EQ(error(ToxicType::http_abort, 0, std::string("503")), "status: wrong type");
  EXPECT_EQ(error(ToxicType::http_abort, 0, std::int64_t{0}), "");
}

TEST(ProtocolSettings, MysqlDefaultsAreMariaDbsForTheCode) {
  Attributes a = default_attributes(ToxicType::mysql_error);
  auto shown = effective_attributes(ToxicType::mysql_error, a);
  EXPECT_EQ(std::get<std::string>(shown[2]), "40001");
  EXPECT_EQ(std::get<std::string>(shown[3]),
            "Deadlock found when trying to get lock; try restarting transaction");
  a[1] = std::int64_t{1205};
  shown = effective_attributes(ToxicType::mysql_error, a);
  EXPECT_EQ(std::get<std::string>(shown[2]), "HY000");
  EXPECT_EQ(std::get<std::string>(shown[3]), "Lock wait timeout exceeded; try restarting transaction");
  auto s = std::get<0>(compile_protocol_settings(ToxicType::mysql_error, a));
  EXPECT_EQ(s->sqlstate, "HY000");
  EXPECT_TRUE(s->statement_matches("anything"));
}

}  // namespace
}  // namespace faultproxy
