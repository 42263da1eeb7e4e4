"""Ground truth: the data sets, the network, its training and the table of measured accuracies.

data.py finds and opens CIFAR-10 / Tiny ImageNet; network.py builds the VGG-style network of a
channel list; train.py trains it; groundtruth.py trains and crossbar-evaluates designs and keeps
the results in one CSV table (`measure`, `load_table`).
"""
