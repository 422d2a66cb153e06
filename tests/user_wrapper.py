"""A parallel wrapper registered outside cnnbench, the way a user adds one: ``-p user_wrapper``."""

import torch
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from cnnbench.workload.wrappers import Wrapper, register_wrapper


def _ddp_fp16_grads(model: nn.Module, devices: list[torch.device]) -> nn.Module:
    """DDP that all-reduces gradients in fp16: half the bytes on the wire."""
    wrapped = nn.parallel.DistributedDataParallel(model)
    wrapped.register_comm_hook(None, default_hooks.fp16_compress_hook)
    return wrapped


register_wrapper(Wrapper("ddp_fp16_grads", _ddp_fp16_grads, process_per_device=True))
