"""``bottomup segment``: ucm2 hierarchies for images and folders (a resumable folder job)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bottomup.cli import add_command, add_contours_argument, add_job_arguments, run_job_from_args
from bottomup.contours.source import ARC_RULES

_DESCRIPTION = """\
Compute the OWT-UCM hierarchy of each image (gPb contours by default, --contours learned for the
CNN) and write its ucm2 (BSDS layout, one file per image, named after the image). gPb's quality
preset combines the hierarchies of the image and of its half-size copy (MCG's alignment;
--single-scale for the image's own). --format mat is BSDS-compatible (variable ucm2), so the
official MATLAB benchmark reads it; every format (mat, npz, 16-bit png) is read back by
`bottomup evaluate`, `bottomup interactive --ucm` and bottomup.io.read_ucm2.

To look at a result: --cut N (N regions) or --threshold T (ucm2 <= T) also writes
<name>_labels.png (the regions colour-coded; --labels-16bit: raw 16-bit ids 0..N-1) and
<name>_overlay.png (the region boundaries drawn in red on the image).

Outputs are written atomically. Beside each output NAME a record .NAME.params.json keeps the
parameters, the SHA-256 of the model files used and the image size. A rerun skips the images
whose output exists with the same parameters, so an interrupted run resumes; outputs of other
parameters, or without a record, stop the run before it starts unless --overwrite is given.
A manifest (versions, parameters, timings, failures) is written beside the outputs. Failures are
listed and the rest go on; the exit status is 1 if any failed, 2 if the run could not start
(no images, outputs of other parameters)."""


def segment_task(in_path, out_path, *, contours="gpb", arcs=None, cut=None, threshold=None,
                 labels_16bit=False, **options) -> dict:
    """The ``segment`` folder-job task: the ucm2 of one image, and with ``cut`` (regions) or
    ``threshold`` its labels (colour-coded, or raw 16-bit ids) and a boundary overlay.

    ``contours`` names the source and ``options`` configure it
    (:meth:`bottomup.contours.ContourSource.configured`); ``arcs`` as :func:`bottomup.segment`.
    The pictures are written first and the ucm2 (``out_path``) last, each atomically.
    """
    import numpy as np

    from bottomup.contours import get_source
    from bottomup.io import read_image, write_ucm2
    from bottomup.pipeline import segment
    from bottomup.viz import color_labels, draw_boundaries, write_image

    source = get_source(contours).configured(**options)
    img = read_image(in_path)
    h = segment(img, source, arcs=arcs)
    info = {"height": int(img.shape[0]), "width": int(img.shape[1]), "n_leaves": int(h.n_leaves),
            "pid": os.getpid()}
    if cut is not None or threshold is not None:
        labels = h.cut(threshold=threshold, n_regions=cut)
        n = int(labels.max()) + 1
        if labels_16bit and n > 65536:
            raise ValueError(f"{n} regions do not fit 16-bit labels; use a coarser --cut/--threshold")
        out = Path(out_path)
        names = [f"{out.stem}_labels.png", f"{out.stem}_overlay.png"]
        picture = labels.astype(np.uint16) if labels_16bit else color_labels(labels)
        write_image(out.with_name(names[0]), picture)
        write_image(out.with_name(names[1]), draw_boundaries(img, labels))
        info |= {"n_regions": n, "outputs": names}
    write_ucm2(out_path, h.to_ucm2())
    return info


def _segment_model_files(*, contours="gpb", arcs=None, cut=None, threshold=None, labels_16bit=False,
                         **options) -> list:
    from bottomup.contours import get_source
    from bottomup.pipeline import model_files

    return model_files(get_source(contours).configured(**options), arcs)


segment_task.model_files = _segment_model_files


def source_options(args) -> dict:
    """The contour-source options given on the command line (``--preset``, ``--seed``,
    ``--multiscale``), checked against the source: ``--preset`` and ``--seed`` are gPb's."""
    opts = {}
    if args.preset == "mcg":  # the old name, one release
        print("bottomup: --preset mcg is called --preset medium now", file=sys.stderr)
        args.preset = "medium"
    if args.preset is not None:
        opts["preset"] = args.preset
    if args.seed is not None:
        opts["seed"] = args.seed
    if opts and args.contours != "gpb":
        raise ValueError(f"--preset and --seed are options of --contours gpb, not {args.contours}")
    if getattr(args, "multiscale", None) is not None:
        opts["multiscale"] = args.multiscale
    elif args.preset is not None:
        # the preset's own default (two scales for quality only), not the default source's
        from bottomup.contours import GPb

        opts["multiscale"] = GPb(args.preset).multiscale is not None
    return opts


def run(args) -> int:
    from bottomup.contours import get_source

    try:
        opts = source_options(args)
        source = get_source(args.contours).configured(**opts)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"bottomup segment: error: {exc}", file=sys.stderr)
        return 2
    # written out in full, so that the manifest says what ran
    if args.cut is not None and args.cut < 1:
        print(f"bottomup segment: error: --cut must be >= 1 regions, got {args.cut}", file=sys.stderr)
        return 2
    if args.threshold is not None and not args.threshold >= 0:
        print(f"bottomup segment: error: --threshold must be >= 0, got {args.threshold}", file=sys.stderr)
        return 2
    if args.labels_16bit and args.cut is None and args.threshold is None:
        print("bottomup segment: error: --labels-16bit needs --cut N or --threshold T", file=sys.stderr)
        return 2
    # written out in full, so that the manifest and each output's record say what ran
    params = {"contours": args.contours, "arcs": args.arcs or source.arcs,
              "multiscale": source.multiscale is not None} | opts
    if args.contours == "gpb":
        params |= {"preset": source.preset, "seed": source.seed}
    params |= {"cut": args.cut, "threshold": args.threshold, "labels_16bit": args.labels_16bit}
    return run_job_from_args("segment", args, f".{args.format}", params)


def register(subparsers) -> None:
    """Add ``segment`` to the ``bottomup`` command line."""
    p = add_command(subparsers, "segment", run, "ucm2 hierarchy per image (gPb-owt-ucm)", _DESCRIPTION)
    add_job_arguments(p)
    p.add_argument("--format", choices=("mat", "npz", "png"), default="mat",
                   help="ucm2 file format (default mat, BSDS-compatible)")
    add_contours_argument(p)
    p.add_argument("--preset", choices=("quality", "balanced", "fast", "medium", "mcg"),
                   help="gPb preset (default quality; --contours gpb only; mcg: old name of medium)")
    p.add_argument("--seed", type=int, help="seed of gPb's texton k-means (default 0; --contours gpb only)")
    p.add_argument("--arcs", choices=ARC_RULES,
                   help="arc scores before the merging: mean contour strength (the OWT-UCM; default for "
                        "gPb), or the shipped scorer fitted on the arcs of the learned contours (default for "
                        "--contours learned) or of gPb")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--multiscale", dest="multiscale", action="store_true", default=None,
                       help="combine the hierarchies of the image at x1 and x0.5 (MCG's alignment; "
                            "the default of gPb's quality preset; opt-in for other sources)")
    scale.add_argument("--single-scale", dest="multiscale", action="store_false",
                       help="the image's own hierarchy only (the default of the other presets and sources)")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--cut", type=int, metavar="N",
                     help="also write <name>_labels.png and <name>_overlay.png of the cut with N regions")
    cut.add_argument("--threshold", type=float, metavar="T",
                     help="as --cut, for the cut at ucm2 level T (regions of ucm2 <= T)")
    p.add_argument("--labels-16bit", action="store_true",
                   help="write the labels as raw 16-bit ids 0..N-1 instead of colours")
