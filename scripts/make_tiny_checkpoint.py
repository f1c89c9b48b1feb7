"""Write a tiny random OpenVLA-OFT or OpenVLA checkpoint in the released Hugging Face layout.

python scripts/make_tiny_checkpoint.py checkpoints/tiny-oft
python scripts/make_tiny_checkpoint.py checkpoints/tiny-robotwin --chunk 25 --action-dim 14 --image-size 112
python scripts/make_tiny_checkpoint.py checkpoints/tiny-openvla --vla openvla

Both families share the released file layout and key names; an OpenVLA checkpoint is one with a
chunk of 1 action, one image and no proprio (load it with model.vla=openvla).
"""

from __future__ import annotations

import argparse

from verl.models.openvla_oft.configuration import tiny
from verl.models.openvla_oft.tiny import write_tiny_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="directory to write")
    parser.add_argument(
        "--vla", choices=("openvla-oft", "openvla"), default="openvla-oft", help="model family"
    )
    parser.add_argument(
        "--chunk", type=int, default=None, help="actions per chunk (OFT: LIBERO 8, RoboTwin 25; OpenVLA: 1)"
    )
    parser.add_argument(
        "--action-dim", type=int, default=7, help="dimensions per action (LIBERO 7, RoboTwin 14)"
    )
    parser.add_argument("--image-size", type=int, default=112, help="input resolution (multiple of 14)")
    parser.add_argument("--num-images", type=int, default=1, help="1 = agent view, 2 = plus wrist camera")
    parser.add_argument("--use-proprio", action="store_true", help="append a proprio token")
    parser.add_argument("--unnorm-key", default="libero_spatial_no_noops", help="dataset statistics key")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args()
    chunk = args.chunk or (1 if args.vla == "openvla" else 8)
    if args.vla == "openvla" and (chunk != 1 or args.use_proprio or args.num_images != 1):
        parser.error(
            "--vla openvla predicts one action from one image without proprio: --chunk 1, --num-images 1"
        )
    config = tiny(
        image_size=args.image_size,
        num_actions_chunk=chunk,
        action_dim=args.action_dim,
        use_proprio=args.use_proprio,
        num_images_in_input=args.num_images,
    )
    path = write_tiny_checkpoint(args.output, config, seed=args.seed, unnorm_key=args.unnorm_key)
    print(path)


if __name__ == "__main__":
    main()
