"""The first module the warm server imports (see ``cnnbench.ranks.warm``); importing it is its job.

The server is multiprocessing's forkserver, started by the controller's main thread: from this
import on, the kernel kills it when the controller dies, even by SIGKILL, and it takes its ranks
along (each rank is bound to the server in turn). Nothing else in cnnbench acts at import.
"""

from cnnbench.machine.lifeline import killed_with_parent

killed_with_parent()
