"""Adapters for any torch model: one core (wrapping, merging, state, devices), methods as small classes.

``adapt(model, "lora", targets=..., rank=...)`` wraps the target layers in place and returns an
:class:`Adapter`. A method is an :class:`AdapterMethod` registered with :func:`register_method`:
it gives a weight delta in the layer's own weight shape, and the core does the rest.
"""

from lowrank.nn.adapters._adapter import Adapter, adapt
from lowrank.nn.adapters._io import load_adapter
from lowrank.nn.adapters._layer import AdaptedLayer, LayerSpec
from lowrank.nn.adapters._method import AdapterMethod, SharedModules, list_methods, register_method

# built-in methods register themselves on import
from lowrank.nn.adapters.lora import LoRA, LoRAConfig
from lowrank.nn.adapters.ffa_lora import FFALoRA, FFALoRAConfig  # noqa: E402  (subclasses LoRA)
from lowrank.nn.adapters.loldu import LoLDU, LoLDUConfig
from lowrank.nn.adapters.svfit import SVFit, SVFitConfig
from lowrank.nn.adapters.flora import FLoRA, FLoRAConfig
from lowrank.nn.adapters.tera import TeRA, TeRAConfig
from lowrank.nn.adapters.block_lora import BlockLoRA, BlockLoRAConfig
from lowrank.nn.adapters.snell import SNELL, SNELLConfig
from lowrank.nn.adapters.lq_lora import LQLoRA, LQLoRAConfig
from lowrank.nn.adapters.increlora import IncreLoRA, IncreLoRAConfig

__all__ = ["adapt", "Adapter", "load_adapter", "AdapterMethod", "SharedModules", "register_method",
           "list_methods", "AdaptedLayer", "LayerSpec", "LoRA", "LoRAConfig", "FFALoRA", "FFALoRAConfig", "LoLDU",
           "LoLDUConfig", "SVFit", "SVFitConfig", "FLoRA", "FLoRAConfig", "TeRA", "TeRAConfig",
           "BlockLoRA", "BlockLoRAConfig", "SNELL", "SNELLConfig", "LQLoRA", "LQLoRAConfig",
           "IncreLoRA", "IncreLoRAConfig"]
