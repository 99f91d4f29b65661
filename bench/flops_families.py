"""FLOPs of LLaVA-1.5-7B and Qwen2.5-VL-7B (their public configs, written out: no download) at the budgets the
field's tables use, in both conventions, next to each other: LLaVA-1.5's one view of 576 tokens kept at 192 / 128 /
64 (66.7 / 77.8 / 88.9% removed), and Qwen2.5-VL on a 672x672 image (24 x 24 = 576 merged tokens) at the same
ratios. `text` prompt tokens are added to the prefill; one generated token (the prefill's own).

    .venv/bin/python bench/flops_families.py [--text 64]
"""

import argparse

from transformers import LlavaConfig, Qwen2_5_VLConfig

from gprune import PruneConfig, exact_flops, fastv_flops
from gprune.layout import ImageLayout

LLAVA_15_7B = LlavaConfig(
    text_config={"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064},
    vision_config={"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                   "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336, "patch_size": 14},
    vision_feature_layer=-2, vision_feature_select_strategy="default")
QWEN25_VL_7B = Qwen2_5_VLConfig(
    text_config={"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
                 "num_key_value_heads": 4, "vocab_size": 152064},
    vision_config={"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                   "fullatt_block_indexes": [7, 15, 23, 31], "out_hidden_size": 3584})
MODELS = {"llava-1.5-7b": (LLAVA_15_7B, ImageLayout(base=576, rows=0, cols=0, fit="crop")),
          "qwen2.5-vl-7b, 672x672": (QWEN25_VL_7B, ImageLayout(base=576, rows=0, cols=0, base_grid=(24, 24),
                                                              fit="whole"))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--text", type=int, default=64, help="text tokens in the prompt")
    args = parser.parse_args()
    print(f"576 visual tokens per image (+{args.text} text), G-Prune s=0.5 t=5, one generated token")
    print("| model | removed | visual kept | fastv TMACs (papers' convention) | exact TFLOPs: LM prefill "
          "| vision + projector/merger | selection | total |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (config, layout) in MODELS.items():
        for ratio in (0.0, 2 / 3, 7 / 9, 8 / 9):
            kept = layout.kept(ratio)
            n = kept + args.text
            flops = exact_flops(config, n, 1, [layout], PruneConfig(ratio=ratio))
            print(f"| {name} | {ratio:.1%} | {kept} | {fastv_flops(config, n) / 1e12:.2f} | "
                  f"{flops.prefill / 1e12:.2f} | {(flops.vision + flops.projector) / 1e12:.2f} | "
                  f"{flops.selection / 1e12:.4f} | {flops.total / 1e12:.2f} |")


if __name__ == "__main__":
    main()
