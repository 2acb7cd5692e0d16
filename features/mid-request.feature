@mysql @fault:down @mid-request
Feature: A fault that strikes mid-request
  MariaDB disappears while a request waits for its answer: the request gets a clean 503 within its
  deadline (or, for a write whose commit got through, possibly 2xx), never a hang, a crash or a wrong
  value, and the service recovers as soon as MariaDB is back.

  Scenario Outline: MariaDB goes away during the <operation>
    Given a user for the <operation>
    And 'mysql' has latency of half its deadline
    When the <operation> is started
    And once the request has reached 'mysql', it goes down
    And its answer arrives
    Then the answer is <answer>
    And MariaDB agrees with the answer
    And user-service is still live
    And within 1 s of the faults being removed, that user is served as stored

    Examples: MariaDB down mid-request
      | operation     | answer                         |
      | uncached read | 503 within the deadline        |
      | write         | 2xx or 503 within the deadline |
      | delete        | 204 or 503 within the deadline |
