"""The processes that train: the controller's worker group, the ranks it starts, the protocol both
sides speak through the store, paired rounds, and the agents and rendezvous of sets across nodes.
Imports ``settings`` and the floors below it."""
