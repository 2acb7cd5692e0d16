@recovery @recovery-window
Feature: The first request after a dependency returns
  No refusal window after a dependency's return. When it refused connections while it was down (the
  proxy disabled: connection refused), a request may itself try it, one at a time, at the cost of a
  refused connection attempt: so the very first write after its return succeeds. When it timed out (a
  blackhole), no request tries it (that would cost a deadline each time it is still dead): requests
  fail fast until the service's own probe finds it back, within 1 s. In neither case does the first
  request wait for a deadline.

  Scenario Outline: a write right after '<proxy>' returns from being down
    Given a user for the write
    And '<proxy>' is down
    And the service has noticed that '<proxy>' is not up
    When '<proxy>' is up
    And the write is made
    Then the answer is 2xx
    And that answer did not wait for a deadline
    And MariaDB agrees with the answer
    And <effect>

    @mysql @fault:down
    Examples: MariaDB
      | proxy | effect                                       |
      | mysql | a read of that user answers what was written |

    @redis-master @fault:down
    Examples: Redis master
      | proxy        | effect                                  |
      | redis-master | the Redis master holds what was written |

    @redis-replica @fault:down
    Examples: Redis replica
      | proxy         | effect                                       |
      | redis-replica | a read of that user answers what was written |

  Scenario Outline: a write right after '<proxy>' stops timing out
    Given a user for the write
    And '<proxy>' times out
    And the service has noticed that '<proxy>' is not up
    When '<proxy>' is up
    And the write is made
    Then the answer is <first>
    And that answer did not wait for a deadline
    And MariaDB agrees with the answer
    When the service is using '<proxy>' again
    And the write is made
    Then the answer is 2xx
    And <effect>

    @mysql @fault:timeout
    Examples: MariaDB
      | proxy | first      | effect                                       |
      | mysql | 2xx or 503 | a read of that user answers what was written |

    @redis-master @fault:timeout
    Examples: Redis master
      | proxy        | first | effect                                  |
      | redis-master | 2xx   | the Redis master holds what was written |

    @redis-replica @fault:timeout
    Examples: Redis replica
      | proxy         | first | effect                                       |
      | redis-replica | 2xx   | a read of that user answers what was written |
