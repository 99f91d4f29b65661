"""FLOPs of the vision side's building blocks, in the convention of gprune/flops.py (2 x multiply-adds of every matrix
product; norms, activations and element-wise ops not counted). Each family composes its tower and projector of these
(gprune/families/)."""


def vit_flops(vision, crops: int, cls_token: bool) -> float:
    """A ViT tower (CLIP, SigLIP) on `crops` square crops: the patch convolution, then every layer's q, k, v and
    out projections, attention scores and weighted values, and two-matrix MLP over the patches (and [CLS])."""
    side = vision.image_size // vision.patch_size
    n, h, m = side * side + int(cls_token), vision.hidden_size, vision.intermediate_size
    patch_conv = 2 * side * side * h * vision.num_channels * vision.patch_size**2
    layer = 2 * n * 4 * h * h + 2 * 2 * n * n * h + 2 * 2 * n * h * m
    return crops * (patch_conv + vision.num_hidden_layers * layer)


def mlp_projector_flops(config, crops: int, tokens: int) -> float:
    """LLaVA's two-layer MLP projector on `tokens` features a crop (the selected vision layers concatenated)."""
    layers = config.vision_feature_layer
    h_in = config.vision_config.hidden_size * (len(layers) if isinstance(layers, (list, tuple)) else 1)
    h = config.text_config.hidden_size
    return crops * 2 * tokens * (h_in * h + h * h)


def cls_attention_flops(vision, crops: int) -> float:
    """VisionZip's [CLS] row, per crop: the k projection of every token, one q projection, one row of scores."""
    side = vision.image_size // vision.patch_size
    n, h = side * side + 1, vision.hidden_size
    return crops * (2 * n * h * h + 2 * h * h + 2 * n * h)
