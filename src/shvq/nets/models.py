"""Network definitions used in the model-compression literature, built by name.

* ``lenet300`` — LeNet-300-100: 784 → 300 → 100 → 10, ReLU (266,610 parameters).
* ``lenet5`` — the Caffe LeNet-5 variant: conv 20@5×5, max-pool, conv 50@5×5, max-pool,
  fc 500, ReLU, fc 10 (431,080 parameters on 28×28 inputs).
* ``resnet20`` / ``resnet32`` — He et al.'s CIFAR ResNets (3 stages of 16/32/64 channels,
  n = 3 or 5 basic blocks per stage, option-A zero-padding shortcuts), any input channel count.
"""

from __future__ import annotations

from collections.abc import Callable


import torch.nn.functional as F
from torch import Tensor, nn


class LeNet300100(nn.Module):
    def __init__(self, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(50 * side * side, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.pad = cout - cin

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.stride != 1 or self.pad:
            short = x[:, :, :: self.stride, :: self.stride]
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images."""

    def __init__(self, n: int, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        cin = 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(_BasicBlock(cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "lenet300": lambda in_channels=1, num_classes=10, image_size=28: LeNet300100(in_channels * image_size**2, num_classes),
    "lenet5": lambda in_channels=1, num_classes=10, image_size=28: LeNet5(in_channels, num_classes, image_size),
    "resnet20": lambda in_channels=3, num_classes=10, image_size=32: CifarResNet(3, in_channels, num_classes),
    "resnet32": lambda in_channels=3, num_classes=10, image_size=32: CifarResNet(5, in_channels, num_classes),
}


def build_model(arch: str, *, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Instantiate an architecture by name (see :data:`ARCHITECTURES`)."""
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}") from None
    return factory(in_channels=in_channels, num_classes=num_classes, image_size=image_size)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable-parameter elements (what the fp32 baseline size counts)."""
    return sum(p.numel() for p in model.parameters())


def default_quantized(model: nn.Module) -> list[str]:
    """Names of the parameters quantized by default: every conv and linear weight."""
    names = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            names.append(f"{mod_name}.weight" if mod_name else "weight")
    return names


__all__ = ["ARCHITECTURES", "CifarResNet", "LeNet300100", "LeNet5", "build_model", "count_parameters", "default_quantized"]
