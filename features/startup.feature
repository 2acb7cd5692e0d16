@mysql @redis-master @redis-replica @startup
Feature: Start-up with dependencies missing
  The service starts and listens whatever is missing, reports not-ready naming what is down, answers
  503 meanwhile, and becomes fully ready, creating its schema, within 1 s of the dependencies' return,
  without a restart. (These scenarios start a second user-service of their own, with its own port and
  database, through the same proxies.)

  @fault:down
  Scenario: Start-up with every dependency down
    Given every dependency is down
    When a second user-service starts
    Then it listens and is live within 10 s
    And it reports not ready, naming every dependency down
    And it answers a request for a user with 503
    When every dependency is up again
    Then within 1 s the second user-service reports every dependency up
    And the second user-service stores and serves a user in its own new database
