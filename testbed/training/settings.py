"""The knobs of `gprune train-tiny`; the defaults made the shipped checkpoint."""

from dataclasses import dataclass


@dataclass
class TrainSettings:
    steps: int = 2000
    seed: int = 0
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    # First steps on open-answer questions only: a yes/no question is often answerable from the
    # question alone, and a model fed mostly those learns the prior and never looks at the image.
    look_first_steps: int = 400
    weight_decay: float = 0.01
    # Stage 1: the vision tower alone learns each easy-VQA image's shape and colour (vision_pretrain.py).
    vision_pretrain_steps: int = 1000
    vision_pretrain_batch_size: int = 32
    easyvqa_share: float = 0.6  # of each batch; the rest is fixture-style generated data
    generated_per_benchmark: int = 1500
    hidden: int = 128  # language model
    layers: int = 4
    vision_hidden: int = 128
    vision_layers: int = 2
    threads: int = 2
