"""The `clean` step: find exact and near-duplicate faces by perceptual hash, drop them, and report the
groups whose labels conflict. Works on the competition layout, FER+ and fer2013.csv.

    python -m emotion.clean --data skillbox --data-root competition/ --report clean_report.csv
    python -m emotion.clean --data ferplus --splits train valid test      # duplicates across FER+ splits

The report CSV has one row per image in a duplicate group: group, image, label, conflict, kept.
`--keep-list FILE` writes the kept images (one name per line) for training on the cleaned set;
`python -m emotion.train --clean` applies the same rule on the fly.
"""
from __future__ import annotations

import argparse
import collections
import csv
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402,F401

from core.cli import OutputFile, run_main  # noqa: E402
from core.io import atomic_open  # noqa: E402
from emotion.data import find_duplicates, load_fer2013_csv, load_ferplus, load_skillbox_train  # noqa: E402
from emotion.train import FERPLUS_ROOT  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("skillbox", "ferplus", "fer2013"), default="skillbox", help="input format")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="competition folder (with train/), FER+ folder, or fer2013.csv (default for ferplus: the shared copy)")
    parser.add_argument("--splits", nargs="+", default=["train"], help="ferplus: splits to scan together (train valid test)")
    parser.add_argument("--max-distance", type=int, default=4,
                        help="largest Hamming distance between 64-bit pHashes that counts as a duplicate (0 = exact)")
    parser.add_argument("--hash-size", type=int, default=64, help="side the faces are decoded at before hashing")
    parser.add_argument("--detector", choices=("mediapipe", "haar", "none"), default="none",
                        help="skillbox: hash the face crop instead of the whole photo")
    parser.add_argument("--report", type=OutputFile(), default="clean_report.csv", help="duplicate groups CSV (default %(default)s)")
    parser.add_argument("--keep-list", type=Path, default=None, help="write the names of the kept images here")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.data == "ferplus":
        faces = load_ferplus(args.data_root or FERPLUS_ROOT, splits=args.splits, drop_ties=False)
    elif args.data == "fer2013":
        faces = load_fer2013_csv(args.data_root)
    else:
        if args.data_root is None:
            raise ValueError("--data skillbox needs --data-root")
        cropper = None
        if args.detector != "none":
            from emotion.faces import FaceDetector

            cropper = FaceDetector(args.detector)
        faces = load_skillbox_train(args.data_root, size=args.hash_size, face_cropper=cropper)
    report = find_duplicates(faces, max_distance=args.max_distance)
    rows = report.rows(faces.names, faces.labels)
    with atomic_open(args.report) as handle:
        writer = csv.DictWriter(handle, fieldnames=["group", "image", "label", "conflict", "kept"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if args.keep_list is not None:
        with atomic_open(args.keep_list) as handle:
            handle.writelines(f"{faces.names[i]}\n" for i in report.keep)
    summary = {"images": len(faces), "duplicate_groups": len(report.groups), "conflicting_groups": len(report.conflicts),
               "dropped": len(faces) - len(report.keep), "kept": len(report.keep)}
    if args.data == "ferplus" and len(args.splits) > 1:
        split_of = lambda name: name.split("/")[0]  # noqa: E731
        summary["groups_by_splits"] = dict(collections.Counter(
            "+".join(sorted({split_of(faces.names[i]) for i in group})) for group in report.groups))
    print(summary)
    print(f"wrote {args.report}")
    return summary


if __name__ == "__main__":
    run_main(main)
