"""Combinatorial grouping: singletons, pairs, triplets and 4-tuples of adjacent regions of a hierarchy.

MCG [1]_ walks the merging sequence of a hierarchy from the root downwards, keeping the
current partition. Each time a merge is undone, its children become new regions, and every
connected set of one to four coexisting regions that holds exactly one of the two children is a
new candidate: a set holding both children is the same pixel set as a set holding their parent,
seen one level earlier, and a set holding neither existed before. So each list grows in order of
decreasing UCM level and no candidate repeats. The walk stops when every list has reached its
quota (MCG learns the quotas on a Pareto front: :func:`pareto_quotas`; the default
:data:`SCG_QUOTAS` is MCG's released point).

References
----------
.. [1] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques, J. Malik, "Multiscale Combinatorial
       Grouping for Image Segmentation and Object Proposal Generation", TPAMI 39(1), 2017.
       :DOI:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bottomup.hierarchy import Hierarchy

__all__ = ["SCG_QUOTAS", "combinatorial_grouping", "leaf_ranges", "tuples_to_leaf_sets",
           "pareto_quotas", "achievable_quality"]

#: Default list sizes (singletons, pairs, triplets, 4-tuples): the released SCG Pareto point
#: (``scg_pareto_point_train2012.mat`` of the MCG code, learned on VOC12 train). A point learned
#: here by :func:`pareto_quotas` lost to it after ranking (figures:
#: docs/results.md#grouping-quotas-learned-on-a-pareto-front).
SCG_QUOTAS = (700, 4000, 6000, 3000)


def _check_quotas(quotas) -> tuple[int, int, int, int]:
    q = np.asarray(quotas)
    if q.shape != (4,) or not np.issubdtype(q.dtype, np.integer) or (q < 0).any():
        raise ValueError(
            f"`quotas` must be 4 non-negative integers (singletons, pairs, triplets, 4-tuples), "
            f"got {quotas!r}"
        )
    return tuple(int(v) for v in q)


def leaf_ranges(parents: NDArray[np.int64], n_leaves: int):
    """Order the leaves so that every node's leaves are contiguous.

    Parameters
    ----------
    parents : (N,) ndarray of int64
        Hierarchy parents (topological order, root last).
    n_leaves : int
        Number of leaves K.

    Returns
    -------
    order : (K,) ndarray of int64
        Leaves in depth-first order.
    start : (N,) ndarray of int64
        ``order[start[v]:start[v] + size[v]]`` are the leaves of node ``v``.
    size : (N,) ndarray of int64
        Number of leaves below each node.
    """
    n = parents.shape[0]
    size = np.zeros(n, np.int64)
    size[:n_leaves] = 1
    for v in range(n - 1):
        size[parents[v]] += size[v]
    start = np.zeros(n, np.int64)
    cursor = np.zeros(n, np.int64)
    for v in range(n - 2, -1, -1):  # parents come after their children, so they are placed first
        p = parents[v]
        start[v] = cursor[p]
        cursor[p] += size[v]
        cursor[v] = start[v]
    order = np.empty(n_leaves, np.int64)
    order[start[:n_leaves]] = np.arange(n_leaves)
    return order, start, size


def combinatorial_grouping(
    hierarchy: Hierarchy,
    quotas=SCG_QUOTAS,
    *,
    adjacency: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Candidate tuples of 1 to 4 adjacent regions of a hierarchy, in MCG's order.

    Parameters
    ----------
    hierarchy : Hierarchy
        The hierarchy (any arity).
    quotas : sequence of 4 int, optional
        Maximum number of singletons, pairs, triplets and 4-tuples.
    adjacency : (E, 2) ndarray of int64, optional
        Adjacent leaf pairs (default: ``hierarchy.adjacent_leaves()[0]``).

    Returns
    -------
    tuples : (K, 4) ndarray of int64
        Node ids of each candidate's regions, sorted ascending, padded with -1; singletons first
        (root first, then nodes in decreasing id), then pairs, triplets and 4-tuples, each list in
        creation order (decreasing UCM level).

    Notes
    -----
    The adjacency of the current partition is kept in sets and updated at every undone merge
    from the leaf adjacency (leaves are renumbered depth-first so a node's leaves, and the leaf
    edges leaving them, are contiguous ranges). The cost is ``O(E d)`` for the adjacency (``d``
    the depth of the tree) plus the enumerated tuples, bounded by the quotas.

    The trees of :func:`bottomup.hierarchy.ucm` are binary. For a node with more than two
    children, a set holding two or more (but not all) of its children is not generated.

    Examples
    --------
    >>> import numpy as np
    >>> from bottomup.hierarchy import Hierarchy
    >>> h = Hierarchy([3, 3, 4, 4, 4], [0, 0, 0, 0.2, 0.5], [[0, 1, 2]])
    >>> combinatorial_grouping(h, (5, 5, 5, 5)).tolist()
    [[4, -1, -1, -1], [3, -1, -1, -1], [2, -1, -1, -1], [1, -1, -1, -1], [0, -1, -1, -1], [1, 2, -1, -1]]
    """
    if not isinstance(hierarchy, Hierarchy):
        raise TypeError(f"`hierarchy` must be a Hierarchy, got {type(hierarchy).__name__}")
    q1, q2, q3, q4 = _check_quotas(quotas)
    parents = hierarchy.parents
    n = hierarchy.n_nodes
    k = hierarchy.n_leaves
    singles = np.arange(n - 1, max(n - 1 - q1, -1), -1, dtype=np.int64)
    lists: list[list[tuple]] = [[], [], []]
    limits = (q2, q3, q4)
    max_size = 4 if q4 else 3 if q3 else 2 if q2 else 1
    if max_size > 1 and n > 1:
        if adjacency is None:
            adjacency = hierarchy.adjacent_leaves()[0]
        _walk(parents, k, np.asarray(adjacency, np.int64), limits, max_size, lists)
    out = np.full((singles.size + sum(len(x) for x in lists), 4), -1, np.int64)
    out[: singles.size, 0] = singles
    row = singles.size
    for size, lst in enumerate(lists, start=2):
        if lst:
            out[row : row + len(lst), :size] = np.asarray(lst, np.int64)
            row += len(lst)
    return out


def _walk(parents, k, adjacency, limits, max_size, lists) -> None:
    n = parents.shape[0]
    order, start, size = leaf_ranges(parents, k)
    pos = np.empty(k, np.int64)
    pos[order] = np.arange(k)
    # leaf edges in both directions, sorted by the depth-first position of their source leaf
    src = np.concatenate([adjacency[:, 0], adjacency[:, 1]])
    dst = np.concatenate([adjacency[:, 1], adjacency[:, 0]])
    srt = np.argsort(pos[src], kind="stable")
    dst = dst[srt]
    eptr = np.zeros(k + 1, np.int64)
    np.cumsum(np.bincount(pos[src], minlength=k), out=eptr[1:])
    children: list[list[int]] = [[] for _ in range(n)]
    for v in range(n - 1):
        children[parents[v]].append(v)
    cur = np.full(k, n - 1, np.int64)  # current region of each leaf
    adj: dict[int, set[int]] = {n - 1: set()}
    full = [False, False, False]
    for v in range(n - 1, k - 1, -1):
        kids = children[v]
        nbr_v = adj.pop(v)
        for c in kids:
            cur[order[start[c] : start[c] + size[c]]] = c
        for c in kids:
            lo, hi = eptr[start[c]], eptr[start[c] + size[c]]
            others = set(np.unique(cur[dst[lo:hi]]).tolist())
            others.discard(c)
            adj[c] = others
        for x in nbr_v:
            s = adj[x]
            s.discard(v)
            for c in kids:
                if x in adj[c]:
                    s.add(c)
        # new candidates: connected sets holding exactly one child of v
        for c in kids:
            excl = set(kids)
            excl.discard(c)
            level = [frozenset((c,))]
            for t in range(2, max_size + 1):
                if all(full[t - 2 :]):
                    break
                seen: set = set()
                nxt = []
                for s in level:
                    nb = set()
                    for x in s:
                        nb |= adj[x]
                    nb -= s
                    nb -= excl
                    for y in sorted(nb):
                        u = s | {y}
                        if u not in seen:
                            seen.add(u)
                            nxt.append(u)
                lst = lists[t - 2]
                if not full[t - 2]:
                    room = limits[t - 2] - len(lst)
                    lst.extend(tuple(sorted(u)) for u in nxt[:room])
                    full[t - 2] = len(lst) >= limits[t - 2]
                level = nxt
        if all(full[: max_size - 1]):
            break


def tuples_to_leaf_sets(hierarchy: Hierarchy, tuples: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Leaf incidence of candidate tuples.

    Parameters
    ----------
    hierarchy : Hierarchy
    tuples : (K, 4) ndarray of int64
        Node ids padded with -1 (from :func:`combinatorial_grouping`).

    Returns
    -------
    leaf_sets : (K, L) ndarray of bool
        ``leaf_sets[i, l]`` is True when leaf ``l`` lies in candidate ``i``.
    """
    n, k = hierarchy.n_nodes, hierarchy.n_leaves
    tuples = np.asarray(tuples, np.int64)
    if tuples.ndim != 2 or tuples.shape[1] != 4 or tuples.max(initial=-1) >= n:
        raise ValueError(f"`tuples` must be (K, 4) node ids < {n} padded with -1")
    order, start, size = leaf_ranges(hierarchy.parents, k)
    # node-by-position incidence: node v covers positions start[v]..start[v]+size[v]
    cover = np.zeros((n + 1, k + 1), np.int8)
    cover[np.arange(n), start] = 1
    cover[np.arange(n), start + size] -= 1
    node_pos = np.cumsum(cover[:, :k], axis=1).astype(bool)  # row n stays empty (padding)
    t = np.where(tuples < 0, n, tuples)
    inc_pos = node_pos[t[:, 0]] | node_pos[t[:, 1]] | node_pos[t[:, 2]] | node_pos[t[:, 3]]
    inc = np.empty_like(inc_pos)
    inc[:, order] = inc_pos
    return inc


def coarsen_leaves(hierarchy: Hierarchy, max_leaves: int) -> Hierarchy:
    """The same hierarchy above its cut into ``max_leaves`` regions (those regions become leaves).

    Candidates of :func:`combinatorial_grouping` come from the top of the tree, so a fine leaf
    partition (the multiscale hierarchy has thousands of leaves) only makes leaf sets wider. The
    nodes above the cut keep their altitudes and order.

    Parameters
    ----------
    hierarchy : Hierarchy
    max_leaves : int
        At least 1.

    Returns
    -------
    hierarchy : Hierarchy
        ``hierarchy`` itself when it has at most ``max_leaves`` leaves.
    """
    if max_leaves < 1:
        raise ValueError(f"`max_leaves` must be >= 1, got {max_leaves}")
    k, n = hierarchy.n_leaves, hierarchy.n_nodes
    if k <= max_leaves:
        return hierarchy
    top = hierarchy.cut_nodes(n_regions=max_leaves)  # (K,) cut node of each leaf
    cut = np.unique(top)
    keep = np.zeros(n, bool)
    keep[cut] = True
    above = np.zeros(n, bool)  # strict ancestors of cut nodes
    for v in np.sort(cut):
        p = hierarchy.parents[v]
        while p != v and not above[p]:
            above[p] = True
            v, p = p, hierarchy.parents[p]
    new_id = np.full(n, -1, np.int64)
    new_id[cut] = np.arange(cut.size)
    internal = np.flatnonzero(above)  # increasing = topological
    new_id[internal] = cut.size + np.arange(internal.size)
    old = np.concatenate([cut, internal])
    parents = new_id[hierarchy.parents[old]]
    alt = hierarchy.altitudes[old].copy()
    alt[: cut.size] = 0.0
    return Hierarchy(parents, alt, new_id[top][hierarchy.leaf_labels].astype(np.int32))


def achievable_quality(best_iou, steps) -> float:
    """Mean over objects of the best IoU in a pool that keeps ``grid[steps[t]]`` candidates of type t.

    ``best_iou`` as in :func:`pareto_quotas`; ``steps`` : (4,) indices into its grid.
    """
    steps = np.asarray(steps, np.int64)
    n_obj = sum(b.shape[1] for b in best_iou)
    if n_obj == 0:
        raise ValueError("`best_iou` holds no object")
    return float(sum(b[np.arange(4), :, steps].max(axis=0).sum() for b in best_iou if b.shape[1]) / n_obj)


def pareto_quotas(best_iou, lengths, grid, *, budget: float):
    """Learn grouping quotas on a Pareto front of pool size against achievable quality (as MCG).

    Greedy front construction [1]_: start from empty lists and repeatedly raise the quota of the
    candidate type (singletons, pairs, triplets, 4-tuples) whose next grid step buys the most
    achievable quality per added candidate, until the mean pool size reaches ``budget``.
    Achievable quality is the mean over objects of the best IoU of any candidate in the pool.

    Parameters
    ----------
    best_iou : list of (4, G_i, S) ndarray
        Per training image: ``best_iou[i][t, j, s]`` is the best IoU with object ``j`` among the
        first ``grid[s]`` candidates of type ``t`` (non-decreasing in ``s``).
    lengths : (N, 4) array_like of int
        Number of candidates of each type each image has (lists may be shorter than a quota).
    grid : (S,) array_like of int
        Increasing candidate counts, ``grid[0] == 0``.
    budget : float
        Target mean pool size per image.

    Returns
    -------
    quotas : tuple of 4 int
        The last front point whose mean pool size does not exceed ``budget``.
    front : list of (mean pool size, achievable quality, quotas)
        Every point visited, from the empty pool on.

    References
    ----------
    .. [1] J. Pont-Tuset et al., "Multiscale Combinatorial Grouping for Image Segmentation and
           Object Proposal Generation", TPAMI 39(1), 2017, Sec. 4.3.
    """
    grid = np.asarray(grid, np.int64)
    lengths = np.asarray(lengths, np.int64)
    if grid.ndim != 1 or grid.size < 2 or grid[0] != 0 or (np.diff(grid) <= 0).any():
        raise ValueError(f"`grid` must increase from 0, got {grid.tolist()}")
    if lengths.ndim != 2 or lengths.shape != (len(best_iou), 4):
        raise ValueError(f"`lengths` must be (N, 4) for N = {len(best_iou)} images, got {lengths.shape}")

    def state(steps):
        size = np.minimum(grid[steps][None, :], lengths).sum(axis=1).mean()
        return size, achievable_quality(best_iou, steps)

    steps = np.zeros(4, np.int64)
    size, quality = state(steps)
    front = [(float(size), float(quality), tuple(int(v) for v in grid[steps]))]
    best = front[0][2]
    while True:
        choice = None
        for t in range(4):
            if steps[t] + 1 >= grid.size:
                continue
            trial = steps.copy()
            trial[t] += 1
            s2, q2 = state(trial)
            if s2 <= size:  # every list of this type already exhausted: free, take it
                gain = np.inf
            else:
                gain = (q2 - quality) / (s2 - size)
            if choice is None or gain > choice[0]:
                choice = (gain, trial, s2, q2)
        if choice is None:
            break
        _, steps, size, quality = choice
        if size > budget:
            break
        front.append((float(size), float(quality), tuple(int(v) for v in grid[steps])))
        best = front[-1][2]
    return best, front
