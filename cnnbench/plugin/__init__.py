"""The pytest face: the plugin's options, fixtures and hooks (``hooks``, the entry point), a run's
session, and the one seam to pytest-benchmark's storage and session. The top floor beside ``cli``."""
