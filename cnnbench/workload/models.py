"""Model registry: CIFAR-sized networks (3x32x32 in, ``num_classes`` logits out) by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Add a builder ``fn(num_classes=...) -> nn.Module`` under its function name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_module(name: str) -> str:
    """The module that registers ``name``: worker processes import it before building."""
    return _builder(name).__module__


def create_model(name: str, num_classes: int = 10) -> nn.Module:
    return _builder(name)(num_classes=num_classes)


def _builder(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _MODELS[name]


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel_size: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Inception(nn.Module):
    """Four branches, concatenated: 1x1 | 1x1->3x3 | 1x1->3x3->3x3 | maxpool->1x1."""

    def __init__(self, cin: int, n1: int, n3red: int, n3: int, n5red: int, n5: int, pool: int):
        super().__init__()
        self.b1 = ConvBNReLU(cin, n1)
        self.b2 = nn.Sequential(ConvBNReLU(cin, n3red), ConvBNReLU(n3red, n3, 3))
        self.b3 = nn.Sequential(ConvBNReLU(cin, n5red), ConvBNReLU(n5red, n5, 3), ConvBNReLU(n5, n5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBNReLU(cin, pool))
        self.out_channels = n1 + n3 + n5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


# (1x1, 3x3red, 3x3, 5x5red, 5x5, pool) per block; "pool" marks a 3x3/2 max-pool.
_GOOGLENET_CIFAR = [
    (64, 96, 128, 16, 32, 32),  # a3
    (128, 128, 192, 32, 96, 64),  # b3
    "pool",
    (192, 96, 208, 16, 48, 64),  # a4
    (160, 112, 224, 24, 64, 64),  # b4
    (128, 128, 256, 24, 64, 64),  # c4
    (112, 144, 288, 32, 64, 64),  # d4
    (256, 160, 320, 32, 128, 128),  # e4
    "pool",
    (256, 160, 320, 32, 128, 128),  # a5
    (384, 192, 384, 48, 128, 128),  # b5
]


class GoogLeNetCIFAR(nn.Module):
    """The widely used CIFAR-10 GoogLeNet: 3x3 stem, no early downsampling, 32->16->8 maps."""

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        stem = int(192 * width)
        layers: list[nn.Module] = [ConvBNReLU(3, stem, 3)]
        cin = stem
        for block in _GOOGLENET_CIFAR:
            if block == "pool":
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
                continue
            inception = Inception(cin, *(int(c * width) for c in block))
            layers.append(inception)
            cin = inception.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.pool(x).flatten(1)
        return self.fc(x)


@register_model
def googlenet_cifar(num_classes: int = 10) -> nn.Module:
    return GoogLeNetCIFAR(num_classes)


@register_model
def googlenet_cifar_small(num_classes: int = 10) -> nn.Module:
    """The reference architecture at a quarter of the channel widths, for CPU runs."""
    return GoogLeNetCIFAR(num_classes, width=0.25)


def _torchvision(name: str, **kwargs) -> nn.Module:
    """One of torchvision's models, imported when one is built: torchvision's import takes seconds,
    paid otherwise by every rank of every group."""
    import torchvision.models

    return getattr(torchvision.models, name)(**kwargs)


@register_model
def resnet18_cifar(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: a 3x3 stride-1 conv and no max-pool."""
    model = _torchvision("resnet18", num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_model
def tv_resnet18(num_classes: int = 10) -> nn.Module:
    return _torchvision("resnet18", num_classes=num_classes)


@register_model
def tv_resnet50(num_classes: int = 10) -> nn.Module:
    return _torchvision("resnet50", num_classes=num_classes)


@register_model
def tv_googlenet(num_classes: int = 10) -> nn.Module:
    """Aux heads off: without pretrained weights they only turn the training output into a tuple."""
    return _torchvision("googlenet", num_classes=num_classes, aux_logits=False, init_weights=True)


@register_model
def tv_mobilenet_v2(num_classes: int = 10) -> nn.Module:
    return _torchvision("mobilenet_v2", num_classes=num_classes)


class LinearClassifier(nn.Module):
    """A forward of its own, not ``nn.Sequential``'s: under ddp, torch.compile traces the model from
    its own forward frame, and dynamo does not start tracing in torch.nn's code."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@register_model
def linear(num_classes: int = 10) -> nn.Module:
    """One linear layer on the flattened image: the cheapest step, to measure what the harness adds."""
    return LinearClassifier(num_classes)
