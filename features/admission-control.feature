@admission @mysql
Feature: Admission control: a MariaDB overload is shed at once, not queued into deadline misses
  The service bounds the requests doing MariaDB work at once (mysql.max_in_flight, by default the pool
  size) and those waiting for their turn (mysql.max_queued). When MariaDB is slow and the load far above
  what it can serve in time, the excess is answered 503 at once: shed, with Retry-After and a body that
  says so, counted in user_service_requests_shed_total. A waiting request whose turn, at MariaDB's
  measured pace, would come after its deadline is shed as soon as that is known. No request waits past
  its deadline, and once MariaDB is fast again the service serves such a burst whole.
  Concurrent cache misses of one user share one MariaDB read (single-flight).

  @fault:latency
  Scenario: writes far above the pool while MariaDB is slowed
    Given 'mysql' has latency of 100 ms
    When a burst of 4 times as many concurrent writes as the service admits is made
    Then some of them were shed at once, each a 503 saying so with Retry-After
    And no answer of the burst came later than the request deadline
    And some writes of the burst succeeded
    And the shed writes left nothing in MariaDB
    And the service counted every shed write
    When 'mysql' is up
    Then within 2 s a burst of as many concurrent writes as the service admits all succeed

  @single-flight @fault:latency
  Scenario: concurrent reads of one uncached user share one MariaDB read
    Given a user for the uncached read
    And 'mysql' has latency of 100 ms
    When 50 concurrent reads of that user are made
    Then every one answers the user as stored
    And at most 5 MariaDB reads served them
