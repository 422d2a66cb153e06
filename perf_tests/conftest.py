"""This folder is a cnnbench suite: pytest runs that collect it switch the cnnbench plugin on
(environment fingerprint, storage by hardware class, the speedup gate), with or without options."""

CNNBENCH_SUITE = True
