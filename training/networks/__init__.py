"""The networks: keras.applications ones (`applications`) and those built from scratch here.

Each module of this package that declares `NETWORK` (one `info.NetworkInfo`) or
`NETWORKS` (several) is a network module; `NETWORKS` below collects every declaration it
finds, so adding a network is adding one module here: nothing else lists the networks
(`training.registry` builds `NETWORKS` as Keras models, the tests take their lists from
it). Modules whose names start with "_" are never read, and modules declaring neither
(`info`) are skipped.

Importing this package does not import TensorFlow (`convnet-train models` lists the
networks instantly): a network module imports Keras inside the functions that build
layers, and the Keras layers the networks share live in `training.layers`.
"""

from __future__ import annotations

import importlib
import pkgutil

from training.networks.info import NetworkInfo


def discover(package: str) -> dict[str, NetworkInfo]:
    """Every network the modules of `package` declare, by name, in listing order
    (`NetworkInfo.listing_position`; the same position keeps the modules' alphabetical order)."""
    found: list[NetworkInfo] = []
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{module_info.name}")
        found.extend(getattr(module, "NETWORKS", ()))
        if hasattr(module, "NETWORK"):
            found.append(module.NETWORK)
    networks: dict[str, NetworkInfo] = {}
    for info in sorted(found, key=lambda info: info.listing_position):
        if info.name in networks:
            raise ValueError(f"two network modules in {package} declare a network named {info.name!r}")
        networks[info.name] = info
    return networks


NETWORKS: dict[str, NetworkInfo] = discover(__name__)
