"""torch on first use only: scanning, inspecting and listing read headers and bytes and never need it.

``import torch`` costs seconds and hundreds of MB; a command that only scans should not pay for it. Code that
builds tensors calls ``torch_module()``; code that asks "is this a torch tensor?" uses ``is_torch_tensor``, which
is False without importing anything when torch was never loaded (then no object can be a torch tensor).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def torch_module() -> ModuleType:
    import torch

    return torch


def is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)
