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

    @mysql
    Examples: MariaDB
      | proxy | outage             | operation     | answer          |
      | mysql | is down            | uncached read | 200 from origin |
      | mysql | times out          | uncached read | 200 from origin |
      | mysql | resets connections | uncached read | 200 from origin |

    @redis-master
    Examples: Redis master
      | proxy        | outage             | operation   | answer               |
      | redis-master | is down            | cached read | 200 from cache, fast |
      | redis-master | times out          | cached read | 200 from cache, fast |
      | redis-master | resets connections | cached read | 200 from cache, fast |

    @redis-replica
    Examples: Redis replica
      | proxy         | outage             | operation   | answer               |
      | redis-replica | is down            | cached read | 200 from cache, fast |
      | redis-replica | times out          | cached read | 200 from cache, fast |
      | redis-replica | resets connections | cached read | 200 from cache, fast |
