"""What a design is: the backbone's layers, the genome columns and the searched option sets."""

from xpert_evo.space.backbone import VGG16_CHANNELS, Backbone
from xpert_evo.space.genome import ADC_TYPES, GENE_NAMES, GeneError, Genomes
from xpert_evo.space.options import SearchSpace

__all__ = [
    "ADC_TYPES",
    "GENE_NAMES",
    "VGG16_CHANNELS",
    "Backbone",
    "GeneError",
    "Genomes",
    "SearchSpace",
]
