Feature: The stack under test is real
  The failure-mode catalog runs against real servers started for the run. These scenarios check that
  the stack is what it claims to be before anything is blamed on the service.

  Scenario: The Redis replica follows the master
    When the key 'stack-check' is set to 'hello' on the Redis master
    Then the Redis replica returns 'hello' for 'stack-check' within 3000 ms

  Scenario: MariaDB accepts SQL over TCP
    Then MariaDB answers 'SELECT 1 + 1' with '2'
