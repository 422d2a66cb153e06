"""A run's results as typed values, their speedups with bootstrap intervals, and the verdicts that judge
them against a baseline, a minimum, or the protected level of their saved history (its change points
found by ruptures, imported when used). Pure arithmetic on typed values: imports only ``settings``
(the gate's rules), and nothing that starts a process or reads a file."""
