"""Edge-aware fully connected CRF (Kraehenbuehl & Koltun 2011), permutohedral mean field.

``dense_crf`` (numpy -> numba on the CPU; torch tensors -> torch on their device) and the trainable
``DenseCRF`` module (CRF-as-RNN). See :mod:`deep.crf.dense_crf`.
"""

from deep.crf.dense_crf import DenseCRF, contours_to_regions, dense_crf, unary_from_probabilities
from deep.crf.lattice import build_lattice, lattice_filter

__all__ = [
    "DenseCRF",
    "build_lattice",
    "contours_to_regions",
    "dense_crf",
    "lattice_filter",
    "unary_from_probabilities",
]
