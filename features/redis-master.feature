@redis-master
Feature: Redis master faults (proxy 'redis-master'), with MariaDB and the replica healthy
  Reads of cached users come from the replica when the master cannot answer within the Redis
  deadline, and fast once the master's breaker has opened. Writes and deletes still succeed: MariaDB
  takes them, and a cache update that could not reach the master is remembered. Until the master is
  back this instance reads that user from MariaDB, never from the stale entry; within 1 s of the
  master's return the cache holds the new value (or no entry, after a delete) and reads come from the
  cache again.

  Each Examples table below is one row of the failure matrix.

  Scenario Outline: <operation> when 'redis-master' <fault>
    Given a user for the <operation>
    And 'redis-master' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And a read of that user during the fault answers what MariaDB holds
    And within 1 s of the faults being removed, that user is served as stored

    @fault:down
    Examples: down
      | fault   | operation     | answer          |
      | is down | cached read   | 200 from cache  |
      | is down | uncached read | 200 from origin |
      | is down | write         | 200             |
      | is down | delete        | 204             |

    @fault:latency
    Examples: latency under the deadline
      | fault                          | operation     | answer          |
      | has latency under its deadline | cached read   | 200 from cache  |
      | has latency under its deadline | uncached read | 200 from origin |
      | has latency under its deadline | write         | 200             |
      | has latency under its deadline | delete        | 204             |

    @fault:latency
    Examples: latency over the deadline
      | fault                         | operation     | answer                                        |
      | has latency over its deadline | cached read   | 200 from cache within the deadline, then fast |
      | has latency over its deadline | uncached read | 200 from origin                               |
      | has latency over its deadline | write         | 200                                           |
      | has latency over its deadline | delete        | 204                                           |

    @fault:timeout
    Examples: timeout (blackhole)
      | fault     | operation     | answer                                        |
      | times out | cached read   | 200 from cache within the deadline, then fast |
      | times out | uncached read | 200 from origin                               |
      | times out | write         | 200                                           |
      | times out | delete        | 204                                           |

    @fault:reset_peer
    Examples: reset_peer
      | fault              | operation     | answer                                        |
      | resets connections | cached read   | 200 from cache within the deadline, then fast |
      | resets connections | uncached read | 200 from origin                               |
      | resets connections | write         | 200                                           |
      | resets connections | delete        | 204                                           |

    @fault:slow_close
    Examples: slow_close
      | fault                       | operation     | answer          |
      | closes slowly after 2000 ms | cached read   | 200 from cache  |
      | closes slowly after 2000 ms | uncached read | 200 from origin |
      | closes slowly after 2000 ms | write         | 200             |
      | closes slowly after 2000 ms | delete        | 204             |

    @fault:slicer
    Examples: slicer (tiny packets)
      | fault                       | operation     | answer          |
      | slices packets into 3 bytes | cached read   | 200 from cache  |
      | slices packets into 3 bytes | uncached read | 200 from origin |
      | slices packets into 3 bytes | write         | 200             |
      | slices packets into 3 bytes | delete        | 204             |

    @fault:limit_data
    Examples: limit_data
      | fault                            | operation     | answer                   |
      | cuts connections after 100 bytes | cached read   | 200 from cache or origin |
      | cuts connections after 100 bytes | uncached read | 200 from origin          |
      | cuts connections after 100 bytes | write         | 200                      |
      | cuts connections after 100 bytes | delete        | 204                      |

    @fault:bandwidth
    Examples: bandwidth starvation (1 KB/s)
      | fault                | operation     | answer                   |
      | is limited to 1 KB/s | cached read   | 200 from cache or origin |
      | is limited to 1 KB/s | uncached read | 200 from origin          |
      | is limited to 1 KB/s | write         | 200                      |
      | is limited to 1 KB/s | delete        | 204                      |
