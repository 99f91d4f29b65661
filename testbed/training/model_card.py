"""The model card (README.md) written next to a trained tiny checkpoint."""

import json
from pathlib import Path

from gprune.families import image_layout

SCALE = {"mme_perception_score": "sum over categories of acc + acc+ (0-200 each)",
         "pope_f1_score": "F1 of 'yes'", "gpt_eval_score": "percent, circular, no GPT judge",
         "anls": "ANLS", "relaxed_overall": "relaxed accuracy (5%)", "exact_match": "exact match"}


def _architecture(config) -> str:
    text, vision = config.text_config, config.vision_config
    tokens = image_layout(config, (64, 64))
    return (f"- Language model: Llama, {text.num_hidden_layers} layers, hidden {text.hidden_size}, MLP "
            f"{text.intermediate_size}, {text.num_attention_heads} heads / {text.num_key_value_heads} KV heads, "
            f"vocabulary {text.vocab_size} (byte-level BPE trained offline, `testbed.tiny.build_tokenizer`).\n"
            f"- Vision tower: CLIP, {vision.num_hidden_layers} layers, hidden {vision.hidden_size}, "
            f"{vision.image_size} px crops of {vision.patch_size} px patches; 2-layer GELU projector.\n"
            f"- Anyres grid pinpoints {config.image_grid_pinpoints}: a 64x64 image gives {tokens.base} base tokens "
            f"+ {tokens.rows}x{tokens.cols} grid tokens + {tokens.rows} row-end newlines = {tokens.full} visual "
            f"tokens.")


def _vision_stage(record: dict) -> list[str]:
    vision = record.get("vision_pretraining")
    if not vision:
        return []
    accuracy = vision["train_accuracy"]
    return [f"- Stage 1, {vision['steps']} steps: the vision tower alone, with two linear heads on its mean-pooled "
            f"patch features, learns the shape and colour of each of {vision['images']:,} easy-VQA train images "
            "(labels from the image's own train answers), as a real LLaVA starts from a pretrained CLIP tower; "
            "the answer loss alone taught it colour but hardly shape (44%, chance 33%). Heads discarded; "
            "training accuracy over its last 20 steps "
            f"shape {accuracy['shape']:.3f}, colour {accuracy['color']:.3f}. Stage 2 below trains every weight."]


def write_model_card(out, record: dict, report: dict | None, command: str) -> Path:
    from transformers import AutoConfig

    out = Path(out)
    config = AutoConfig.from_pretrained(out)
    s, data = record["settings"], record["data"]
    lines = [
        "# gprune tiny LLaVA-NeXT",
        "",
        "A small `LlavaNextForConditionalGeneration` trained from scratch on CPU by this project, so that the "
        "embedded default (`load_model(\"tiny\")`, `--model tiny`) answers questions and pruning visibly costs "
        "accuracy. It is a test instrument, not a general model: it knows easy-VQA's shapes and colours and the "
        "fixture benchmarks' question styles, nothing else.",
        "",
        "## Architecture",
        "",
        f"{record['parameters']:,} parameters, float32, every weight trained from random init.",
        "",
        _architecture(config),
        "",
        "## Training",
        "",
        f"- Data: easy-VQA's train split ({data['easyvqa_train']:,} questions on 4,000 images, the `easy-vqa` "
        f"package) and {data['generated']:,} examples from the fixture generators (`testbed.fixtures`: shape scenes "
        "with colours, counts and sides; rendered signs, sums and invoices; bar charts) under seeds the fixtures "
        "never use. Items equal (pixels and prompt) to a fixture test item "
        f"(seed {report['fixtures']['seed'] if report else 0}, "
        f"n {report['fixtures']['n'] if report else 200}) were dropped: {data['fixture_items_dropped']}.",
        *_vision_stage(record),
        "- Prompts are each benchmark's own lmms-eval prompt in the chat template; the loss is on the answer "
        "tokens and EOS only; lists of annotator answers train on their most common answer.",
        f"- The first {s['look_first_steps']} steps draw only open-answer questions (no yes/no): a yes/no question "
        "is often answerable from its words alone, and a model fed mostly those learns the prior and stops "
        "looking at the image.",
        f"- {s['steps']} steps, batch {s['batch_size']} ({s['easyvqa_share']:.0%} easy-VQA), AdamW lr "
        f"{s['learning_rate']} (warm-up {s['warmup_steps']} steps, cosine to a tenth), weight decay "
        f"{s['weight_decay']}, gradient clip 1.0, seed {s['seed']}; {data['examples_seen']:,} examples seen.",
        f"- Wall time {record['train_seconds'] / 60:.1f} min for both stages on {record['machine']}, plus "
        "building the data (~1.5 min) and the evaluation below. Final "
        f"training loss {record['losses'][-1]['loss']:.4f}.",
        "- Images go through the PIL image processor (`backend=\"pil\"`, which `load_model` uses for this "
        "checkpoint).",
        "",
        "Reproduce (deterministic under the seed on the same torch build and thread count):",
        "",
        "```",
        command,
        "```",
        "",
    ]
    if report:
        lines += [
            "## Accuracy, unpruned",
            "",
            f"Greedy decoding, batch {report['batch_size']}, {report['device']}. easy-VQA: its test split. The "
            f"others: the fixture benchmarks (`gprune fixtures --seed {report['fixtures']['seed']} --n "
            f"{report['fixtures']['n']}`), kept out of training. *Question prior* answers every item with the "
            "training answer most often given to the same prompt, without the image: the chance level of "
            "these benchmarks.",
            "",
            "| benchmark | metric | samples | model | question prior |",
            "|---|---|---:|---:|---:|",
        ]
        for name, row in report["benchmarks"].items():
            lines.append(f"| {name} | {row['metric']} ({SCALE.get(row['metric'], '')}) | {row['samples']} | "
                         f"{row['model']:.4f} | {row['prior']:.4f} |")
        lines.append("")
    lines += [
        "## Limits",
        "",
        "- Tiny capacity, short training: colours, shapes and rendered words are learnt well, but easy-VQA's",
        "  yes/no questions are answered from their words alone (exactly the question prior's accuracy on",
        "  every yes/no question type, `bench/easyvqa_types.py`): it has not learnt to compare what it sees",
        "  with the question's colour or shape. Long numbers (invoice numbers) are mostly beyond it and",
        "  chart values at 120x80 px are read only in part. MMBench scores 0: circular",
        "  evaluation needs the right option letter under all four rotations, and it has not learnt to map a",
        "  colour to its letter. POPE and MME sit at or below the prior. Per-question-type numbers:",
        "  BENCHMARKS.md.",
        "- `training.json` holds the settings, data counts and the loss curve of this run.",
        "",
    ]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    if report:
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return path
