"""Every registered model trains; the reference model is exactly the published architecture."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnbench.workload.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward(name):
    model = create_model(name).train()
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 9])).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_reference_googlenet_counts():
    model = create_model("googlenet_cifar").eval()
    assert sum(p.numel() for p in model.parameters()) == 6_166_250
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 32, 32))
    assert counter.get_total_flops() == 2 * 1_521_756_160  # FLOPs = 2 x MACs


def test_small_googlenet_is_the_quarter_width_variant():
    assert sum(p.numel() for p in create_model("googlenet_cifar_small").parameters()) == 392_738


def test_resnet18_cifar_stem():
    model = create_model("resnet18_cifar")
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown model 'vgg'; valid models: .*googlenet_cifar"):
        create_model("vgg")
