# The plugin tests drive pytest in a subprocess-free sandbox through pytester.
pytest_plugins = ("pytester",)
