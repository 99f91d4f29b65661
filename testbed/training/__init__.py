"""Training the tiny LLaVA-NeXT behind `--model tiny`: data, batches, the loop, its report and model card."""
