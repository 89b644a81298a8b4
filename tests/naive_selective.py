"""Naive selective-search grouping: every step recomputes all features from pixel masks."""

import numpy as np


def naive_greedy_merge(labels, image, texture_values, terms, colour_bins=25, texture_bins=10):
    """Merge sequence as a list of (frozenset, frozenset) of initial labels, most similar first.

    Features of a region are recomputed from its pixels at every step (no area-weighted update),
    adjacency from 4-neighbouring pixels.
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    regions = [frozenset([int(v)]) for v in np.unique(labels)]

    def hist(mask, values, bins):
        v = values[mask]  # (n, D)
        q = np.minimum((v * bins).astype(int), bins - 1)
        out = np.concatenate([np.bincount(q[:, d], minlength=bins) for d in range(v.shape[1])])
        return out / out.sum()

    def feats(reg):
        mask = np.isin(labels, list(reg))
        rr, cc = np.nonzero(mask)
        return {"area": mask.sum(), "box": (rr.min(), cc.min(), rr.max() + 1, cc.max() + 1),
                "colour": hist(mask, image, colour_bins),
                "texture": hist(mask, texture_values, texture_bins), "mask": mask}

    def adjacent(a, b):
        m = a["mask"]
        grown = m.copy()
        grown[1:] |= m[:-1]
        grown[:-1] |= m[1:]
        grown[:, 1:] |= m[:, :-1]
        grown[:, :-1] |= m[:, 1:]
        return bool((grown & b["mask"]).any())

    def sim(a, b):
        s = 0.0
        if "colour" in terms:
            s += np.minimum(a["colour"], b["colour"]).sum()
        if "texture" in terms:
            s += np.minimum(a["texture"], b["texture"]).sum()
        if "size" in terms:
            s += 1 - (a["area"] + b["area"]) / (h * w)
        if "fill" in terms:
            bh = max(a["box"][2], b["box"][2]) - min(a["box"][0], b["box"][0])
            bw = max(a["box"][3], b["box"][3]) - min(a["box"][1], b["box"][1])
            s += 1 - (bh * bw - a["area"] - b["area"]) / (h * w)
        return s

    out = []
    while len(regions) > 1:
        f = [feats(r) for r in regions]
        best, pair = -np.inf, None
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                if adjacent(f[i], f[j]):
                    s = sim(f[i], f[j])
                    if s > best:
                        best, pair = s, (i, j)
        if pair is None:
            break
        i, j = pair
        out.append((regions[i], regions[j]))
        regions = [r for k, r in enumerate(regions) if k not in pair] + [regions[i] | regions[j]]
    return out
