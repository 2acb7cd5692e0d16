@ha
Feature: The HA stack is what it claims to be
  The @ha scenarios run against the HA stack (`./dev up --ha`): 3 Redis nodes under 3 Sentinels, a
  MariaDB primary with a semi-synchronous replica, 3 user-service instances behind HAProxy, faultproxy
  in front of every Redis and MariaDB node. Before each scenario the stack is made whole again (every
  process running, faults removed, the Sentinels in agreement, every instance ready). These scenarios
  check the stack itself before anything is blamed on the service.

  Scenario: The Sentinels agree on the Redis master and see the whole deployment
    Then the 3 Sentinels name the same Redis master, through its proxy
    And that node answers ROLE as master and the 2 others as its replicas
    And each Sentinel sees 2 replicas and 2 other Sentinels

  Scenario: A write on the Redis master reaches both replicas
    When a fresh value is set on the Redis master the Sentinels name
    Then both Redis replicas return it within 3000 ms

  Scenario: The MariaDB replica applies what the primary commits, semi-synchronously
    Then semi-synchronous replication is on at the MariaDB primary, with 1 replica connected
    When a row is committed on the MariaDB primary
    Then the MariaDB replica has applied its GTID within 2000 ms
    And the MariaDB replica refuses a write

  Scenario: HAProxy spreads requests over the 3 instances
    When 30 requests for a user are made through HAProxy
    Then each of the 3 instances served some of them, by HAProxy's header and by its own metrics

  Scenario: HAProxy keeps answering while an instance is killed
    Given a stored user is read through HAProxy without pause
    When 'user-service-2' is killed with SIGKILL
    Then for 2 s every read through HAProxy is answered 200 within 1500 ms
    When './dev restart user-service-2' brings it back
    Then HAProxy sends requests to 'user-service-2' again within 5 s

  Scenario: HAProxy keeps answering while an instance is stopped
    Given a stored user is read through HAProxy without pause
    When 'user-service-3' is stopped with SIGSTOP
    Then for 3 s every read through HAProxy is answered 200 within 2000 ms
    And HAProxy sends no request to 'user-service-3' from 2 s after it stopped
    When 'user-service-3' is continued with SIGCONT
    Then HAProxy sends requests to 'user-service-3' again within 5 s

  Scenario: ./dev failover mysql promotes the replica and the old primary follows it
    Given the MariaDB primary and its replica
    When './dev failover mysql' runs
    Then the old replica is writable and the old primary is read-only
    And a row committed on the new primary reaches the old primary within 2000 ms
    And semi-synchronous replication is on at the MariaDB primary, with 1 replica connected
    When './dev failover mysql' runs
    Then the first primary is the primary again and its replica follows it
