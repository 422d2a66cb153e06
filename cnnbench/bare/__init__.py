"""Hand-written loops with none of cnnbench's machinery, the references for its figures: a training
step (``python -m cnnbench.bare``) and an all-reduce (``torchrun ... -m cnnbench.bare.all_reduce``)."""
