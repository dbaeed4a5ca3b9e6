"""``distill-study augment``: Tang et al.'s augmented transfer set, labelled by the teacher."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "augment",
        help="write N augmented copies of train, labelled by the cached teacher",
        description=(
            "Apply Tang et al. (2019)'s rules to every training sentence — masking (p-mask), "
            "n-gram sampling (p-ng) and, in place of their POS-guided replacement (no offline "
            "tagger), replacement by a nearest neighbour in the teacher's embedding space "
            "(p-swap, TinyBERT's rule) — and label the copies with the teacher's logits. Only "
            "the distill arm trains on them (search parameter augment_factor)."
        ),
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory with a teacher")
    p.add_argument("--factor", type=int, required=True, metavar="N", help="augmented copies of train")
    p.add_argument("--seed", type=int, default=0, help="seed of the rules (default 0)")
    p.add_argument("--p-mask", type=float, default=0.1, help="per-word mask probability (default 0.1)")
    p.add_argument("--p-swap", type=float, default=0.1,
                   help="per-word embedding-neighbour replacement probability (default 0.1; 0 disables)")
    p.add_argument("--p-ng", type=float, default=0.25, help="probability of keeping only an n-gram (default 0.25)")
    p.add_argument("--device", default="auto", help="device for the teacher's logits: auto, cpu, cuda:N")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from data_prep.augment import AugmentSettings, build_augmented

    settings = AugmentSettings(factor=args.factor, seed=args.seed, p_mask=args.p_mask,
                               p_swap=args.p_swap, p_ng=args.p_ng)
    build_augmented(args.run, settings, device=args.device)
    return 0
