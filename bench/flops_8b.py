"""FLOPs of llama3-llava-next-8b (its public config, written out: no download) in both conventions.

`visual` is the paper's count of 2880 visual tokens (576 base + 4 x 576 grid, no newline tokens);
`text` prompt tokens are added to the prefill; one generated token (the prefill's own).

    .venv/bin/python bench/flops_8b.py [--text 0]
"""

import argparse

from transformers import LlavaNextConfig

from gprune import PruneConfig, exact_flops, fastv_flops, keep_count
from gprune.layout import ImageLayout

LLAMA3_LLAVA_NEXT_8B = LlavaNextConfig(
    text_config={"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128320},
    vision_config={"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                   "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14},
    image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    vision_feature_layer=-2,
    vision_feature_select_strategy="default",
)
PAPER_TFLOPS = {0.0: 18.52, 0.7: 6.76}  # Table 1 baseline (as quoted by the project) and Table 2 at 70%


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--text", type=int, default=0, help="text tokens in the prompt")
    args = parser.parse_args()
    # 2880 = 576 base + 2304 grid tokens; for the FLOPs of the pruned LM only token counts matter.
    layout = ImageLayout(base=576, rows=48, cols=48, crops=5)
    print(f"llama3-llava-next-8b, 2880 visual tokens (+{args.text} text), G-Prune s=0.5 t=5")
    print("| pruned | visual kept | fastv TMACs (paper convention) | paper "
          "| exact TFLOPs: LM prefill | vision+projector | selection |")
    print("|---|---|---|---|---|---|---|")
    for ratio in (0.0, 0.5, 0.7, 0.9):
        kept = keep_count(576, ratio) + keep_count(2304, ratio)
        n = kept + args.text
        flops = exact_flops(LLAMA3_LLAVA_NEXT_8B, n, 1, [layout], PruneConfig(ratio=ratio))
        paper = PAPER_TFLOPS.get(ratio)
        print(f"| {ratio:.0%} | {kept} | {fastv_flops(LLAMA3_LLAVA_NEXT_8B, n) / 1e12:.2f} | "
              f"{paper if paper else '-'} | {flops.prefill / 1e12:.2f} | "
              f"{(flops.vision + flops.projector) / 1e12:.2f} | {flops.selection / 1e12:.3f} |")


if __name__ == "__main__":
    main()
