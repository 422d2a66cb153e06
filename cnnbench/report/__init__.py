"""What people read: a run judged as terminal text and Markdown, aligned tables, the plot, and a
hardware class's history of saved runs. Imports ``storage`` and the floors below it."""
