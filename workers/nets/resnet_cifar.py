"""A ResNet-18-style network on CIFAR-100, in plain torch (THEORY.md §5, the
predecessor's CIFAR protocol).

Pretraining: the 98 classes other than ``ft_class_a`` and ``ft_class_b`` (``n_pt``
training images, 0 = all).  Fine-tuning: the binary task of the two held-out classes
with ``n_ft`` training images (balanced), tested on their test images.

Network: 3×3 conv stem (``width`` channels), four stages of ``blocks_per_stage`` basic
residual blocks with (1, 2, 4, 8)·``width`` channels and strides (1, 2, 2, 2), global
average pooling and a linear head (``blocks_per_stage = 2, width = 64`` is ResNet-18).
BatchNorm after every convolution.  Earlier layers = everything but the head.  Standard
init: conv kernels He-normal, BatchNorm (1, 0), head N(0, 1/fan_in); the earlier layers
start at s_early × standard (kernels *and* BatchNorm scales), the head at s_late.  With
BatchNorm the kernel scale alone would not change the function, so the knob scales the
BatchNorm affine weights too; ``pt_rescale`` likewise multiplies every earlier-layer
parameter (kernels, BatchNorm weights and biases) after pretraining.  At fine-tuning
the head becomes a fresh 2-way linear map with entries N(0, gamma_ft²/fan_in).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from workers.nets.common import CrossEntropyProblem, generator, layer_scales
from workers.nets.data import load_cifar100
from workers.nets.training import OptimConfig

MEAN = (0.5071, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)


@dataclass(frozen=True)
class CifarConfig:
    data_dir: str
    width: int = 64
    blocks_per_stage: int = 2
    ft_class_a: int = 98
    ft_class_b: int = 99
    n_pt: int = 0
    n_ft: int = 100
    c_pt: float = 1.0
    lambda_pt: float = 0.0
    gamma_ft: float = 1.0
    pt_rescale: float = 1.0


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, width: int, blocks_per_stage: int, n_out: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        stages, inputs = [], width
        for index, factor in enumerate((1, 2, 4, 8)):
            outputs = width * factor
            blocks = []
            for block in range(blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(BasicBlock(inputs, outputs, stride))
                inputs = outputs
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(inputs, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(torch.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def _images(array: np.ndarray, device: str) -> torch.Tensor:
    x = torch.from_numpy(array).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).to(device)


class CifarProblem(CrossEntropyProblem):
    workload = "resnet_cifar_finetune"
    version = "resnet-cifar-1"
    config_class = CifarConfig
    # The dataset directory is a deployment fact (SWEEPS_DATA__CIFAR100_DIR), not a param.
    context_fields = {"data_dir": "cifar100_dir"}

    def __init__(
        self,
        config: CifarConfig,
        seed: int,
        pt_optim: OptimConfig,
        ft_optim: OptimConfig,
        *,
        device: str = "cpu",
        amp: bool = False,
    ) -> None:
        c = config
        self.config, self.seed = config, seed
        self.pt_optim, self.ft_optim = pt_optim, ft_optim
        self.device, self.amp = device, amp
        data = load_cifar100(c.data_dir)
        classes = sorted(set(data.y_train.tolist()))
        held = (c.ft_class_a, c.ft_class_b)
        missing = [k for k in held if k not in classes]
        if missing:
            raise ValueError(f"fine-tuning class(es) {missing} are not in the dataset")
        pt_classes = [k for k in classes if k not in held]
        relabel = np.full(max(classes) + 1, -1, dtype=np.int64)
        relabel[pt_classes] = np.arange(len(pt_classes))
        self.n_pt_classes = len(pt_classes)
        gen = generator(seed, "cifar-data")

        pt_index = np.flatnonzero(relabel[data.y_train] >= 0)
        pt_index = pt_index[torch.randperm(len(pt_index), generator=gen).numpy()]
        if c.n_pt:
            pt_index = pt_index[: c.n_pt]
        ft_index = []
        for position, label in enumerate(held):
            pool = np.flatnonzero(data.y_train == label)
            want = c.n_ft // 2 + (1 if position == 0 and c.n_ft % 2 else 0)
            if want > len(pool):
                raise ValueError(
                    f"n_ft={c.n_ft} needs {want} training images of class {label}; "
                    f"the dataset has {len(pool)}"
                )
            ft_index.append(pool[torch.randperm(len(pool), generator=gen).numpy()[:want]])
        ft_index = np.concatenate(ft_index)
        test_index = np.flatnonzero(np.isin(data.y_test, held))

        self.x_pt = _images(data.x_train[pt_index], device)
        self.y_pt = torch.from_numpy(relabel[data.y_train[pt_index]]).to(device)
        self.x_ft = _images(data.x_train[ft_index], device)
        self.y_ft = torch.from_numpy((data.y_train[ft_index] == held[1]).astype(np.int64))
        self.y_ft = self.y_ft.to(device)
        self.x_test = _images(data.x_test[test_index], device)
        self.y_test = torch.from_numpy((data.y_test[test_index] == held[1]).astype(np.int64))
        self.y_test = self.y_test.to(device)
        self._set_batches("cifar")

    def pretrain_config(self) -> dict[str, Any]:
        c = asdict(self.config)
        for ft_only in ("n_ft", "gamma_ft", "pt_rescale", "data_dir"):
            c.pop(ft_only)
        c["classes"] = sorted((c.pop("ft_class_a"), c.pop("ft_class_b")))
        c["pt_set_size"] = self.pt_samples
        return {"config": c, "seed": self.seed, "optim": asdict(self.pt_optim)}

    def _init_head(self, head: nn.Linear, scale: float, stream: str) -> None:
        gen = generator(self.seed, stream)
        with torch.no_grad():
            head.weight.copy_(
                torch.randn(head.weight.shape, generator=gen) * scale / math.sqrt(head.in_features)
            )
            head.bias.zero_()

    def build_pt_model(self) -> nn.Module:
        c = self.config
        model = ResNetCifar(c.width, c.blocks_per_stage, self.n_pt_classes)
        early, late = layer_scales(c.c_pt, c.lambda_pt)
        gen = generator(self.seed, "cifar-init")
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.Conv2d):
                    fan_in = module.weight[0].numel()
                    draw = torch.randn(module.weight.shape, generator=gen)
                    module.weight.copy_(draw * early * math.sqrt(2.0 / fan_in))
                elif isinstance(module, nn.BatchNorm2d):
                    module.weight.fill_(early)
                    module.bias.zero_()
        self._init_head(model.head, late, "cifar-pt-head")
        return model.to(self.device)

    def head_names(self, model: nn.Module) -> list[str]:
        return ["head.weight", "head.bias"]

    def layer_groups(self, model: nn.Module) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for name, _ in model.named_parameters():
            if name.startswith("stages."):
                group = f"stage{int(name.split('.')[1]) + 1}"
            else:
                group = name.split(".")[0]
            groups.setdefault(group, []).append(name)
        return groups

    def build_ft_model(self, pt_state: dict[str, torch.Tensor]) -> nn.Module:
        c = self.config
        model = ResNetCifar(c.width, c.blocks_per_stage, self.n_pt_classes)
        model.load_state_dict(pt_state)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if not name.startswith("head."):
                    param.mul_(c.pt_rescale)
        model.head = nn.Linear(model.head.in_features, 2)
        self._init_head(model.head, c.gamma_ft, "cifar-ft-head")
        return model.to(self.device)

    def ft_eval(self, model: nn.Module) -> dict[str, float]:
        return {**super().ft_eval(model), "n_test_images": float(len(self.y_test))}

    def extra_metrics(self, pt_state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, Any]:
        return {}
