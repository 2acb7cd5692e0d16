@combination
Feature: Several dependencies failing at once
  With both Redis nodes gone, the service serves from MariaDB within the deadline. With the master
  gone and then MariaDB, cached reads still come from the replica (a known-stale entry is served,
  marked X-Cache-Stale: true, only because MariaDB cannot answer), everything else is 503. With
  everything gone, every answer is a quick 503 and the process keeps running.

  Each Examples table below is one row of the failure matrix.

  @redis-master @redis-replica @fault:down
  Scenario Outline: <operation> when both Redis nodes are down
    Given a user for the <operation>
    And 'redis-master' is down
    And 'redis-replica' is down
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    Examples: both Redis nodes down
      | operation     | answer          |
      | cached read   | 200 from origin |
      | uncached read | 200 from origin |
      | write         | 200             |
      | delete        | 204             |

  @redis-master @redis-replica @fault:timeout
  Scenario Outline: <operation> when both Redis nodes time out
    Given a user for the <operation>
    And 'redis-master' times out
    And 'redis-replica' times out
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    Examples: both Redis nodes blackholed
      | operation     | answer          |
      | cached read   | 200 from origin |
      | uncached read | 200 from origin |
      | write         | 200             |
      | delete        | 204             |

  @redis-master @mysql @fault:down
  Scenario Outline: <operation> when the Redis master is down, then MariaDB
    Given a user for the <operation>
    And 'redis-master' is down
    And 'mysql' is down
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And within 1 s of the faults being removed, that user is served as stored

    Examples: Redis master down, then MariaDB down
      | operation     | answer         |
      | cached read   | 200 from cache |
      | uncached read | 503            |
      | write         | 503            |
      | delete        | 503            |

  @redis-master @mysql @fault:down
  Scenario: A known-stale entry is served, marked, only while MariaDB is down too
    Given user 'u-12345abde234' with name 'Jack' is cached
    And user 'u-12345abde234' with name 'Jack' is stored
    And 'redis-master' is down
    And user is updated with id 'u-12345abde234' and name 'Joe'
    And HTTP 200 is returned
    When 'mysql' is down
    And user 'u-12345abde234' is requested
    Then the stale user with id 'u-12345abde234' and name 'Jack' is returned from 'Redis', marked stale

  @mysql @redis-master @redis-replica @fault:down
  Scenario Outline: <operation> when everything is down
    Given a user for the <operation>
    And every dependency is down
    When the <operation> is made
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And user-service is still live
    And within 1 s of the faults being removed, that user is served as stored

    Examples: everything down
      | operation     | answer   |
      | cached read   | 503 fast |
      | uncached read | 503 fast |
      | write         | 503 fast |
      | delete        | 503 fast |
