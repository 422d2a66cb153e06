"""What a run was asked to do: the option table (flags, ini keys, help, parsers), the frozen
``Settings`` read from it once, the gate's thresholds, and the ``Case`` of each configuration.
Imports ``machine`` and ``workload``."""
