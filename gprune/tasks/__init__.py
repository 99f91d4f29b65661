"""lmms-eval task YAMLs for the eight benchmarks on local data, plus easy-VQA.

Point lmms-eval at this folder with `--include_path`, or load one with `gprune.benchmarks.load_task`.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).parent
