@faultproxy
Feature: The fault steps do what they say
  Every scenario of the catalog relies on faultproxy doing what Toxiproxy does when the real
  toxiproxy-node-client asks it to. Here each generic fault step is applied to a proxy of the
  catalog's own, 'scratch' (created through the client on 127.0.0.1:0, in front of the Redis master,
  unused by the service), and seen at work on a raw Redis exchange through it, with generous timing
  bounds. (These bounds are the faults' own parameters, not the service's deadlines.)

  @fault:down
  Scenario: A proxy that is down refuses connections
    Given 'scratch' is down
    When a PING is sent through 'scratch'
    Then the connection is refused

  @fault:down
  Scenario: A proxy that is up again passes traffic
    Given 'scratch' is down
    And 'scratch' is healthy again
    When a PING is sent through 'scratch'
    Then PONG arrives intact

  @fault:latency
  Scenario Outline: Latency <latency>
    Given 'scratch' has latency of <latency>
    When a PING is sent through 'scratch'
    Then PONG arrives after <min> to <max> ms

    Examples:
      | latency                | min | max |
      | 60 ms                  | 58  | 800 |
      | 60 ms upstream         | 58  | 800 |
      | 60 ms ± 20 ms          | 38  | 820 |
      | 60 ms ± 20 ms upstream | 38  | 820 |

  @fault:timeout
  Scenario: Timing out without a time holds the data and the connection
    Given 'scratch' times out
    When a PING is sent through 'scratch' and the answer awaited for a while
    Then nothing arrives and the connection stays open

  @fault:timeout
  Scenario: Timing out after a time closes the connection then
    Given 'scratch' times out after 300 ms
    When a PING is sent through 'scratch'
    Then nothing arrives and the connection is closed after 295 to 1500 ms

  @fault:reset_peer
  Scenario: Resetting connections sends a TCP reset as the data arrives
    Given 'scratch' resets connections
    When a PING is sent through 'scratch'
    Then the connection is reset after 0 to 1000 ms

  @fault:reset_peer
  Scenario: Resetting connections after a time sends the reset then
    Given 'scratch' resets connections after 300 ms
    When a PING is sent through 'scratch'
    Then the connection is reset after 295 to 1500 ms

  @fault:slow_close
  Scenario: Closing slowly delays the close, not the data
    Given 'scratch' closes slowly after 400 ms
    When QUIT is sent through 'scratch'
    Then +OK arrives at once, and the close after 395 to 1600 ms

  @fault:bandwidth
  Scenario: A bandwidth limit paces the bytes
    Given 'scratch' is limited to 20 KB/s
    When a value of 10 KB is read through 'scratch'
    Then the value arrives intact after 450 to 3000 ms

  @fault:slicer
  Scenario: Sliced packets arrive intact
    Given 'scratch' slices packets into 3 bytes
    When a PING is sent through 'scratch'
    Then PONG arrives intact

  @fault:limit_data
  Scenario: Cutting connections after some bytes passes exactly those bytes
    Given 'scratch' cuts connections after 3 bytes
    When a PING is sent through 'scratch'
    Then exactly '+PO' arrives, then the connection is closed

  # Toxics are added to and removed from links that are already open: whatever a toxic did, once it is
  # removed the link carries every byte again, or it was closed (as Toxiproxy closes a connection a
  # timeout toxic held, and resets one a reset_peer toxic was counting down on). An open link that
  # silently lost bytes would leave its client out of step with the server.
  Scenario Outline: Removing <toxic> from a live link loses no byte
    Given a connection through 'scratch' sends a PING every 20 ms
    When 'scratch' <fault>
    And 100 ms later 'scratch' is healthy again
    Then within 600 ms every PING sent has been answered, unless the connection was closed

    @fault:latency
    Examples: latency
      | toxic   | fault                 |
      | latency | has latency of 300 ms |

    @fault:timeout
    Examples: timeout
      | toxic   | fault     |
      | timeout | times out |

    @fault:reset_peer
    Examples: reset_peer
      | toxic      | fault                           |
      | reset_peer | resets connections after 300 ms |

    @fault:slow_close
    Examples: slow_close
      | toxic      | fault                      |
      | slow_close | closes slowly after 300 ms |

    @fault:bandwidth
    Examples: bandwidth
      | toxic     | fault                |
      | bandwidth | is limited to 1 KB/s |

    @fault:slicer
    Examples: slicer
      | toxic  | fault                       |
      | slicer | slices packets into 3 bytes |

    @fault:limit_data
    Examples: limit_data
      | toxic      | fault                               |
      | limit_data | cuts connections after 100000 bytes |
