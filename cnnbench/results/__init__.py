"""A run's results as typed values, their speedups with bootstrap intervals, and the verdicts that judge
them against a baseline or a minimum. Pure arithmetic on typed values: imports no other floor."""
