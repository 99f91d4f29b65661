"""Stage 1 of `train-tiny`: teach the vision tower what is in an easy-VQA image before the VQA stage.

A real LLaVA-NeXT starts from a pretrained CLIP tower. Ours starts from random weights, and the
answer loss alone, reaching the tower through the projector and the language model, teaches it
colour in a hundred steps but hardly shape (44% on easy-VQA's shape questions after 2,000 steps,
chance 33%). Trained directly, the same tower learns shape in a few hundred steps. So this stage
trains the tower, with two linear heads on its mean-pooled patch features (the features the
language model gets), on each train image's base view against the image's shape and colour, which
come from the answers of the image's own train questions. The heads are thrown away afterwards.
"""

import numpy as np
import torch

SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("red", "green", "blue", "black", "gray", "yellow", "teal", "brown")


def image_labels(examples) -> list[tuple[object, int, int]]:
    """(image, shape index, colour index) for every easy-VQA image whose train questions name both.
    An easy-VQA image holds one shape; "what shape/what is the X shape?" answers its shape and
    "what color is the shape?" its colour."""
    shapes, colors, images = {}, {}, {}
    for example in examples:
        key = id(example.image)  # easy-VQA examples of one image share the image object
        images[key] = example.image
        if example.answer in SHAPES:
            shapes[key] = SHAPES.index(example.answer)
        elif example.answer in COLORS and "color" in example.text.lower():
            colors[key] = COLORS.index(example.answer)
    return [(images[k], shapes[k], colors[k]) for k in images if k in shapes and k in colors]


def base_views(processor, images) -> torch.Tensor:
    """The anyres base view of each image (the whole image at crop size), as the model receives it."""
    pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return pixel_values[:, 0]


def pretrain_vision(model, processor, examples, steps: int, batch_size: int, learning_rate: float,
                    rng: np.random.Generator, log=print) -> dict:
    """Train `model`'s vision tower in place; return the last head accuracies on the training images."""
    labelled = image_labels(examples)
    if not labelled:
        raise ValueError("vision pre-training found no easy-VQA image with both a shape and a colour answer")
    views = base_views(processor, [image for image, _, _ in labelled])
    shapes = torch.tensor([s for _, s, _ in labelled])
    colors = torch.tensor([c for _, _, c in labelled])
    tower = model.model.vision_tower
    width = tower.config.hidden_size
    heads = torch.nn.ModuleDict({"shape": torch.nn.Linear(width, len(SHAPES)),
                                 "color": torch.nn.Linear(width, len(COLORS))})
    optimizer = torch.optim.AdamW([*tower.parameters(), *heads.parameters()], lr=learning_rate, weight_decay=0.01)
    tower.train()
    correct = {"shape": [], "color": []}
    for step in range(steps):
        index = torch.from_numpy(rng.choice(len(labelled), size=batch_size, replace=False))
        pooled = tower(pixel_values=views[index]).last_hidden_state[:, 1:].mean(1)  # CLS dropped, as the LM sees it
        logits = {name: head(pooled) for name, head in heads.items()}
        targets = {"shape": shapes[index], "color": colors[index]}
        loss = sum(torch.nn.functional.cross_entropy(logits[n], targets[n]) for n in heads)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name in heads:
            correct[name] = (correct[name] + (logits[name].argmax(-1) == targets[name]).tolist())[-20 * batch_size:]
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"  vision step {step + 1}/{steps}  loss {loss.item():.3f}  "
                + "  ".join(f"{n} {np.mean(c):.3f}" for n, c in correct.items()))
    return {"images": len(labelled), "steps": steps,
            "train_accuracy": {name: float(np.mean(c)) for name, c in correct.items()}}
