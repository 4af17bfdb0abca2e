"""Layer names that PyTorch cannot use as submodule names, checked without importing torch.

Every layer becomes an attribute of an ``nn.Module`` (``self.conv1``), both in
the compiled module and in generated source. ``nn.Module.add_module`` refuses a
name that is already an attribute (``eval``, ``to``, ``buffers``, ...), and the
compiled :class:`~archspec.torch.build.SpecModule` adds a few attributes of its
own. A spec using one of those names is valid for the calculator, so the
refusal has to come from here, as a located one-line error, instead of as a
``KeyError`` deep inside torch.

The list is a snapshot so that ``archspec codegen`` can check names without
importing torch; ``tests/test_torch_modules.py`` proves that it covers the
installed torch and SpecModule, and the compiler also checks the live
``dir(SpecModule)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from archspec.spec import Spec, diagnostic
from archspec.spec.diagnostics import MAX_ERRORS, SpecError

# Public and private attributes of an nn.Module instance (torch 2.4 - 2.13).
MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination",
        "_apply",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_buffers",
        "_call_impl",
        "_compiled_call_impl",
        "_forward_hooks",
        "_forward_hooks_always_called",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_get_backward_hooks",
        "_get_backward_pre_hooks",
        "_get_name",
        "_is_full_backward_hook",
        "_load_from_state_dict",
        "_load_state_dict_post_hooks",
        "_load_state_dict_pre_hooks",
        "_maybe_warn_non_full_backward_hook",
        "_modules",
        "_named_members",
        "_non_persistent_buffers_set",
        "_parameters",
        "_register_load_state_dict_pre_hook",
        "_register_state_dict_hook",
        "_replicate_for_data_parallel",
        "_save_to_state_dict",
        "_slow_forward",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_version",
        "_wrapped_call_impl",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    }
)

# Attributes that the compiled SpecModule and the generated class add to nn.Module's.
MODEL_ATTRIBUTES = frozenset(
    {
        "spec_name",
        "input_shape",
        "output_name",
        "plan",
        "forward_layers",
        "_drop_after",
        "_layer",
        "_place",
        "_by_name",
    }
)

RESERVED = MODULE_ATTRIBUTES | MODEL_ATTRIBUTES


def is_reserved(name: str, extra: Iterable[str] = ()) -> bool:
    """True when PyTorch (or our model classes) already use ``name`` as an attribute."""
    return name in RESERVED or (name.startswith("__") and name.endswith("__")) or name in extra


def check_layer_names(spec: Spec, extra: Iterable[str] = ()) -> None:
    """Raise :class:`SpecError` (exit 2) for every layer whose name a module attribute already uses.

    ``extra`` adds names known only at run time (the compiler passes the live
    ``dir(nn.Module)``, covering torch versions newer than the snapshot).
    """
    taken = frozenset(extra)
    errors = [
        diagnostic(
            spec,
            ("layers", i, "name"),
            f"layer name '{layer.name}' is already an attribute of torch.nn.Module, "
            "so PyTorch cannot hold a layer under that name",
            hint=f"rename it, e.g. '{layer.name.strip('_')}_layer'",
        )
        for i, layer in enumerate(spec.layers)
        if any(is_reserved(part, taken) for part in layer.name.split("."))
    ]
    # A dotted name nests its module in containers named by its prefixes (layer1.0.conv1
    # in layer1.0): a layer cannot also be one of those containers.
    names = {layer.name for layer in spec.layers}
    for i, layer in enumerate(spec.layers):
        parts = layer.name.split(".")
        for cut in range(1, len(parts)):
            prefix = ".".join(parts[:cut])
            if prefix in names:
                errors.append(
                    diagnostic(
                        spec,
                        ("layers", i, "name"),
                        f"layer '{layer.name}' would live inside layer '{prefix}': in PyTorch "
                        f"'{prefix}' would hold both a layer and its submodules",
                        hint=f"rename '{prefix}' or this layer",
                    )
                )
                break
    if errors:
        raise SpecError(errors[:MAX_ERRORS])
