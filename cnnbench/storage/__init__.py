"""Saved runs: the schema of each result's ``extra_info`` (written once, read once into typed
results) and the storage folder's layout by hardware class. Imports ``settings`` and the floors
below it, never ``ranks``."""
