"""What a run was asked to do: the option table (flags, ini keys, help, parsers), the frozen
``Settings`` read from it once, and the ``Case`` of each configuration. Imports ``machine``,
``workload`` and ``results``."""
