"""xpert_evo: multi-objective co-design of a VGG-style network and the IMC crossbar chip."""

__version__ = "0.1.0"
