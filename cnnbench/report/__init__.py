"""What people read: a run judged as terminal text and Markdown, aligned tables, the plot, a
hardware class's history of saved runs with its change points, and what CI reads (the verdict file,
GitHub annotations). Imports ``storage`` and the floors below it."""
