"""Saved runs: the schema of each result's ``extra_info`` (written once, read once into typed
results), the storage folder's layout by hardware class, a class's history of kept runs, and the
mark of an accepted run. Imports ``settings`` and the floors below it, never ``ranks``."""
