"""A run's results as typed values, their speedups with bootstrap intervals, and the verdicts that judge
them against a baseline or a minimum. Pure arithmetic on typed values: imports only ``settings``
(the gate's rules), and nothing that starts a process or reads a file."""
