@ha
Feature: Failures of the HA topology
  What user-service promises over Sentinel, a replicated MariaDB and several instances (issue 11).
  The catalog never assumes which node is the Redis master or the MariaDB primary: it asks the
  Sentinels and the nodes. "Within 1 s" is the README's coherence bound; the steps allow it a margin
  for this loaded machine, and every other bound derives from GET /config or the Sentinels' settings.
  Each scenario's damage is repaired by the @ha Before hook of the next (support/ha.js, makeWhole).

  Scenario: The Redis master is killed under load
    Given a user is stored and cached, and read and written through HAProxy without pause
    When the Redis master is killed with SIGKILL
    Then the Sentinels promote a replica and every instance adopts it
    And every read through HAProxy was answered 200 with a value written to the user
    And the new master holds the last acknowledged write within 1 s of every instance adopting it
    And no read served a value older than a write acknowledged 1 s before it, once the new master was in use

  Scenario: The old Redis master returns as a replica and is never written
    Given the Redis master was killed and the Sentinels promoted a replica
    When the old master is started again, with every command it receives recorded
    Then the Sentinels make it a replica of the new master
    And no instance sends it a write, and the writes are on the new master

  Scenario: Two of the three Sentinels are down
    Given 'redis-sentinel-1' and 'redis-sentinel-2' are killed with SIGKILL
    Then reads and writes through HAProxy keep working with the current master for 3 discovery intervals

  Scenario: One instance is partitioned from the Redis master, another is not
    Given a user is stored and cached as 'Ann'
    And 'user-service-1' cannot reach the Redis master
    When the user is renamed 'Bob' through 'user-service-1'
    Then 'user-service-2' serves 'Bob' within 1 s of the acknowledgement
    When the user is renamed 'Cid' through 'user-service-2'
    Then 'user-service-1' serves 'Cid' within 1 s of the acknowledgement

  Scenario: The MariaDB primary is down, then the replica is promoted
    Given a cached user and an uncached user for each instance are stored
    When the MariaDB primary is killed with SIGKILL
    Then cached and uncached reads through the instances are answered 200, the uncached ones from the replica
    And a write through each instance is answered 503 within one MariaDB deadline
    When './dev failover mysql' runs
    Then writes through HAProxy are accepted within 1 s
    And the old primary, started again, is a read-only replica of the new one and takes no write

  Scenario: An instance is killed under load with cache updates pending
    Given 'user-service-2' cannot reach the Redis master
    And a user is read and written through HAProxy without pause
    When users are renamed through 'user-service-2', which is then killed with SIGKILL
    Then the master caches the new names within 1 s of each acknowledgement, and the other instances serve them
    And for 2 s every request through HAProxy succeeds within the request deadline

  Scenario: The instance holding the cache feed is stopped with SIGSTOP
    When the cache feed's lease holder is stopped with SIGSTOP under load
    Then another instance holds the cache feed within twice its lease
    And for 3 s every request through HAProxy is answered within HAProxy's server timeout and a request deadline, writes to the stopped one before HAProxy takes it out with 503, none by it after 2 s
    When the stopped instance is continued with SIGCONT
    Then exactly one instance holds the cache feed, and the continued one serves the last write within 1 s

  Scenario: Everything is restarted in a random order
    Given users are stored through HAProxy
    When every process of the stack is killed with SIGKILL and started again in a random order
    Then within 60 s the service answers reads and writes through HAProxy with the stored values, over a replicating MariaDB
