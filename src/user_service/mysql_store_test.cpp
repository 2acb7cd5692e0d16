// How MysqlStore classifies the MariaDB client's errors: the failure class (breakers, metrics, read
// retries) and, for writes, whether the statement may still have taken effect. The client decides
// the latter (clients::mysql::Error::outcome_unknown, proven against a real server in
// src/clients/mysql_itest.cpp); this is the mapping the service relies on.
#include "user_service/mysql_store.h"

#include <gtest/gtest.h>

namespace user_service {
namespace {

namespace mysql = clients::mysql;

mysql::Error error(mysql::Errc code, bool outcome_unknown, unsigned server_errno = 0) {
  return mysql::Error{code, server_errno, {}, "x", outcome_unknown};
}

void ExpectClass(const mysql::Error& e, Failure failure, Effect effect) {
  const ErrorClass c = classify(e);
  EXPECT_EQ(c.failure, failure) << mysql::to_string(e.code) << " " << e.server_errno;
  EXPECT_EQ(c.effect, effect) << mysql::to_string(e.code) << " " << e.server_errno << " outcome_unknown "
                              << e.outcome_unknown;
}

// Unknown outcome: the statement was out and no answer said how it ended.
TEST(UserServiceStoreErrors, FailuresAfterTheStatementWasSentHaveAnUnknownEffect) {
  // A deadline that passed while MariaDB had the statement.
  ExpectClass(error(mysql::Errc::timeout, true), Failure::timeout, Effect::unknown);
  // "Lost connection to server during query (2013)": reset_peer, MariaDB going away mid-request.
  ExpectClass(error(mysql::Errc::connection_lost, true, 2013), Failure::unavailable, Effect::unknown);
  // "Server has gone away (2006)" after the statement was written.
  ExpectClass(error(mysql::Errc::connection_lost, true, 2006), Failure::unavailable, Effect::unknown);
  // The request was cancelled (e.g. shutdown) while the statement was out.
  ExpectClass(error(mysql::Errc::cancelled, true), Failure::unavailable, Effect::unknown);
}

// Known not to have run: nothing was sent, or MariaDB itself answered with an error.
TEST(UserServiceStoreErrors, FailuresBeforeSendingOrRefusedByTheServerHaveNoEffect) {
  ExpectClass(error(mysql::Errc::timeout, false), Failure::timeout,
              Effect::none);  // no pooled connection in time
  ExpectClass(error(mysql::Errc::unavailable, false), Failure::unavailable, Effect::none);  // pool down
  ExpectClass(error(mysql::Errc::connect_failed, false, 2003), Failure::unavailable, Effect::none);
  ExpectClass(error(mysql::Errc::pool_exhausted, false), Failure::unavailable, Effect::none);
  ExpectClass(error(mysql::Errc::stopped, false), Failure::unavailable, Effect::none);
  ExpectClass(error(mysql::Errc::connection_lost, false, 2006), Failure::unavailable,
              Effect::none);  // idle, found dead
  ExpectClass(error(mysql::Errc::invalid_argument, false), Failure::rejected, Effect::none);
  // The server's own error replies: it refused (a bad value) or could not run it now (rolled back).
  ExpectClass(error(mysql::Errc::server, false, 1406), Failure::rejected, Effect::none);
  ExpectClass(error(mysql::Errc::server, false, 1205), Failure::unavailable, Effect::none);  // lock wait
  ExpectClass(error(mysql::Errc::server, false, 1213), Failure::unavailable, Effect::none);  // deadlock
  ExpectClass(error(mysql::Errc::server, false, 1146), Failure::unavailable, Effect::none);  // no table
  // A fence trigger: the write reached its row after its deadline and was rolled back.
  ExpectClass(error(mysql::Errc::server, false, kFencePassedErrno), Failure::timeout, Effect::none);
}

// A lock conflict rolled the statement back: nothing was written and the same statement may succeed
// when run again (the service repeats a write once). Nothing else is a conflict.
TEST(UserServiceStoreErrors, OnlyDeadlocksAndLockWaitTimeoutsAreConflicts) {
  EXPECT_TRUE(classify(error(mysql::Errc::server, false, 1213)).conflict);
  EXPECT_TRUE(classify(error(mysql::Errc::server, false, 1205)).conflict);
  EXPECT_FALSE(classify(error(mysql::Errc::server, false, 1290)).conflict);  // read-only: another server
  EXPECT_FALSE(classify(error(mysql::Errc::server, false, 1062)).conflict);
  EXPECT_FALSE(classify(error(mysql::Errc::timeout, true)).conflict);
  EXPECT_FALSE(classify(error(mysql::Errc::connection_lost, true, 2013)).conflict);
}

}  // namespace
}  // namespace user_service
