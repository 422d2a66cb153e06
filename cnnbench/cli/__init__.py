"""The ``cnnbench`` command: judge saved runs, show their history, accept a run as the baseline, join a
multi-node run. The top floor beside ``plugin``; never imported by the pytest plugin."""
