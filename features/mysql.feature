@mysql
Feature: MariaDB faults (proxy 'mysql'), with Redis healthy
  Cached reads never need MariaDB: they stay 200 from the cache at healthy latency, whatever MariaDB
  does. Uncached reads, writes and deletes answer within the request deadline: 200 when MariaDB
  answers in time, otherwise 503 with Retry-After, failing fast once the MariaDB breaker has opened.
  A write answered 2xx is in MariaDB; one answered 503 left nothing behind when MariaDB was
  unreachable. Within 1 s of the fault being removed, the user is served as stored, from the cache.

  Each Examples table below is one row of the failure matrix: a fault, and the answer for each
  operation.

  Scenario Outline: <operation> when 'mysql' <fault>
    Given a user for the <operation>
    And 'mysql' <fault>
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    @fault:down
    Examples: down
      | fault   | operation     | answer               |
      | is down | cached read   | 200 from cache, fast |
      | is down | uncached read | 503 fast             |
      | is down | write         | 503 fast             |
      | is down | delete        | 503 fast             |

    @fault:latency
    Examples: latency under the deadline
      | fault                          | operation     | answer               |
      | has latency under its deadline | cached read   | 200 from cache, fast |
      | has latency under its deadline | uncached read | 200 from origin      |
      | has latency under its deadline | write         | 200                  |
      | has latency under its deadline | delete        | 204                  |

    @fault:latency
    Examples: latency over the deadline
      | fault                         | operation     | answer                             |
      | has latency over its deadline | cached read   | 200 from cache, fast               |
      | has latency over its deadline | uncached read | 503 within the deadline, then fast |
      | has latency over its deadline | write         | 503 within the deadline, then fast |
      | has latency over its deadline | delete        | 503 within the deadline, then fast |

    @fault:timeout
    Examples: timeout (blackhole)
      | fault     | operation     | answer                             |
      | times out | cached read   | 200 from cache, fast               |
      | times out | uncached read | 503 within the deadline, then fast |
      | times out | write         | 503 within the deadline, then fast |
      | times out | delete        | 503 within the deadline, then fast |

    @fault:reset_peer
    Examples: reset_peer
      | fault              | operation     | answer                 |
      | resets connections | cached read   | 200 from cache, fast   |
      | resets connections | uncached read | 200 from origin or 503 |
      | resets connections | write         | 2xx or 503             |
      | resets connections | delete        | 204 or 503             |

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
      | fault                            | operation     | answer                 |
      | cuts connections after 100 bytes | cached read   | 200 from cache, fast   |
      | cuts connections after 100 bytes | uncached read | 200 from origin or 503 |
      | cuts connections after 100 bytes | write         | 2xx or 503             |
      | cuts connections after 100 bytes | delete        | 204 or 503             |

    @fault:bandwidth
    Examples: bandwidth starvation (1 KB/s)
      | fault                | operation     | answer                                      |
      | is limited to 1 KB/s | cached read   | 200 from cache, fast                        |
      | is limited to 1 KB/s | uncached read | 200 from origin or 503, within the deadline |
      | is limited to 1 KB/s | write         | 2xx or 503, within the deadline             |
      | is limited to 1 KB/s | delete        | 204 or 503, within the deadline             |
