"""The machine a run meets: device sets and kinds, the environment fingerprint and its hardware class,
NVML facts, network interfaces and rendezvous addresses, and the lifeline that binds a started process
to its parent. The ground floor: imports nothing else of cnnbench."""
