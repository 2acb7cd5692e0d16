@breaker
Feature: Circuit breakers fail fast once they open
  A dependency that keeps missing its deadline opens its breaker after a few calls: from then on the
  calls that need it fail at once instead of waiting for the deadline again, and a background probe
  closes the breaker within 1 s of the dependency's return.

  @mysql @fault:timeout
  Scenario: The MariaDB breaker opens on deadline misses, fails fast, and closes by itself
    Given a user for the uncached read
    And 'mysql' times out
    When the uncached read is made
    Then the answer is 503 within the deadline, then fast
    And the service has noticed that 'mysql' is not up
    When 'mysql' is healthy again
    Then within 1 s, without any request, the service reports 'mysql' up
    When the uncached read is made
    Then the answer is 200 from origin

  @redis-master @fault:timeout
  Scenario: The Redis master breaker sends reads to the replica at once
    Given a user for the cached read
    And 'redis-master' times out
    When the cached read is made
    Then the answer is 200 from cache within the deadline, then fast
    When 'redis-master' is healthy again
    Then within 1 s, without any request, the service reports 'redis-master' up
