"""Read a Pyro parameter store saved by ``pyro.get_param_store().save(PATH)`` and turn the AutoNormal
guide in it (``locs.SITE`` / ``scales.SITE``) into a posterior, without running pickled code.

The store is a torch.save'd ``{"params": {name: unconstrained tensor}, "constraints": {name:
constraint}}``.  The constraint objects make ``torch.load(weights_only=True)`` refuse the file, so
each constraint class named in it is mapped to an inert record of its name and state; anything
else that is not a tensor is refused.  Scales are stored unconstrained and converted here.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BayesCompressError
from ..limits import MAX_DIMS, MAX_TENSORS
from ..posterior import Posterior, TensorPosterior

CONSTRAINT_MODULES = ("torch.distributions.constraints", "pyro.distributions.constraints")
REAL = "torch.distributions.constraints._Real"
SOFTPLUS_POSITIVE = "pyro.distributions.constraints._SoftplusPositive"
GREATER_THAN = ("torch.distributions.constraints._GreaterThan",
                "torch.distributions.constraints._GreaterThanEq")


# what torch's zip and pickle readers raise on a damaged or crafted file
_BROKEN_FILE = (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, TypeError, KeyError,
                AttributeError, IndexError, RecursionError, OverflowError, UnicodeDecodeError)


class ConstraintRecord:
    """Stands in for a pickled constraint object: remembers its class name and state, does nothing."""

    qualified_name = ""

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {}


@dataclass
class ParamStore:
    """Unconstrained parameter values (numpy) and the name of each one's constraint."""

    params: dict[str, np.ndarray]
    constraints: dict[str, str]
    constraint_state: dict[str, dict] = field(default_factory=dict)


def constraint_name(constraint) -> str:
    """``module.Class`` of a constraint, for live Pyro objects and for records read from a file alike."""
    if isinstance(constraint, ConstraintRecord):
        return constraint.qualified_name
    kind = type(constraint)
    return f"{kind.__module__}.{kind.__qualname__}"


def read_param_store(path: str | os.PathLike) -> ParamStore:
    """Load a saved Pyro param store with ``torch.load(weights_only=True)``; constraints become records."""
    import torch

    source = str(path)
    if not Path(path).is_file():
        raise BayesCompressError(f"{source}: no such file")
    if not zipfile.is_zipfile(path):
        raise BayesCompressError(
            f"{source}: not a PyTorch zip file (save it with pyro.get_param_store().save)"
        )
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(source)
    except (*_BROKEN_FILE, pickle.UnpicklingError) as exc:
        raise BayesCompressError(f"{source}: not a readable PyTorch file ({type(exc).__name__})") from None
    records = []
    for qualified in unsafe:
        module, _, name = qualified.rpartition(".")
        if module not in CONSTRAINT_MODULES or not name.isidentifier():
            raise BayesCompressError(f"{source}: holds a pickled {qualified}; refusing to load it "
                                     "(only tensors and Pyro constraints are read)")
        record = type(name, (ConstraintRecord,), {"qualified_name": qualified})
        records.append((record, qualified))
    try:
        with torch.serialization.safe_globals(records):
            state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BayesCompressError(f"{source}: holds pickled objects other than tensors and constraints; "
                                 "refusing to load it") from exc
    except _BROKEN_FILE as exc:
        raise BayesCompressError(f"{source}: not a readable PyTorch file ({type(exc).__name__})") from None
    return param_store_from_state(state, source)


def param_store_from_state(state, source: str = "param store") -> ParamStore:
    """Check the ``{"params", "constraints"}`` layout of ``ParamStoreDict.get_state()``; numpy values."""
    import torch

    if not isinstance(state, dict) or set(state) != {"params", "constraints"}:
        raise BayesCompressError(f"{source}: not a Pyro param store (expected the keys 'params' and "
                                 "'constraints' that pyro.get_param_store().save writes)")
    if not isinstance(state["params"], dict) or not isinstance(state["constraints"], dict):
        raise BayesCompressError(f"{source}: not a Pyro param store ('params', 'constraints' must be dicts)")
    if len(state["params"]) > MAX_TENSORS:
        raise BayesCompressError(f"{source}: holds more than {MAX_TENSORS} parameters")
    params, constraints, constraint_state = {}, {}, {}
    for name, value in state["params"].items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise BayesCompressError(f"{source}: parameter {_shown(name)} is not a float tensor")
        params[name] = _tensor_values(value, name, source)
        constraint = state["constraints"].get(name)
        if constraint is None:
            raise BayesCompressError(f"{source}: parameter {name!r} has no constraint")
        constraints[name] = constraint_name(constraint)
        if isinstance(constraint, ConstraintRecord):
            constraint_state[name] = dict(getattr(constraint, "state", None) or {})
        else:  # a live constraint object, or something inert that is no constraint at all
            constraint_state[name] = dict(getattr(constraint, "__dict__", None) or {})
    return ParamStore(params, constraints, constraint_state)


_READABLE_DTYPES = ("torch.float16", "torch.float32", "torch.float64")


def _shown(name) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _tensor_values(value, name: str, source: str) -> np.ndarray:
    """A dense float16/32/64 tensor as numpy; never more elements than its stored bytes hold."""
    import torch

    where = f"{source}: parameter {_shown(name)}"
    if value.layout != torch.strided:
        raise BayesCompressError(f"{where} is a {value.layout} tensor; only dense tensors are read")
    if str(value.dtype) not in _READABLE_DTYPES:
        raise BayesCompressError(f"{where} has dtype {value.dtype}; only float16, float32, float64 are read")
    if value.dim() > MAX_DIMS:
        raise BayesCompressError(f"{where} has more than {MAX_DIMS} dimensions")
    stored = value.untyped_storage().nbytes()
    repeated = any(stride == 0 and size > 1 for size, stride in zip(value.shape, value.stride(), strict=True))
    if value.numel() * value.element_size() > stored or repeated:
        raise BayesCompressError(f"{where} declares more elements than its stored bytes hold "
                                 "(overlapping or zero strides)")
    return value.detach().cpu().numpy()


def guide_prefixes(names) -> dict[str, list[str]]:
    """Group ``PREFIXlocs.SITE`` names by prefix (e.g. ``AutoNormal.``); the value lists the sites."""
    groups: dict[str, list[str]] = {}
    for name in names:
        start = _guide_part_start(name, "locs.")
        if start is not None:
            groups.setdefault(name[:start], []).append(name[start + len("locs."):])
    return groups


def _guide_part_start(name: str, part: str) -> int | None:
    position = 0
    while True:
        index = name.find(part, position)
        if index < 0:
            return None
        if index == 0 or name[index - 1] == ".":
            return index
        position = index + 1


def autonormal_posterior(
    store: ParamStore, source: str, prefix: str | None = None
) -> tuple[Posterior, list[str]]:
    """Posterior N(loc, scale) per site of the store's AutoNormal guide; also the parameters left out.

    ``prefix`` picks one guide when the store holds several (``AutoNormal.`` for the usual one).
    """
    groups = guide_prefixes(store.params)
    if prefix is not None:
        prefix = prefix if prefix == "" or prefix.endswith(".") else prefix + "."
        if prefix not in groups:
            raise BayesCompressError(f"{source}: no guide with prefix {prefix!r} "
                                     f"(guides: {', '.join(repr(p) for p in groups) or 'none'})")
    elif len(groups) == 1:
        prefix = next(iter(groups))
    elif not groups:
        raise BayesCompressError(f"{source}: holds no AutoNormal guide (no parameters named locs.SITE)")
    else:
        raise BayesCompressError(f"{source}: holds several guides ({', '.join(repr(p) for p in groups)}); "
                                 "pick one with --guide")
    tensors, used = {}, set()
    for site in groups[prefix]:
        loc_name, scale_name = f"{prefix}locs.{site}", f"{prefix}scales.{site}"
        if scale_name not in store.params:
            raise BayesCompressError(f"{source}: site {site!r} has {loc_name} but no {scale_name} "
                                     "(not a mean-field AutoNormal guide?)")
        loc = store.params[loc_name]
        if store.constraints[loc_name] != REAL:
            raise BayesCompressError(f"{source}: {loc_name} has constraint {store.constraints[loc_name]}, "
                                     "expected real")
        scale = constrained_scale(store, scale_name, source)
        if scale.shape != loc.shape:
            raise BayesCompressError(f"{source}: site {site!r}: loc has shape {loc.shape} but scale has "
                                     f"shape {scale.shape}")
        tensors[site] = TensorPosterior(loc.copy(), scale)
        used.update((loc_name, scale_name))
    ignored = [name for name in store.params if name not in used]
    posterior = Posterior(tensors, kind="generic", metadata={"guide": "AutoNormal", "guide_prefix": prefix})
    return posterior, ignored


def constrained_scale(store: ParamStore, name: str, source: str) -> np.ndarray:
    """The positive scale from its unconstrained value, by the transform its constraint implies."""
    unconstrained = store.params[name].astype(np.float64)
    kind = store.constraints[name]
    if kind == SOFTPLUS_POSITIVE:  # AutoNormal's scale_constraint since Pyro 1.5
        with np.errstate(over="ignore"):
            scale = np.logaddexp(0.0, unconstrained)
    elif kind in GREATER_THAN:  # constraints.positive: exp, shifted by the lower bound
        lower = store.constraint_state.get(name, {}).get("lower_bound", 0.0)
        if isinstance(lower, bool) or not isinstance(lower, (int, float)):
            raise BayesCompressError(f"{source}: {name} has a lower bound that is not a number")
        with np.errstate(over="ignore"):  # overflows to inf, which validation then names
            scale = np.exp(unconstrained) + float(lower)
    else:
        raise BayesCompressError(f"{source}: {name} has constraint {kind}, which is not a positive scale")
    with np.errstate(over="ignore"):
        return scale.astype(store.params[name].dtype)


def import_pyro(path: str | os.PathLike, spec: dict | None = None, prefix: str | None = None,
                layer_names: list[str] | None = None) -> Posterior:
    """A posterior file's content from a saved param store; with a model spec it is a network.

    ``layer_names`` are the user's module names of the spec's layers in order (``fc1,fc2``): site
    ``fc1.weight`` becomes ``layers.0.weight``.  An AutoDiagonalNormal guide (one flat ``loc`` and
    ``scale``) needs the spec: its vector is cut into the spec's tensors in layer order, each
    layer's weight then bias, the order in which a PyroModule's linear layers sample them.
    Parameters the guide does not own (point estimates such as a noise scale) are left out and
    listed in the metadata under ``pyro_params_left_out``.
    """
    from ..networks.model_spec import check_tensors_match_spec, validate_model_spec

    source = str(path)
    store = read_param_store(path)
    if spec is not None:
        spec = validate_model_spec(spec, source)
    if layer_names is not None and (spec is None or len(layer_names) != len(spec["layers"])):
        raise BayesCompressError(f"{source}: --layers needs a --spec with as many layers as names given")
    if not guide_prefixes(store.params) and _diagonal_prefixes(store.params):
        posterior, ignored = autodiagonal_posterior(store, source, spec, prefix)  # named as in the spec
    else:
        posterior, ignored = autonormal_posterior(store, source, prefix)
        if layer_names is not None:
            posterior.tensors = _renamed_to_spec(posterior.tensors, layer_names, source)
    posterior.metadata |= {"imported_from": Path(path).name, "pyro_params_left_out": ignored}
    if spec is not None:
        check_tensors_match_spec(spec, {n: t.shape for n, t in posterior.tensors.items()}, source)
        posterior.kind, posterior.model_spec = "network", spec
    posterior.validate(source)
    return posterior


def _renamed_to_spec(tensors: dict, layer_names: list[str], source: str) -> dict:
    renames = {f"{user}.{part}": f"layers.{index}.{part}"
               for index, user in enumerate(layer_names) for part in ("weight", "bias")}
    unknown = sorted(set(tensors) - set(renames))
    if unknown:
        raise BayesCompressError(f"{source}: site {unknown[0]!r} belongs to none of the layers "
                                 f"{', '.join(layer_names)}")
    return {renames[name]: tensor for name, tensor in tensors.items()}


def _diagonal_prefixes(names) -> list[str]:
    return [name[:-len("loc")] for name in names
            if name.endswith("loc") and (name == "loc" or name.endswith(".loc"))
            and name[:-len("loc")] + "scale" in names]


def autodiagonal_posterior(store: ParamStore, source: str, spec: dict | None,
                           prefix: str | None = None) -> tuple[Posterior, list[str]]:
    """Posterior of an AutoDiagonalNormal guide: its flat loc and scale cut into the spec's tensors."""
    from ..networks.model_spec import spec_tensor_shapes

    prefixes = _diagonal_prefixes(store.params)
    if prefix is not None:
        prefix = prefix if prefix == "" or prefix.endswith(".") else prefix + "."
    if prefix is None and len(prefixes) == 1:
        prefix = prefixes[0]
    if prefix not in prefixes:
        raise BayesCompressError(f"{source}: pick the AutoDiagonalNormal guide with --guide "
                                 f"(guides: {', '.join(repr(p) for p in prefixes)})")
    if spec is None:
        raise BayesCompressError(f"{source}: an AutoDiagonalNormal guide stores one flat vector; "
                                 "give --spec so that it can be cut into the network's tensors")
    loc_name, scale_name = f"{prefix}loc", f"{prefix}scale"
    if store.constraints[loc_name] != REAL:
        raise BayesCompressError(f"{source}: {loc_name} has constraint {store.constraints[loc_name]}, "
                                 "expected real")
    loc, scale = store.params[loc_name], constrained_scale(store, scale_name, source)
    shapes = spec_tensor_shapes(spec)
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes.values()]
    if loc.ndim != 1 or loc.shape != scale.shape or loc.size != sum(sizes):
        raise BayesCompressError(f"{source}: the guide holds {loc.size} latents but the spec's tensors "
                                 f"{sum(sizes)}")
    tensors, offset = {}, 0
    for (name, shape), size in zip(shapes.items(), sizes, strict=True):
        tensors[name] = TensorPosterior(loc[offset:offset + size].reshape(shape),
                                        scale[offset:offset + size].reshape(shape))
        offset += size
    ignored = sorted(set(store.params) - {loc_name, scale_name})
    return Posterior(tensors), ignored
