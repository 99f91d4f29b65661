"""`gprune train-tiny` end to end: data, training, the unpruned report, the model card."""

from dataclasses import fields

from .model_card import write_model_card
from .report import question_prior, save_prior, trained_model_report
from .settings import TrainSettings
from .train import build_data, train_tiny

FLAGS = {"steps": "--steps", "seed": "--seed", "batch_size": "--batch-size",
         "vision_pretrain_steps": "--vision-steps",
         "generated_per_benchmark": "--generated-per-benchmark"}


def reproduce_command(out, settings: TrainSettings) -> str:
    defaults = TrainSettings()
    parts = [f"gprune train-tiny --out {out}"]
    for field in fields(TrainSettings):
        value = getattr(settings, field.name)
        if field.name in ("steps", "seed") or (field.name in FLAGS and value != getattr(defaults, field.name)):
            parts.append(f"{FLAGS[field.name]} {value}")
    return " ".join(parts)


def run_training(out, settings: TrainSettings, report: bool = True, easyvqa_limit: int | None = None,
                 log=print) -> dict:
    data = build_data(settings, log)
    record = train_tiny(out, settings, data, log)
    prior = question_prior(data.easyvqa + data.generated)
    save_prior(out, prior)
    results = None
    if report:
        log("evaluating the trained model unpruned (easy-VQA test, fixture benchmarks) and the question prior")
        results = trained_model_report(out, prior, easyvqa_limit=easyvqa_limit, log=log)
    card = write_model_card(out, record, results, reproduce_command(out, settings))
    log(f"model card: {card}")
    return {"training": record, "report": results}
