"""Graph primitives shared by the stages: region adjacency of label images.

The numba kernels every stage shares (binary heap, union-find, boundary faces) live in the
private ``bottomup.graph._kernels``.
"""

from bottomup.graph.rag import adjacent_pairs

__all__ = ["adjacent_pairs"]
