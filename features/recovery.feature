@recovery
Feature: Recovery without restart
  Within 1 s of a dependency coming back, the service uses it again. Its background health probes
  find out, not user traffic: here nothing but /health/ready is asked until the service reports the
  dependency up.

  Scenario Outline: recovery after '<proxy>' <outage>
    Given a user for the <operation>
    And '<proxy>' <outage>
    And the service has noticed that '<proxy>' is not up
    When '<proxy>' is healthy again
    Then within 1 s, without any request, the service reports '<proxy>' up
    When the <operation> is made
    Then the answer is <answer>

    @mysql @fault:down
    Examples: MariaDB down
      | proxy | outage  | operation     | answer          |
      | mysql | is down | uncached read | 200 from origin |

    @mysql @fault:timeout
    Examples: MariaDB timed out
      | proxy | outage    | operation     | answer          |
      | mysql | times out | uncached read | 200 from origin |

    @mysql @fault:reset_peer
    Examples: MariaDB resetting connections
      | proxy | outage             | operation     | answer          |
      | mysql | resets connections | uncached read | 200 from origin |

    @redis-master @fault:down
    Examples: Redis master down
      | proxy        | outage  | operation   | answer               |
      | redis-master | is down | cached read | 200 from cache, fast |

    @redis-master @fault:timeout
    Examples: Redis master timed out
      | proxy        | outage    | operation   | answer               |
      | redis-master | times out | cached read | 200 from cache, fast |

    @redis-master @fault:reset_peer
    Examples: Redis master resetting connections
      | proxy        | outage             | operation   | answer               |
      | redis-master | resets connections | cached read | 200 from cache, fast |

    @redis-replica @fault:down
    Examples: Redis replica down
      | proxy         | outage  | operation   | answer               |
      | redis-replica | is down | cached read | 200 from cache, fast |

    @redis-replica @fault:timeout
    Examples: Redis replica timed out
      | proxy         | outage    | operation   | answer               |
      | redis-replica | times out | cached read | 200 from cache, fast |

    @redis-replica @fault:reset_peer
    Examples: Redis replica resetting connections
      | proxy         | outage             | operation   | answer               |
      | redis-replica | resets connections | cached read | 200 from cache, fast |
