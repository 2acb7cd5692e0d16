@network
Feature: A lossy network, slow connection set-up, and outages that end by themselves
  Loss as TCP shows it (tcp_loss): no byte is lost, but a lost segment stalls its direction for the
  retransmission timeout (200 ms). A stall longer than a call's deadline (Redis: 100 ms) costs that
  call, and the service answers from the other node or from MariaDB; one within it (MariaDB: 500 ms)
  only slows the answer. Every answer stays within the request deadline and is right.

  Loss as Toxiproxy's packet_loss does it: chunks of the stream vanish, so the service reads a broken
  stream (a reply missing, or another command's reply in its place). It must never answer with
  another user's data: a Redis reply that is not the command's drops the connection (desync), a
  missing one costs the call's deadline; a MariaDB exchange that stops making sense costs the
  statement (503 when it was the only way to answer).

  Slow connection set-up (slow_open, after the service's connections were closed): within its connect
  timeout the service reconnects and the next write goes through as usual; beyond it, it answers
  without the dependency (from the other cache node, from MariaDB, or 503) within the deadline, then
  fast.

  An outage with an end (a toxic with faultproxy's duration_ms, which removes itself): no step heals
  anything, the service finds the dependency back by itself and serves the user as stored within
  1 s of the outage's end.

  Scenario Outline: <operation> when 'redis-master' <fault>
    Given a user for the <operation>
    And 'redis-master' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And a read of that user during the fault answers what MariaDB holds
    And within 1 s of the faults being removed, that user is served as stored

    @redis-master @fault:tcp_loss
    Examples: Redis master: tcp_loss (30 %, stalls of 200 ms)
      | fault                           | operation     | answer                   |
      | stalls as TCP does at 30 % loss | cached read   | 200 from cache or origin |
      | stalls as TCP does at 30 % loss | uncached read | 200 from origin          |
      | stalls as TCP does at 30 % loss | write         | 200                      |
      | stalls as TCP does at 30 % loss | delete        | 204                      |

    @redis-master @fault:packet_loss
    Examples: Redis master: packet_loss (30 % of chunks dropped)
      | fault                        | operation     | answer                   |
      | loses 30 % of its packets    | cached read   | 200 from cache or origin |
      | loses 30 % of its packets    | uncached read | 200 from origin          |
      | loses 30 % of its packets    | write         | 200                      |
      | loses 30 % of its packets    | delete        | 204                      |

  Scenario Outline: <operation> when 'redis-master' is down and 'redis-replica' <fault>
    Given a user for the <operation>
    And 'redis-master' is down
    And 'redis-replica' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And a read of that user during the fault answers what MariaDB holds
    And within 1 s of the faults being removed, that user is served as stored

    @redis-master @redis-replica @fault:down @fault:tcp_loss
    Examples: Redis replica: tcp_loss (30 %), the master down
      | fault                           | operation     | answer                   |
      | stalls as TCP does at 30 % loss | cached read   | 200 from cache or origin |
      | stalls as TCP does at 30 % loss | uncached read | 200 from origin          |
      | stalls as TCP does at 30 % loss | write         | 200                      |
      | stalls as TCP does at 30 % loss | delete        | 204                      |

    @redis-master @redis-replica @fault:down @fault:packet_loss
    Examples: Redis replica: packet_loss (30 %), the master down
      | fault                     | operation     | answer                   |
      | loses 30 % of its packets | cached read   | 200 from cache or origin |
      | loses 30 % of its packets | uncached read | 200 from origin          |
      | loses 30 % of its packets | write         | 200                      |
      | loses 30 % of its packets | delete        | 204                      |

  Scenario Outline: <operation> when 'mysql' <fault>
    Given a user for the <operation>
    And 'mysql' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @mysql @fault:tcp_loss
    Examples: MariaDB: tcp_loss (30 %, stalls of 200 ms, within its deadline)
      | fault                           | operation     | answer               |
      | stalls as TCP does at 30 % loss | cached read   | 200 from cache, fast |
      | stalls as TCP does at 30 % loss | uncached read | 200 from origin      |
      | stalls as TCP does at 30 % loss | write         | 200                  |
      | stalls as TCP does at 30 % loss | delete        | 204                  |

    @mysql @fault:packet_loss
    Examples: MariaDB: packet_loss (30 % of chunks dropped)
      | fault                     | operation     | answer                 |
      | loses 30 % of its packets | cached read   | 200 from cache, fast   |
      | loses 30 % of its packets | uncached read | 200 from origin or 503 |
      | loses 30 % of its packets | write         | 200 or 503             |
      | loses 30 % of its packets | delete        | 204 or 503             |

  Scenario Outline: <operation> after the connections to '<proxy>' are closed and new ones open in <how> its connect timeout
    Given a user for the <operation>
    And '<proxy>' opens new connections in <how> its connect timeout
    And the connections to '<proxy>' are closed
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @redis-master @fault:slow_open
    Examples: Redis master: slow_open beyond the connect timeout
      | proxy        | how   | operation     | answer               |
      | redis-master | twice | cached read   | 200 from cache, fast |
      | redis-master | twice | uncached read | 200 from origin      |
      | redis-master | twice | write         | 200, fast            |
      | redis-master | twice | delete        | 204                  |

    @mysql @fault:slow_open
    Examples: MariaDB: slow_open beyond the connect timeout
      | proxy | how   | operation     | answer                             |
      | mysql | twice | cached read   | 200 from cache, fast               |
      | mysql | twice | uncached read | 503 within the deadline, then fast |
      | mysql | twice | write         | 503 within the deadline, then fast |
      | mysql | twice | delete        | 503 within the deadline, then fast |

  Scenario Outline: a write once the service reconnected to '<proxy>' through connections that open in half its connect timeout
    Given a user for the write
    And '<proxy>' opens new connections in half its connect timeout
    And the connections to '<proxy>' are closed
    When the service has reconnected to '<proxy>'
    And the write is made
    Then the answer is 2xx
    And MariaDB agrees with the answer
    And <effect>

    @redis-master @fault:slow_open
    Examples: Redis master
      | proxy        | effect                                  |
      | redis-master | the Redis master holds what was written |

    @mysql @fault:slow_open
    Examples: MariaDB
      | proxy | effect                                       |
      | mysql | a read of that user answers what was written |

  Scenario Outline: <operation> during an outage of '<proxy>' that ends by itself
    Given a user for the <operation>
    And '<proxy>' times out for 1500 ms, then recovers by itself
    When the <operation> is made
    Then the answer is <answer>
    And it was answered during the outage
    And MariaDB agrees with the answer
    And within 1 s of the outage's end, without any step healing it, that user is served as stored

    @mysql @fault:timeout
    Examples: MariaDB: blackholed for 1.5 s, then back by itself
      | proxy | operation     | answer                  |
      | mysql | cached read   | 200 from cache          |
      | mysql | uncached read | 503 within the deadline |
      | mysql | write         | 503 within the deadline |
      | mysql | delete        | 503 within the deadline |

    @redis-master @fault:timeout
    Examples: Redis master: blackholed for 1.5 s, then back by itself
      | proxy        | operation     | answer                             |
      | redis-master | cached read   | 200 from cache within the deadline |
      | redis-master | uncached read | 200 from origin                    |
      | redis-master | write         | 200                                |
      | redis-master | delete        | 204                                |

    @redis-replica @fault:timeout
    Examples: Redis replica: blackholed for 1.5 s, then back by itself
      | proxy         | operation     | answer          |
      | redis-replica | cached read   | 200 from cache  |
      | redis-replica | uncached read | 200 from origin |
      | redis-replica | write         | 200             |
      | redis-replica | delete        | 204             |
