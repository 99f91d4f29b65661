"""Examples to training batches: the prompt exactly as generation sees it, then the answer and EOS,
with the loss on the answer tokens only."""

import torch

from gprune.generation import format_prompt

IGNORE = -100  # label value the loss skips


def encode(processor, example) -> dict:
    """One example's input ids, labels and image tensors. The prompt goes through the processor as
    at inference (image placeholders expanded, BOS, chat template); the answer is tokenized apart,
    as the model produces it after "ASSISTANT:"."""
    prompt = format_prompt(processor, example.text)
    inputs = processor(images=[example.image], text=[prompt], return_tensors="pt")
    answer = processor.tokenizer(" " + example.answer + processor.tokenizer.eos_token, add_special_tokens=False,
                                 return_tensors="pt")["input_ids"][0]
    prompt_ids = inputs["input_ids"][0]
    return {
        "input_ids": torch.cat([prompt_ids, answer]),
        "labels": torch.cat([torch.full_like(prompt_ids, IGNORE), answer]),
        "pixel_values": inputs["pixel_values"][0],  # (crops, 3, H, W)
        "image_sizes": inputs["image_sizes"][0],
    }


def collate(encoded: list[dict], pad_id: int) -> dict:
    """Right-pad the token rows and the per-image crop stacks (the model drops padded crops by
    `image_sizes`)."""
    length = max(len(e["input_ids"]) for e in encoded)
    crops = max(e["pixel_values"].shape[0] for e in encoded)
    input_ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), length), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
    pixel_values = torch.zeros((len(encoded), crops, *encoded[0]["pixel_values"].shape[1:]))
    for row, e in enumerate(encoded):
        n = len(e["input_ids"])
        input_ids[row, :n], labels[row, :n], attention_mask[row, :n] = e["input_ids"], e["labels"], 1
        pixel_values[row, : e["pixel_values"].shape[0]] = e["pixel_values"]
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "pixel_values": pixel_values,
            "image_sizes": torch.stack([e["image_sizes"] for e in encoded])}
