"""`gprune fixtures`: deterministic, in each dataset's schema and hub layout, covering metric edge cases."""

import datasets
import pytest

from cli.main import main
from gprune.benchmarks import load_task
from testbed.fixtures import write_fixtures


def rows(root, benchmark, folder, split):
    files = sorted((root / benchmark / folder).glob(f"{split}-*.parquet"))
    return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    first = write_fixtures(tmp_path / "a", n=6, seed=3, benchmarks=["textvqa", "chartqa"])
    second = write_fixtures(tmp_path / "b", n=6, seed=3, benchmarks=["textvqa", "chartqa"])
    third = write_fixtures(tmp_path / "c", n=6, seed=4, benchmarks=["textvqa", "chartqa"])
    for bench, folder, split in (("textvqa", "data", "validation"), ("chartqa", "data", "test")):
        assert rows(first, bench, folder, split).to_list() == rows(second, bench, folder, split).to_list()
        assert rows(first, bench, folder, split).to_list() != rows(third, bench, folder, split).to_list()


def test_every_benchmark_loads_through_its_lmms_eval_task(fixtures_dir):
    for name in ("gqa", "vqav2", "mme", "pope", "mmbench", "chartqa", "docvqa", "textvqa"):
        task = load_task(name, fixtures_dir)
        docs = task.test_docs()
        assert len(docs) == 16
        visuals = task.doc_to_visual(docs[0])
        assert len(visuals) == 1 and visuals[0].mode == "RGB"
        assert task.doc_to_text(docs[0]).strip()


def test_vqav2_annotators_disagree(fixtures_dir):
    data = rows(fixtures_dir, "vqav2", "data", "validation")
    answer_sets = [{a["answer"] for a in r["answers"]} for r in data]
    assert all(len(r["answers"]) == 10 for r in data)
    assert any(len(s) > 1 for s in answer_sets)
    assert any({"2", "two"} <= s or {"3", "three"} <= s or {"1", "one"} <= s for s in answer_sets)


def test_text_benchmarks_have_several_valid_answers(fixtures_dir):
    textvqa = rows(fixtures_dir, "textvqa", "data", "validation")
    assert any(len(set(r["answers"])) > 1 for r in textvqa) and all(r["ocr_tokens"] for r in textvqa)
    docvqa = rows(fixtures_dir, "docvqa", "DocVQA", "validation")
    assert any(len(r["answers"]) > 1 for r in docvqa)


def test_chartqa_covers_both_splits_percentages_and_zero(fixtures_dir):
    data = rows(fixtures_dir, "chartqa", "data", "test")
    assert set(data["type"]) == {"human_test", "augmented_test"}
    assert any(a.endswith("%") for a in data["answer"]) and "0" in data["answer"]


def test_mme_pairs_share_a_question_id_with_yes_and_no(fixtures_dir):
    data = rows(fixtures_dir, "mme", "data", "test")
    by_id = {}
    for r in data:
        by_id.setdefault(r["question_id"], []).append(r["answer"])
    assert all(sorted(answers) == ["No", "Yes"] for answers in by_id.values())
    assert {"existence", "count", "color", "position", "OCR"} & set(data["category"])
    assert "numerical_calculation" in set(data["category"])  # a cognition category


def test_pope_has_all_three_categories_and_both_answers(fixtures_dir):
    data = rows(fixtures_dir, "pope", "data", "test")
    assert set(data["category"]) == {"random", "popular", "adversarial"}
    assert set(data["answer"]) == {"yes", "no"}


def test_mmbench_has_circular_copies_and_empty_hints(fixtures_dir):
    data = rows(fixtures_dir, "mmbench", "en", "dev").to_list()
    originals = {r["index"]: r for r in data if r["index"] < 1_000_000}
    copies = [r for r in data if r["index"] >= 1_000_000]
    assert copies and any(r["hint"] is None for r in data)
    for copy in copies:
        original = originals[copy["index"] % 1_000_000]
        assert copy[copy["answer"]] == original[original["answer"]]  # same correct option text, rotated letter
        assert copy["answer"] != original["answer"] or copy["A"] == original["A"]


def test_gqa_questions_find_their_images(fixtures_dir):
    questions = rows(fixtures_dir, "gqa", "testdev_balanced_instructions", "testdev")
    images = rows(fixtures_dir, "gqa", "testdev_balanced_images", "testdev")
    assert set(questions["imageId"]) <= set(images["id"])


def test_cli_writes_fixtures(tmp_path, capsys):
    assert main(["fixtures", "--out", str(tmp_path), "--n", "4"]) == 0
    assert (tmp_path / "mmbench" / "en" / "dev-00000-of-00001.parquet").exists()
    assert "--data-dir" in capsys.readouterr().out


def test_fixtures_reject_too_few_samples(tmp_path):
    with pytest.raises(ValueError, match="n=1"):
        write_fixtures(tmp_path, n=1)
