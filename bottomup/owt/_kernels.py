"""Numba kernels of the oriented watershed transform (private; inputs are assumed valid).

Grid conventions
----------------
Pixels are indexed ``p = i * W + j``. Horizontal graph edges ``h(i, j)`` join pixels ``(i, j)`` and
``(i, j + 1)`` (array ``wh`` of shape ``(H, W - 1)``); vertical edges ``v(i, j)`` join ``(i, j)``
and ``(i + 1, j)`` (array ``wv`` of shape ``(H - 1, W)``). On the BSDS double-size grid the edge
``h(i, j)`` sits at ``(2i + 1, 2j + 2)`` and ``v(i, j)`` at ``(2i + 2, 2j + 1)``. Boundary vertices
(pixel corners) live on an ``(H + 1, W + 1)`` grid; vertex ``(a, b)`` sits at ``(2a, 2b)``.
An ``h`` face joins the vertices ``(i, j + 1)`` and ``(i + 1, j + 1)``; a ``v`` face joins
``(i + 1, j)`` and ``(i + 1, j + 1)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bottomup.graph._kernels import _count_faces

# ------------------------------------------------------------------------------------------------
# Edge weights from a pixel map


@njit(cache=True)
def _pixel_to_edge_max_kernel(pb):
    h, w = pb.shape
    wh = np.empty((h, max(w - 1, 0)), np.float64)
    wv = np.empty((max(h - 1, 0), w), np.float64)
    for i in range(h):
        for j in range(w - 1):
            wh[i, j] = max(pb[i, j], pb[i, j + 1])
    for i in range(h - 1):
        for j in range(w):
            wv[i, j] = max(pb[i, j], pb[i + 1, j])
    return wh, wv


# ------------------------------------------------------------------------------------------------
# Watershed cut of an edge-weighted 4-adjacency graph by the "stream" (drop of water) algorithm
# of Cousty et al. (PAMI 2009): from each unlabelled pixel, follow the steepest edges (weight equal
# to the pixel's lowest incident edge), breadth first on plateaus and restarting at any lower
# pixel, until a labelled pixel is met (join its basin) or the stream is exhausted (a new minimum).
# Linear time; neighbours are visited up, left, right, down, as higra's 4-adjacency graph, so that
# ties resolve the same way.


@njit(cache=True, inline="always")
def _neighbour(p, d, h, w, wh, wv):
    """Neighbour ``d`` (0 up, 1 left, 2 right, 3 down) of pixel p and its edge weight (-1: none)."""
    i = p // w
    j = p - i * w
    if d == 0:
        if i == 0:
            return -1, 0.0
        return p - w, wv[i - 1, j]
    if d == 1:
        if j == 0:
            return -1, 0.0
        return p - 1, wh[i, j - 1]
    if d == 2:
        if j == w - 1:
            return -1, 0.0
        return p + 1, wh[i, j]
    if i == h - 1:
        return -1, 0.0
    return p + w, wv[i, j]


@njit(cache=True)
def _watershed_cut_kernel(wh, wv, h, w, descent_first=False):
    """Labels (dense, in order of discovery) and number of basins of the watershed cut.

    ``descent_first``: from each pixel, follow a steepest edge to a strictly lower pixel (the
    lowest one) before any steepest edge along a plateau, so that water on a ridge runs down its
    flank instead of along the ridge into an earlier basin.
    """
    n = h * w
    labels = np.full(n, -1, np.int32)
    if n == 1:
        labels[0] = 0
        return labels, 1
    fminus = np.full(n, np.inf)
    for i in range(h):
        for j in range(w - 1):
            x = wh[i, j]
            p = i * w + j
            if x < fminus[p]:
                fminus[p] = x
            if x < fminus[p + 1]:
                fminus[p + 1] = x
    for i in range(h - 1):
        for j in range(w):
            x = wv[i, j]
            p = i * w + j
            if x < fminus[p]:
                fminus[p] = x
            if x < fminus[p + w]:
                fminus[p + w] = x
    in_stream = np.zeros(n, np.bool_)
    stream = np.empty(n, np.int64)  # L: the pixels of the current stream
    front = np.empty(n, np.int64)  # LL: the pixels still to explore (a stack)
    k = 0
    for v in range(n):
        if labels[v] >= 0:
            continue
        n_stream = 1
        stream[0] = v
        in_stream[v] = True
        n_front = 1
        front[0] = v
        found = -1
        while n_front > 0 and found < 0:
            n_front -= 1
            y = front[n_front]
            fy = fminus[y]
            if descent_first:
                best = -1
                fbest = fy
                for d in range(4):
                    z, wz = _neighbour(y, d, h, w, wh, wv)
                    if z < 0 or in_stream[z] or wz != fy:
                        continue
                    if fminus[z] < fbest:
                        fbest = fminus[z]
                        best = z
                if best >= 0:
                    if labels[best] >= 0:
                        found = labels[best]
                        break
                    stream[n_stream] = best
                    n_stream += 1
                    in_stream[best] = True
                    front[0] = best
                    n_front = 1
                    continue
            for d in range(4):
                z, wz = _neighbour(y, d, h, w, wh, wv)
                if z < 0 or in_stream[z] or wz != fy:
                    continue
                if labels[z] >= 0:
                    found = labels[z]
                    break
                stream[n_stream] = z
                n_stream += 1
                in_stream[z] = True
                if fminus[z] < fy:
                    front[0] = z  # a lower pixel: restart the exploration from it
                    n_front = 1
                    break
                front[n_front] = z
                n_front += 1
        if found < 0:
            found = k
            k += 1
        for t in range(n_stream):
            labels[stream[t]] = found
            in_stream[stream[t]] = False
    return labels, k


# ------------------------------------------------------------------------------------------------
# Boundary arcs: chains of boundary faces between junctions, traced on the vertex grid


@njit(cache=True, inline="always")
def _face_vertices(kind, i, j):
    """Return the two end vertices (a0, b0, a1, b1) of face (kind, i, j)."""
    if kind == 0:  # h face: between (i, j) and (i, j+1): vertical segment
        return i, j + 1, i + 1, j + 1
    return i + 1, j, i + 1, j + 1  # v face: horizontal segment


@njit(cache=True, inline="always")
def _vertex_faces(a, b, h, w, labels, out_kind, out_i, out_j):
    """Write the boundary faces incident to vertex (a, b); return their number."""
    c = 0
    # up: h face (a-1, b-1)
    if a >= 1 and 1 <= b <= w - 1:
        if labels[a - 1, b - 1] != labels[a - 1, b]:
            out_kind[c] = 0
            out_i[c] = a - 1
            out_j[c] = b - 1
            c += 1
    # down: h face (a, b-1)
    if a <= h - 1 and 1 <= b <= w - 1:
        if labels[a, b - 1] != labels[a, b]:
            out_kind[c] = 0
            out_i[c] = a
            out_j[c] = b - 1
            c += 1
    # left: v face (a-1, b-1)
    if 1 <= a <= h - 1 and b >= 1:
        if labels[a - 1, b - 1] != labels[a, b - 1]:
            out_kind[c] = 1
            out_i[c] = a - 1
            out_j[c] = b - 1
            c += 1
    # right: v face (a-1, b)
    if 1 <= a <= h - 1 and b <= w - 1:
        if labels[a - 1, b] != labels[a, b]:
            out_kind[c] = 1
            out_i[c] = a - 1
            out_j[c] = b
            c += 1
    return c


@njit(cache=True)
def _trace_arcs_kernel(labels):
    """Trace the boundary into arcs (maximal chains of faces through degree-2 vertices).

    Returns
    -------
    face_kind, face_i, face_j : (M,) int64
        Faces in arc order.
    arc_fstart : (A + 1,) int64
        Arc ``k`` owns faces ``arc_fstart[k]:arc_fstart[k + 1]``.
    vert_a, vert_b : (M + A,) int64
        Vertex polylines; arc ``k`` owns vertices ``arc_fstart[k] + k`` to ``arc_fstart[k+1] + k``.
    """
    h, w = labels.shape
    nh = h * max(w - 1, 0)
    nv = max(h - 1, 0) * w
    visited_h = np.zeros(max(nh, 1), np.bool_)
    visited_v = np.zeros(max(nv, 1), np.bool_)
    m = _count_faces(labels)
    face_kind = np.empty(m, np.int64)
    face_i = np.empty(m, np.int64)
    face_j = np.empty(m, np.int64)
    arc_fstart = np.empty(m + 1, np.int64)
    vert_a = np.empty(2 * m + 1, np.int64)
    vert_b = np.empty(2 * m + 1, np.int64)
    fk = np.empty(4, np.int64)
    fi = np.empty(4, np.int64)
    fj = np.empty(4, np.int64)
    nf = 0
    na = 0
    nvx = 0
    # Two passes: first from vertices of degree != 2 (open arcs), then loops.
    # degree of every vertex (number of incident boundary faces)
    vdeg = np.zeros((h + 1, w + 1), np.int8)
    for i in range(h):
        for j in range(w - 1):
            if labels[i, j] != labels[i, j + 1]:
                vdeg[i, j + 1] += 1
                vdeg[i + 1, j + 1] += 1
    for i in range(h - 1):
        for j in range(w):
            if labels[i, j] != labels[i + 1, j]:
                vdeg[i + 1, j] += 1
                vdeg[i + 1, j + 1] += 1
    for phase in range(2):
        for a in range(h + 1):
            for b in range(w + 1):
                dv = vdeg[a, b]
                if dv == 0 or (phase == 0 and dv == 2):
                    continue
                deg = _vertex_faces(a, b, h, w, labels, fk, fi, fj)
                for s in range(deg):
                    k0 = fk[s]
                    i0 = fi[s]
                    j0 = fj[s]
                    if k0 == 0:
                        if visited_h[i0 * (w - 1) + j0]:
                            continue
                    elif visited_v[i0 * w + j0]:
                        continue
                    # start an arc at (a, b) through face s
                    arc_fstart[na] = nf
                    vert_a[nvx] = a
                    vert_b[nvx] = b
                    nvx += 1
                    ca = a
                    cb = b
                    ck = k0
                    ci = i0
                    cj = j0
                    while True:
                        if ck == 0:
                            visited_h[ci * (w - 1) + cj] = True
                        else:
                            visited_v[ci * w + cj] = True
                        face_kind[nf] = ck
                        face_i[nf] = ci
                        face_j[nf] = cj
                        nf += 1
                        a0, b0, a1, b1 = _face_vertices(ck, ci, cj)
                        if a0 == ca and b0 == cb:
                            na_, nb_ = a1, b1
                        else:
                            na_, nb_ = a0, b0
                        vert_a[nvx] = na_
                        vert_b[nvx] = nb_
                        nvx += 1
                        ca = na_
                        cb = nb_
                        if vdeg[ca, cb] != 2:
                            break
                        _vertex_faces(ca, cb, h, w, labels, fk, fi, fj)
                        found = False
                        for t in range(2):
                            if fk[t] == 0:
                                vis = visited_h[fi[t] * (w - 1) + fj[t]]
                            else:
                                vis = visited_v[fi[t] * w + fj[t]]
                            if not vis:
                                ck = fk[t]
                                ci = fi[t]
                                cj = fj[t]
                                found = True
                                break
                        if not found:
                            break  # closed loop back at its start
                    na += 1
                    # the vertex arrays of fk/fi/fj were overwritten; refresh for remaining faces
                    _vertex_faces(a, b, h, w, labels, fk, fi, fj)
    arc_fstart[na] = nf
    return (
        face_kind,
        face_i,
        face_j,
        arc_fstart[: na + 1].copy(),
        vert_a[:nvx].copy(),
        vert_b[:nvx].copy(),
    )


@njit(cache=True)
def _subdivide_kernel(arc_fstart, vert_a, vert_b, rel_tol, abs_tol):
    """Split every arc recursively into nearly straight pieces (Arbelaez et al. 2011, ``subdivide_local``).

    Returns (piece_arc, piece_v0, piece_v1): vertex indices (into vert_*) of each piece's ends.
    """
    n_arcs = arc_fstart.shape[0] - 1
    cap = 2 * (arc_fstart[n_arcs] + 1)
    piece_arc = np.empty(cap, np.int64)
    piece_v0 = np.empty(cap, np.int64)
    piece_v1 = np.empty(cap, np.int64)
    n_pieces = 0
    stack0 = np.empty(cap, np.int64)
    stack1 = np.empty(cap, np.int64)
    for k in range(n_arcs):
        v_first = arc_fstart[k] + k
        v_last = arc_fstart[k + 1] + k
        top = 0
        stack0[0] = v_first
        stack1[0] = v_last
        top = 1
        while top > 0:
            top -= 1
            s = stack0[top]
            e = stack1[top]
            split = -1
            if e - s >= 2:
                r0 = float(vert_a[s])
                c0 = float(vert_b[s])
                dr = float(vert_a[e]) - r0
                dc = float(vert_b[e]) - c0
                len2 = dr * dr + dc * dc
                if len2 < 1e-12:
                    # closed loop: split at the point farthest from the start
                    best = -1.0
                    for t in range(s + 1, e):
                        pr = vert_a[t] - r0
                        pc = vert_b[t] - c0
                        d = pr * pr + pc * pc
                        if d > best:
                            best = d
                            split = t
                else:
                    length = np.sqrt(len2)
                    outside = False
                    dmax_line = 0.0
                    dmax_seg = -1.0
                    arg = -1
                    for t in range(s + 1, e):
                        pr = vert_a[t] - r0
                        pc = vert_b[t] - c0
                        u = (pr * dr + pc * dc) / len2
                        dl = abs(pr * dc - pc * dr) / length
                        if u < 0.0:
                            outside = True
                            ds = np.sqrt(pr * pr + pc * pc)
                        elif u > 1.0:
                            outside = True
                            qr = vert_a[t] - vert_a[e]
                            qc = vert_b[t] - vert_b[e]
                            ds = np.sqrt(qr * qr + qc * qc)
                        else:
                            ds = dl
                        if dl > dmax_line:
                            dmax_line = dl
                        if ds > dmax_seg:
                            dmax_seg = ds
                            arg = t
                    if outside or (dmax_line > rel_tol * length and dmax_line > abs_tol):
                        split = arg
            if split < 0:
                if n_pieces == piece_arc.shape[0]:
                    grow = piece_arc.shape[0] * 2
                    pa = np.empty(grow, np.int64)
                    p0 = np.empty(grow, np.int64)
                    p1 = np.empty(grow, np.int64)
                    pa[:n_pieces] = piece_arc[:n_pieces]
                    p0[:n_pieces] = piece_v0[:n_pieces]
                    p1[:n_pieces] = piece_v1[:n_pieces]
                    piece_arc, piece_v0, piece_v1 = pa, p0, p1
                piece_arc[n_pieces] = k
                piece_v0[n_pieces] = s
                piece_v1[n_pieces] = e
                n_pieces += 1
            else:
                # push the second half first so pieces come out in arc order
                stack0[top] = split
                stack1[top] = e
                top += 1
                stack0[top] = s
                stack1[top] = split
                top += 1
    return piece_arc[:n_pieces].copy(), piece_v0[:n_pieces].copy(), piece_v1[:n_pieces].copy()


@njit(cache=True)
def _piece_strengths_kernel(
    face_kind, face_i, face_j, arc_fstart, piece_arc, piece_v0, piece_v1, vert_a, vert_b, oriented
):
    """Orientation channel of each piece and the oriented strength of each of its faces."""
    n_or = oriented.shape[0]
    n_pieces = piece_arc.shape[0]
    m = face_kind.shape[0]
    piece_channel = np.empty(n_pieces, np.int64)
    face_piece = np.empty(m, np.int64)
    strength = np.empty(m, np.float64)
    step = np.pi / n_or
    for p in range(n_pieces):
        k = piece_arc[p]
        s = piece_v0[p]
        e = piece_v1[p]
        dr = float(vert_a[e] - vert_a[s])
        dc = float(vert_b[e] - vert_b[s])
        # the edge runs along (row, col) = (cos theta, sin theta), as gPb's lib_image
        theta = np.arctan2(dc, dr)
        if theta < 0.0:
            theta += np.pi
        if theta >= np.pi:
            theta -= np.pi
        o = int(np.floor(theta / step + 0.5)) % n_or
        piece_channel[p] = o
        # faces of arc k between vertex indices s and e: face index = vertex index - k
        for vi in range(s, e):
            f = vi - k
            face_piece[f] = p
            i = face_i[f]
            j = face_j[f]
            if face_kind[f] == 0:
                x = max(oriented[o, i, j], oriented[o, i, j + 1])
            else:
                x = max(oriented[o, i, j], oriented[o, i + 1, j])
            strength[f] = x
    return piece_channel, face_piece, strength


@njit(cache=True)
def _faces_from_edges_kernel(face_kind, face_i, face_j, wh, wv):
    m = face_kind.shape[0]
    out = np.empty(m, np.float64)
    for f in range(m):
        if face_kind[f] == 0:
            out[f] = wh[face_i[f], face_j[f]]
        else:
            out[f] = wv[face_i[f], face_j[f]]
    return out


@njit(cache=True)
def _complete_vertices(g):
    hh, ww = g.shape
    for r in range(0, hh, 2):
        for c in range(0, ww, 2):
            x = 0.0
            if r > 0 and g[r - 1, c] > x:
                x = g[r - 1, c]
            if r + 1 < hh and g[r + 1, c] > x:
                x = g[r + 1, c]
            if c > 0 and g[r, c - 1] > x:
                x = g[r, c - 1]
            if c + 1 < ww and g[r, c + 1] > x:
                x = g[r, c + 1]
            g[r, c] = x
