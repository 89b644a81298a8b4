"""The :class:`Hierarchy` data structure: a tree of regions over a leaf partition.

References
----------
.. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour Detection and Hierarchical Image
       Segmentation", TPAMI 33(5):898-916, 2011. :DOI:`10.1109/TPAMI.2010.161`
.. [2] B. Perret, G. Chierchia, J. Cousty, S. J. F. Guimaraes, Y. Kenmochi, L. Najman, "Higra:
       Hierarchical Graph Analysis", SoftwareX 10, 2019 (the parent-array tree convention).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bottomup.graph.rag import _adjacent_pairs
from bottomup.hierarchy import _kernels as K
from bottomup.validate import check_ucm2

__all__ = ["Hierarchy"]


def _as_int_array(x, name, ndim):
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"`{name}` must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"`{name}` must be {ndim}-D, got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """A hierarchy of regions: a tree over a leaf partition, with merge altitudes.

    Nodes ``0..K-1`` are the leaves (the regions of ``leaf_labels``); internal nodes follow in
    topological order (every parent after its children), the root is last and is its own parent,
    as in higra. ``altitudes`` never decrease from a node to its parent, so the cut at ``t``
    (the regions of the nodes of altitude ``<= t`` whose parent is above ``t``) grows coarser as
    ``t`` grows; the ultrametric contour map (ucm2) holds, between two adjacent pixels, the
    altitude of the lowest common ancestor of their leaves [1]_.

    Parameters
    ----------
    parents : (N,) array_like of int
        Parent of each node; ``parents[N - 1] == N - 1``.
    altitudes : (N,) array_like of float
        Merge level of each node (leaves usually 0).
    leaf_labels : (H, W) array_like of int
        The leaf partition, dense labels ``0..K-1``.

    Raises
    ------
    ValueError
        If the arrays break the contract above (the message says which rule).

    Examples
    --------
    >>> import numpy as np
    >>> h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
    >>> h.cut(0.3)
    array([[0, 0, 1],
           [0, 0, 1]], dtype=int32)
    >>> h.to_ucm2()[1]
    array([0. , 0. , 0.2, 0. , 0.5, 0. , 0. ])
    """

    parents: NDArray[np.int64]
    altitudes: NDArray[np.float64]
    leaf_labels: NDArray[np.int32]

    def __post_init__(self):
        parents = _as_int_array(self.parents, "parents", 1).astype(np.int64)
        alt = np.asarray(self.altitudes)
        if alt.dtype == object or not np.issubdtype(alt.dtype, np.number):
            raise TypeError(f"`altitudes` must be a float array, got dtype {alt.dtype}")
        alt = np.array(alt, dtype=np.float64)
        labels = _as_int_array(self.leaf_labels, "leaf_labels", 2)
        n = parents.shape[0]
        if alt.shape != (n,):
            raise ValueError(
                f"`altitudes` (shape {alt.shape}) must have the shape of `parents` ({n},)"
            )
        if n == 0:
            raise ValueError("`parents` is empty; a hierarchy has at least one node")
        if labels.size == 0:
            raise ValueError(f"`leaf_labels` is empty: shape {labels.shape}")
        if not np.isfinite(alt).all():
            raise ValueError("`altitudes` contains NaN or inf")
        idx = np.arange(n)
        if parents[-1] != n - 1:
            raise ValueError(
                f"the root must be last and its own parent: parents[{n - 1}] = {parents[-1]}"
            )
        if n > 1 and not (parents[:-1] > idx[:-1]).all():
            bad = int(np.flatnonzero(parents[:-1] <= idx[:-1])[0])
            raise ValueError(
                f"`parents` must be in topological order (parents[i] > i for non-root nodes); "
                f"parents[{bad}] = {parents[bad]}"
            )
        if (parents >= n).any():
            raise ValueError(f"`parents` has indices >= N = {n}")
        if (alt[parents] < alt).any():
            bad = int(np.flatnonzero(alt[parents] < alt)[0])
            raise ValueError(
                f"`altitudes` must not decrease towards the root: node {bad} at {alt[bad]:.6g} has "
                f"parent {parents[bad]} at {alt[parents[bad]]:.6g}"
            )
        has_child = np.zeros(n, bool)
        has_child[parents[:-1]] = True
        if n == 1:
            n_leaves = 1
        else:
            n_leaves = int(np.argmax(has_child))
            if has_child[:n_leaves].any() or not has_child[n_leaves:].all() or n_leaves == 0:
                raise ValueError("leaves (nodes without children) must be exactly the nodes 0..K-1")
        lmin, lmax = int(labels.min()), int(labels.max())
        if lmin < 0 or lmax != n_leaves - 1:
            raise ValueError(
                f"`leaf_labels` must hold labels 0..{n_leaves - 1} (one per leaf), got range "
                f"[{lmin}, {lmax}]"
            )
        if np.bincount(labels.ravel(), minlength=n_leaves).min() == 0:
            raise ValueError("`leaf_labels` must use every leaf label 0..K-1 (dense labels)")
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        for arr in (parents, alt, labels):
            arr.setflags(write=False)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "altitudes", alt)
        object.__setattr__(self, "leaf_labels", labels)

    # -- sizes -------------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """Number of nodes N."""
        return int(self.parents.shape[0])

    @property
    def n_leaves(self) -> int:
        """Number of leaves K (regions of the finest partition)."""
        return int(self.leaf_labels.max()) + 1

    @property
    def shape(self) -> tuple:
        """Image shape ``(H, W)``."""
        return self.leaf_labels.shape

    @property
    def root(self) -> int:
        """Index of the root (``N - 1``)."""
        return self.n_nodes - 1

    @property
    def levels(self) -> NDArray[np.float64]:
        """Sorted distinct altitudes of the internal nodes: the thresholds where the cut changes."""
        return np.unique(self.altitudes[self.n_leaves :])

    @property
    def areas(self) -> NDArray[np.int64]:
        """Number of pixels of every node, shape ``(N,)``."""
        area = np.zeros(self.n_nodes, np.int64)
        area[: self.n_leaves] = np.bincount(self.leaf_labels.ravel(), minlength=self.n_leaves)
        for v in range(self.n_nodes - 1):  # children precede parents
            area[self.parents[v]] += area[v]
        return area

    def children(self, node: int) -> NDArray[np.int64]:
        """Children of ``node`` (empty for a leaf)."""
        node = self._check_node(node)
        kids = np.flatnonzero(self.parents == node)
        return kids[kids != node]

    def lowest_common_ancestors(self, a, b) -> NDArray[np.int64]:
        """Lowest common ancestor of each pair of nodes ``(a[i], b[i])``.

        Parameters
        ----------
        a, b : array_like of int
            Node ids in ``0..N-1``, of the same shape (or shapes that broadcast together).

        Returns
        -------
        lca : ndarray of int64
            The broadcast shape of ``a`` and ``b``: the lowest node that is ``a[i]`` or above
            it and ``b[i]`` or above it. For two leaves, ``altitudes[lca]`` is their
            ultrametric distance (the ucm2 level between them); ``lca == a`` when ``a == b``.

        Raises
        ------
        TypeError
            If ``a`` or ``b`` is not an integer array.
        ValueError
            If they do not broadcast together or hold ids outside ``0..N-1``.

        Notes
        -----
        Offline, for all pairs at once: one bottom-up pass over the tree with a union-find over
        the leaves, ``O(N + P log P)`` for ``P`` pairs.

        Examples
        --------
        >>> h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2], [0, 1, 2]])
        >>> h.lowest_common_ancestors([0, 0, 3, 1], [1, 2, 0, 1]).tolist()
        [3, 4, 3, 1]
        """
        arrs = []
        for name, x in (("a", a), ("b", b)):
            arr = np.asarray(x)
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"`{name}` must hold integer node ids, got dtype {arr.dtype}")
            if arr.size and (arr.min() < 0 or arr.max() >= self.n_nodes):
                raise ValueError(
                    f"`{name}` must hold node ids in [0, {self.n_nodes - 1}], got range "
                    f"[{arr.min()}, {arr.max()}]"
                )
            arrs.append(arr)
        try:
            a, b = np.broadcast_arrays(*arrs)
        except ValueError as exc:
            raise ValueError(
                f"`a` (shape {arrs[0].shape}) and `b` (shape {arrs[1].shape}) must broadcast together"
            ) from exc
        return self._lca(a.ravel(), b.ravel()).reshape(a.shape)

    def _lca(self, a, b) -> NDArray[np.int64]:
        """:meth:`lowest_common_ancestors` of valid 1-D node ids (no checks)."""
        a = np.ascontiguousarray(a, dtype=np.int64)
        b = np.ascontiguousarray(b, dtype=np.int64)
        return K._lca_kernel(self.parents, self.n_leaves, a, b)

    def adjacent_leaves(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Pairs of 4-adjacent leaves and their lowest common ancestors.

        Returns
        -------
        pairs : (E, 2) ndarray of int64
            Adjacent leaves ``a < b``, sorted (:func:`bottomup.graph.adjacent_pairs`).
        lca : (E,) ndarray of int64
            Lowest common ancestor of each pair (``altitudes[lca]`` is their ultrametric distance).
        length : (E,) ndarray of int64
            Number of boundary elements between the two leaves.
        """
        pairs, _, _, length = _adjacent_pairs(self.leaf_labels, self.n_leaves)
        return pairs, self._lca(pairs[:, 0], pairs[:, 1]), length

    def _check_node(self, node) -> int:
        if not isinstance(node, (int, np.integer)) or isinstance(node, bool):
            raise TypeError(f"`node` must be an int, got {type(node).__name__}")
        if not 0 <= node < self.n_nodes:
            raise ValueError(f"`node` must be in [0, {self.n_nodes - 1}], got {node}")
        return int(node)

    def leaves_of(self, node: int) -> NDArray[np.int64]:
        """Leaves below ``node`` (sorted)."""
        node = self._check_node(node)
        inside = np.zeros(self.n_nodes, bool)
        inside[node] = True
        for v in range(node - 1, -1, -1):
            inside[v] = inside[self.parents[v]]
        return np.flatnonzero(inside[: self.n_leaves])

    def region_mask(self, node: int) -> NDArray[np.bool_]:
        """Pixels of the region of ``node``, shape ``(H, W)`` bool."""
        leaves = np.zeros(self.n_leaves, bool)
        leaves[self.leaves_of(node)] = True
        return leaves[self.leaf_labels]

    # -- cuts --------------------------------------------------------------------------------------
    def cut_nodes(
        self, threshold: float | None = None, n_regions: int | None = None
    ) -> NDArray[np.int64]:
        """Top node of every leaf's region in a cut (see :meth:`cut`); shape ``(K,)``."""
        first_removed = self.n_nodes
        if (threshold is None) == (n_regions is None):
            raise ValueError("pass exactly one of `threshold` or `n_regions`")
        if threshold is not None:
            try:
                t = float(threshold)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"`threshold` must be a number, got {type(threshold).__name__}"
                ) from exc
            if np.isnan(t):
                raise ValueError("`threshold` is NaN")
        else:
            if not isinstance(n_regions, (int, np.integer)) or isinstance(n_regions, bool):
                raise TypeError(f"`n_regions` must be an int, got {type(n_regions).__name__}")
            if not 1 <= n_regions:
                raise ValueError(f"`n_regions` must be >= 1, got {n_regions}")
            t = np.inf
            n_int = self.n_nodes - self.n_leaves
            if n_regions >= self.n_leaves or n_int == 0:
                first_removed = self.n_leaves
            else:
                nch = np.bincount(self.parents[:-1], minlength=self.n_nodes)[self.n_leaves :]
                # undoing node v (from the root down) adds nch[v] - 1 regions
                gain = np.concatenate([[1], np.cumsum((nch - 1)[::-1]) + 1])
                m = int(np.searchsorted(gain, n_regions))
                first_removed = self.n_nodes - m
        rid = K._cut_nodes_kernel(self.parents, self.altitudes, t, first_removed)
        return rid[: self.n_leaves]

    def cut(
        self, threshold: float | None = None, n_regions: int | None = None
    ) -> NDArray[np.int32]:
        """Partition at a threshold or with a number of regions.

        Parameters
        ----------
        threshold : float, optional
            Regions are the nodes of altitude ``<= threshold`` whose parent lies above it; the same
            as the 8-connected components of ``to_ucm2() <= threshold`` read at ``[1::2, 1::2]``.
        n_regions : int, optional
            Undo the last merges (in node order, i.e. by altitude, ties by merge order) until at
            least ``n_regions`` regions remain; exactly ``n_regions`` for a binary tree (as built
            by :func:`bottomup.hierarchy.ucm` and :meth:`from_ucm2`), capped at K.

        Returns
        -------
        labels : (H, W) ndarray of int32
            Dense labels ``0..R-1`` numbered in raster order of first appearance.
        """
        rid = self.cut_nodes(threshold, n_regions)
        labels, _ = K._relabel_raster_kernel(self.leaf_labels, rid, self.n_nodes)
        return labels

    # -- ucm2 --------------------------------------------------------------------------------------
    def to_ucm2(self) -> NDArray[np.float64]:
        """Ultrametric contour map in the BSDS double-size layout.

        Returns
        -------
        ucm2 : (2H+1, 2W+1) ndarray of float64
            Pixels at ``[1::2, 1::2]`` are 0; the element between two 4-adjacent pixels holds the
            altitude of the lowest common ancestor of their leaves (0 inside a leaf); each vertex
            ``[::2, ::2]`` holds the max of its 4 neighbours (the BSDS ``ucm2`` layout, Arbelaez et al. 2011).
        """
        h, w = self.shape
        g = np.zeros((2 * h + 1, 2 * w + 1))
        pairs, faces, face_pair, _ = _adjacent_pairs(self.leaf_labels, self.n_leaves)
        if faces.size:
            alt = self.altitudes[self._lca(pairs[:, 0], pairs[:, 1])]
            g[faces[:, 0], faces[:, 1]] = alt[face_pair]
            from bottomup.owt._kernels import _complete_vertices

            _complete_vertices(g)
        return g

    @classmethod
    def from_ucm2(cls, ucm2) -> Hierarchy:
        """Build the hierarchy whose cuts are the thresholdings of a ucm2.

        Parameters
        ----------
        ucm2 : (2H+1, 2W+1) array_like of float
            BSDS layout, values ``>= 0``, pixels ``[1::2, 1::2]`` equal to 0.

        Returns
        -------
        hierarchy : Hierarchy
            Leaves are the 8-connected components of ``ucm2 <= 0`` (as ``ucm2hier`` of the MCG code);
            the tree is the single-linkage (Kruskal) tree of the leaf adjacency, so
            ``cut(t)`` equals ``ndi.label(ucm2 <= t, np.ones((3, 3)))[0][1::2, 1::2]`` up to the
            numbering for every ``t >= 0``, and ``from_ucm2(u).to_ucm2() == u`` whenever ``u`` is
            an ultrametric with completed vertices (as every BSDS ucm2 is).
        """
        u = check_ucm2(ucm2)
        if u.min() < 0:
            raise ValueError(f"`ucm2` must be >= 0, got minimum {u.min():.4g}")
        if (u[1::2, 1::2] != 0).any():
            raise ValueError(
                "`ucm2` pixel sites [1::2, 1::2] must be 0 in the BSDS layout; is this a ucm2 "
                "(2H+1, 2W+1) or an image-size boundary map?"
            )
        labels, k = K._ucm2_leaves_kernel(u)
        la, lb, lw = K._ucm2_links_kernel(u, labels)
        order = np.argsort(lw, kind="stable")
        parents, alt = K._kruskal_kernel(k, la[order], lb[order], lw[order])
        return cls(parents, alt, labels)

    # -- interchange -------------------------------------------------------------------------------
    def to_networkx(self):
        """Region adjacency graph of the leaves as a :class:`networkx.Graph`.

        Returns
        -------
        graph : networkx.Graph
            One node per leaf (attributes ``area`` in pixels); one edge per pair of 4-adjacent
            leaves with attributes ``level`` (the altitude at which they first share a region,
            i.e. their ultrametric distance) and ``length`` (number of boundary elements).
            ``graph.graph["tree_parents"]`` and ``["tree_altitudes"]`` carry the tree itself.
        """
        import networkx as nx

        g = nx.Graph(tree_parents=self.parents.tolist(), tree_altitudes=self.altitudes.tolist())
        area = self.areas
        for v in range(self.n_leaves):
            g.add_node(v, area=int(area[v]))
        pairs, lca, length = self.adjacent_leaves()
        levels = self.altitudes[lca]
        for (a, b), lev, c in zip(pairs.tolist(), levels.tolist(), length.tolist(), strict=True):
            g.add_edge(a, b, level=lev, length=c)
        return g

    def save(self, path: str | os.PathLike) -> None:
        """Save to ``.npz`` (the exact tree) or ``.mat``/``.png`` (its ucm2, BSDS-compatible).

        Writes are atomic (temporary file, then rename). A ``.mat`` or ``.png`` keeps only the ucm2,
        so :meth:`load` rebuilds an equivalent tree (same cuts), not the same node numbering.
        """
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower()
        if ext in (".mat", ".png"):
            from bottomup.io import write_ucm2

            write_ucm2(path, self.to_ucm2())
            return
        if ext != ".npz":
            raise ValueError(f"unknown hierarchy file type {ext!r}; expected .npz, .mat or .png")
        from bottomup.io.files import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f, parents=self.parents, altitudes=self.altitudes, leaf_labels=self.leaf_labels
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Hierarchy:
        """Load a ``.npz`` written by :meth:`save`, or a ucm2 file (``.mat``/``.png``/``.npz``
        holding ``ucm2``)."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"hierarchy file not found: {path}")
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npz":
            try:
                with np.load(path) as f:
                    keys = set(f.keys())
                    if {"parents", "altitudes", "leaf_labels"} <= keys:
                        return cls(f["parents"], f["altitudes"], f["leaf_labels"])
                    if "ucm2" in keys:
                        return cls.from_ucm2(f["ucm2"])
                    raise ValueError(
                        f"{path!r} holds neither a hierarchy (parents, altitudes, leaf_labels) nor "
                        f"a `ucm2` (found {sorted(keys)})"
                    )
            except ValueError:
                raise
            except Exception as exc:
                raise ValueError(f"cannot read npz file {path!r}: {exc}") from exc
        from bottomup.io import read_ucm2

        return cls.from_ucm2(read_ucm2(path))

    def __repr__(self) -> str:
        return (
            f"Hierarchy(shape={self.shape}, n_leaves={self.n_leaves}, n_nodes={self.n_nodes}, "
            f"max_altitude={float(self.altitudes[-1]):.4g})"
        )
