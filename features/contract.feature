@contract
Feature: The HTTP contract holds
  docs/openapi.yaml is the contract other teams generate clients from. It must be a valid, lint-clean
  OpenAPI document, and the running service must answer as it says: every documented status is
  provoked, and each answer is validated against the contract by Prism's validation proxy (or, for
  the answers Prism cannot route or read, against the contract's response objects directly).

  Scenario: The contract is valid OpenAPI without lint errors or warnings
    When docs/openapi.yaml is linted by Spectral (spectral:oas) and Redocly (recommended)
    Then neither linter reports a problem

  @slow
  Scenario: Every documented status the service answers matches the contract
    When requests provoking every documented status are sent through Prism's validation proxy
    Then every answer has its expected status and matches the contract

  Scenario: The client's time budget is answered as the contract says
    When requests with a spent or an invalid X-Request-Timeout-Ms are sent through Prism's validation proxy
    Then every answer has its expected status and matches the contract
