@protocol
Feature: Redis and MariaDB refusing commands, as real outages show it (faultproxy's protocol toxics)
  A dependency that is up can still refuse: a Redis master demoted by a failover answers writes
  READONLY, a replica resynchronising answers LOADING, a full one OOM; MariaDB rolls a statement back
  over a deadlock or a lock wait timeout, refuses writes while read-only (after a failover), or loses
  a connection in the middle of a result. faultproxy answers exactly those commands or statements in
  the server's place (redis_error, mysql_error) and lets everything else through.

  Redis refusing cache writes never costs a write: MariaDB takes it, the cache update is counted
  failed and queued, and until the master takes it this instance reads that user from MariaDB, never
  from the old entry. With a fixed master address (this stack has no Sentinel) there is no other
  master to find: the service keeps the address, treats READONLY as the master being unavailable
  (its breaker counts it) and applies the queued update once the master takes writes again. With
  Sentinel (the HA stack), READONLY makes it ask the Sentinels for the master at once
  (ha/failover.feature covers the real failover).

  A MariaDB deadlock or lock wait timeout rolled the statement back: nothing was written, so the
  service makes the write once more within the request deadline (counted in
  user_service_mysql_write_retries_total), and the write succeeds unless the conflict persists. A
  read-only MariaDB refuses the write: 503, saying that nothing was written. A connection cut in the
  middle of a result is answered from the cache, or 503; the pool recovers by itself. A write made as
  the MariaDB breaker's half-open trial is a real call: if its answer is cut, its 503 says that the
  write may have been applied, never that MariaDB was not called.

  Scenario Outline: <operation> when 'redis-master' answers cache writes with <error>
    Given a user for the <operation>
    And 'redis-master' answers cache writes with <error>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And a read of that user during the fault answers what MariaDB holds
    And within 1 s of the faults being removed, that user is served as stored

    @redis-master @fault:redis_error
    Examples: Redis master: READONLY on cache writes (demoted by a failover)
      | error    | operation     | answer          |
      | READONLY | cached read   | 200 from cache  |
      | READONLY | uncached read | 200 from origin |
      | READONLY | write         | 200             |
      | READONLY | delete        | 204             |

    @redis-master @fault:redis_error
    Examples: Redis master: OOM on cache writes (maxmemory reached)
      | error | operation     | answer          |
      | OOM   | cached read   | 200 from cache  |
      | OOM   | uncached read | 200 from origin |
      | OOM   | write         | 200             |
      | OOM   | delete        | 204             |

  @redis-master @fault:redis_error
  Scenario Outline: the cache update a write could not make on a master answering <error> is counted and not served stale
    Given a user for the write
    And 'redis-master' answers cache writes with <error>
    When the write is made
    Then the answer is 200
    And the service counted a failed call to 'redis-master'
    And a read of that user during the fault answers what MariaDB holds
    And within 1 s of the faults being removed, that user is served as stored

    Examples:
      | error    |
      | READONLY |
      | OOM      |

  Scenario Outline: <operation> when 'redis-master' is down and 'redis-replica' answers cache reads with LOADING
    Given a user for the <operation>
    And 'redis-master' is down
    And 'redis-replica' answers cache reads with LOADING
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @redis-master @redis-replica @fault:down @fault:redis_error
    Examples: Redis replica: LOADING on reads (resynchronising), the master down
      | operation     | answer          |
      | cached read   | 200 from origin |
      | uncached read | 200 from origin |
      | write         | 200             |
      | delete        | 204             |

  Scenario Outline: <operation> when 'mysql' answers <statements> with <error>
    Given a user for the <operation>
    And 'mysql' answers <statements> with <error>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @mysql @fault:mysql_error
    Examples: MariaDB: deadlock (1213) on every write
      | statements | error      | operation     | answer               |
      | writes     | a deadlock | cached read   | 200 from cache, fast |
      | writes     | a deadlock | uncached read | 200 from origin      |
      | writes     | a deadlock | write         | 503                  |
      | writes     | a deadlock | delete        | 503                  |

    @mysql @fault:mysql_error
    Examples: MariaDB: lock wait timeout (1205) on every write
      | statements | error               | operation     | answer               |
      | writes     | a lock wait timeout | cached read   | 200 from cache, fast |
      | writes     | a lock wait timeout | uncached read | 200 from origin      |
      | writes     | a lock wait timeout | write         | 503                  |
      | writes     | a lock wait timeout | delete        | 503                  |

    @mysql @fault:mysql_error
    Examples: MariaDB: read-only (1290) on writes, as after a failover
      | statements | error     | operation     | answer               |
      | writes     | read-only | cached read   | 200 from cache, fast |
      | writes     | read-only | uncached read | 200 from origin      |
      | writes     | read-only | write         | 503                  |
      | writes     | read-only | delete        | 503                  |

    @mysql @fault:mysql_error
    Examples: MariaDB: connection cut mid-result (2013) on reads
      | statements     | error                       | operation     | answer               |
      | reads of users | a connection cut mid-result | cached read   | 200 from cache, fast |
      | reads of users | a connection cut mid-result | uncached read | 503                  |
      | reads of users | a connection cut mid-result | write         | 200                  |
      | reads of users | a connection cut mid-result | delete        | 204                  |

  @mysql @fault:mysql_error
  Scenario Outline: a write that MariaDB rolls back over <error> on its first try is made once more and succeeds
    Given a user for the write
    And 'mysql' answers the first try of a write with <error>
    When the write is made
    Then the answer is 200
    And the error answered only the first try
    And the service made the write a second time
    And MariaDB agrees with the answer
    And a read of that user answers what was written

    Examples:
      | error               |
      | a deadlock          |
      | a lock wait timeout |

  @mysql @fault:mysql_error
  Scenario Outline: a write that MariaDB rolls back over <error> on every try is made twice, then refused
    Given a user for the write
    And 'mysql' answers writes with <error>
    When the write is made
    Then the answer is 503
    And its error says that nothing was written
    And the service made the write a second time
    And MariaDB agrees with the answer

    Examples:
      | error               |
      | a deadlock          |
      | a lock wait timeout |

  @mysql @fault:mysql_error
  Scenario: a write refused by a read-only MariaDB is not made again, and says nothing was written
    Given a user for the write
    And 'mysql' answers writes with read-only
    When the write is made
    Then the answer is 503
    And its error says that nothing was written
    And the service made the write once
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

  @mysql @fault:mysql_error
  Scenario: a write that is the MariaDB breaker's trial and loses its answer says it may have been applied
    Given a user for the write
    And 'mysql' answers every statement with a connection cut mid-result
    And the MariaDB breaker has opened after fast failures
    When the write is made
    Then the answer is 503
    And its error says that MariaDB received the write and may have applied it
    And MariaDB holds what was written
