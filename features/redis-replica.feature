@redis-replica
Feature: Redis replica faults (proxy 'redis-replica'), with the master and MariaDB healthy
  Reads use the master, so no fault of the replica has any visible effect on any operation: cached
  reads stay fast, from the cache.

  Each Examples table below is one row of the failure matrix.

  Scenario Outline: <operation> when 'redis-replica' <fault>
    Given a user for the <operation>
    And 'redis-replica' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @fault:down
    Examples: down
      | fault   | operation     | answer               |
      | is down | cached read   | 200 from cache, fast |
      | is down | uncached read | 200 from origin      |
      | is down | write         | 200                  |
      | is down | delete        | 204                  |

    @fault:latency
    Examples: latency under the deadline
      | fault                          | operation     | answer               |
      | has latency under its deadline | cached read   | 200 from cache, fast |
      | has latency under its deadline | uncached read | 200 from origin      |
      | has latency under its deadline | write         | 200                  |
      | has latency under its deadline | delete        | 204                  |

    @fault:latency
    Examples: latency over the deadline
      | fault                         | operation     | answer               |
      | has latency over its deadline | cached read   | 200 from cache, fast |
      | has latency over its deadline | uncached read | 200 from origin      |
      | has latency over its deadline | write         | 200                  |
      | has latency over its deadline | delete        | 204                  |

    @fault:timeout
    Examples: timeout (blackhole)
      | fault     | operation     | answer               |
      | times out | cached read   | 200 from cache, fast |
      | times out | uncached read | 200 from origin      |
      | times out | write         | 200                  |
      | times out | delete        | 204                  |

    @fault:reset_peer
    Examples: reset_peer
      | fault              | operation     | answer               |
      | resets connections | cached read   | 200 from cache, fast |
      | resets connections | uncached read | 200 from origin      |
      | resets connections | write         | 200                  |
      | resets connections | delete        | 204                  |

    @fault:slow_close
    Examples: slow_close
      | fault                       | operation     | answer               |
      | closes slowly after 2000 ms | cached read   | 200 from cache, fast |
      | closes slowly after 2000 ms | uncached read | 200 from origin      |
      | closes slowly after 2000 ms | write         | 200                  |
      | closes slowly after 2000 ms | delete        | 204                  |

    @fault:slicer
    Examples: slicer (tiny packets)
      | fault                       | operation     | answer               |
      | slices packets into 3 bytes | cached read   | 200 from cache, fast |
      | slices packets into 3 bytes | uncached read | 200 from origin      |
      | slices packets into 3 bytes | write         | 200                  |
      | slices packets into 3 bytes | delete        | 204                  |

    @fault:limit_data
    Examples: limit_data
      | fault                            | operation     | answer               |
      | cuts connections after 100 bytes | cached read   | 200 from cache, fast |
      | cuts connections after 100 bytes | uncached read | 200 from origin      |
      | cuts connections after 100 bytes | write         | 200                  |
      | cuts connections after 100 bytes | delete        | 204                  |

    @fault:bandwidth
    Examples: bandwidth starvation (1 KB/s)
      | fault                | operation     | answer               |
      | is limited to 1 KB/s | cached read   | 200 from cache, fast |
      | is limited to 1 KB/s | uncached read | 200 from origin      |
      | is limited to 1 KB/s | write         | 200                  |
      | is limited to 1 KB/s | delete        | 204                  |
