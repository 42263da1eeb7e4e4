"""Ground truth: the data sets, the network, its training and the table of measured accuracies.

data.py finds and opens CIFAR-10 / Tiny ImageNet; network.py builds the VGG-style network of a
channel list; train.py trains it; groundtruth.py trains and crossbar-evaluates designs and keeps
the results in one CSV table (`measure`, `load_table`).
"""

from xpert_evo.training.data import DataError, DataSpec, load_split
from xpert_evo.training.groundtruth import load_table, measure
from xpert_evo.training.network import build_network

__all__ = ["DataError", "DataSpec", "build_network", "load_split", "load_table", "measure"]
