"""The networks: keras.applications ones (`applications`) and those built from scratch here.

Each network module describes itself with an `INFO` (`info.NetworkInfo`: input size,
preprocessing, last convolutional layer, parameter and multiply-add counts) next to its
constructor; `NETWORKS` collects them in listing order, and `training.registry` pairs
each with its Keras builders. Importing this package does not import TensorFlow: the
network modules import Keras inside the functions that build layers.
"""

from __future__ import annotations

from training.networks import alexnet, allconv, applications, googlenet, lenet, mnist_convnet
from training.networks.info import NetworkInfo

NETWORKS: dict[str, NetworkInfo] = {
    info.name: info
    for info in (*applications.INFOS, lenet.INFO, mnist_convnet.INFO, alexnet.INFO, googlenet.INFO, allconv.INFO)
}
