"""Benchmark files that are damaged, incomplete or hostile: checked before model work where the file
itself is wrong, one error record (never a lost benchmark) where one row is."""

import io
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cli.main import main
from gprune import PruneConfig, evaluate
from gprune.benchmarks import check_data
from gprune.tasks import DataLayoutError

TEXTVQA = "textvqa/data/validation-00000-of-00001.parquet"


def set_image(parquet, row: int, value: dict) -> None:
    table = pq.read_table(parquet)
    images = table.column("image").to_pylist()
    images[row] = value
    index = table.schema.get_field_index("image")
    field = table.schema.field(index)
    pq.write_table(table.set_column(index, field, pa.array(images, type=field.type)), parquet)


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (336, 336), "navy").save(buffer, format="PNG")
    whole = buffer.getvalue()
    return whole[: len(whole) * 2 // 3]


@pytest.fixture
def textvqa_copy(fixtures_dir, tmp_path):
    shutil.copytree(fixtures_dir / "textvqa", tmp_path / "textvqa")
    return tmp_path


def test_a_truncated_image_is_scored_as_lmms_eval_would_and_flagged(tiny, textvqa_copy):
    model, processor = tiny
    set_image(textvqa_copy / TEXTVQA, 1, {"bytes": truncated_png(), "path": None})
    result = evaluate(model, processor, ["textvqa"], PruneConfig(ratio=0.5), limit=3, batch_size=3,
                      data_dir=textvqa_copy, max_new_tokens=4)["textvqa"]
    assert result.errors == 0 and result.truncated_images == 1
    assert [r.truncated_image for r in result.records] == [False, True, False]
    assert result.records[1].prediction is not None and result.records[1].score is not None


def test_an_image_path_outside_the_dataset_folder_is_refused(tiny, textvqa_copy, tmp_path_factory):
    model, processor = tiny
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.png"
    Image.new("RGB", (64, 64), "red").save(outside)
    inside = textvqa_copy / "textvqa" / "images" / "local.png"
    inside.parent.mkdir()
    Image.new("RGB", (64, 64), "green").save(inside)
    set_image(textvqa_copy / TEXTVQA, 0, {"bytes": None, "path": "/etc/passwd"})
    set_image(textvqa_copy / TEXTVQA, 1, {"bytes": None, "path": str(outside)})
    set_image(textvqa_copy / TEXTVQA, 2, {"bytes": None, "path": str(inside)})
    result = evaluate(model, processor, ["textvqa"], PruneConfig(ratio=0.5), limit=4, batch_size=2,
                      data_dir=textvqa_copy, max_new_tokens=4)["textvqa"]
    first, second, third, fourth = result.records
    assert "'/etc/passwd'" in first.error and "outside the dataset folder" in first.error
    assert first.error.startswith("data:") and first.score == 0  # counted, as wrong
    assert str(outside) in second.error
    assert third.error is None and fourth.error is None  # a file under the folder is fine
    assert result.errors == 2 and result.error_rate == 0.5


def drop_column(parquet, column: str) -> None:
    table = pq.read_table(parquet)
    pq.write_table(table.drop_columns([column]), parquet)


def raw_image_bytes(parquet) -> None:
    """The image column as plain bytes: what a hand-made parquet file without the Image feature holds."""
    table = pq.read_table(parquet)
    raw = pa.array([value["bytes"] for value in table.column("image").to_pylist()], type=pa.binary())
    pq.write_table(table.set_column(table.schema.get_field_index("image"), "image", raw), parquet)


@pytest.mark.parametrize("damage,message", [
    (lambda p: drop_column(p, "question"), "lacks column(s) question"),
    (lambda p: drop_column(p, "answers"), "lacks column(s) answers"),
    (lambda p: raw_image_bytes(p), "column image holds binary, not images (the datasets Image feature"),
    (lambda p: pq.write_table(pq.read_table(p).slice(0, 0), p), "hold(s) no rows"),
    (lambda p: p.write_bytes(b""), "is not a readable parquet file"),
    (lambda p: p.write_bytes(b"PAR1 this is not a parquet file at all" * 10), "is not a readable parquet file"),
])
def test_a_damaged_benchmark_file_fails_before_model_work_naming_it(textvqa_copy, damage, message, capsys):
    parquet = textvqa_copy / TEXTVQA
    damage(parquet)
    with pytest.raises(DataLayoutError) as caught:
        check_data(["textvqa"], textvqa_copy)
    assert message in str(caught.value) and str(parquet) in str(caught.value)
    assert "hf download lmms-lab/textvqa" in str(caught.value)  # the fix
    # the CLI: the same one message, exit 2, and no model loaded (a missing model would fail later)
    code = main(["eval", "--benchmarks", "textvqa", "--data-dir", str(textvqa_copy), "--model", "/no/such/model",
                 "--limit", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and "/no/such/model" not in err


def test_a_scoring_failure_is_a_data_error_not_retried_as_a_model_error(tiny, textvqa_copy):
    from gprune.benchmarks import load_task
    from gprune.evaluation import evaluate_task

    model, processor = tiny
    task = load_task("textvqa", textvqa_copy)
    calls = []
    original = task.process_results

    def process_results(doc, results):
        calls.append(doc["question_id"])
        if len(calls) == 2:
            raise KeyError("answers")
        return original(doc, results)

    task.process_results = process_results
    result = evaluate_task(model, processor, task, limit=3, batch_size=3, max_new_tokens=4)
    second = result.records[1]
    assert second.error.startswith("data: scoring failed: KeyError") and result.errors == 1
    assert result.batches == 1  # the batch was not rerun sample by sample


def set_value(parquet, column: str, row: int, value, raw: bytes | None = None) -> None:
    """Row `row` of `column` set to `value`, or to bytes that are not UTF-8 (`raw`) in a string column."""
    table = pq.read_table(parquet)
    index = table.schema.get_field_index(column)
    field = table.schema.field(index)
    if raw is not None:
        values = table.column(column).cast(pa.binary()).to_pylist()
        values[row] = raw
        array = pa.array(values, type=pa.binary()).view(field.type)  # arrow does not re-check UTF-8 here
    else:
        values = table.column(column).to_pylist()
        values[row] = value
        array = pa.array(values, type=field.type)
    pq.write_table(table.set_column(index, field, array), parquet)


def one_bad_row(tiny, data_dir, benchmark, row=0, limit=4):
    model, processor = tiny
    result = evaluate(model, processor, [benchmark], PruneConfig(ratio=0.5), limit=limit, batch_size=2,
                      data_dir=data_dir, max_new_tokens=4)[benchmark]
    assert result.errors == 1 and result.records[row].error and result.records[row].error.startswith("data: ")
    assert all(r.error is None and r.score is not None for i, r in enumerate(result.records) if i != row)
    return result.records[row].error


def test_a_question_that_is_empty_in_row_zero_is_one_error_naming_the_column(tiny, textvqa_copy):
    set_value(textvqa_copy / TEXTVQA, "question", 0, None)
    assert "column(s) 'question' empty (None) in this row" in one_bad_row(tiny, textvqa_copy, "textvqa")


def test_a_question_that_is_not_utf8_in_row_zero_is_one_error_naming_the_column(tiny, textvqa_copy):
    set_value(textvqa_copy / TEXTVQA, "question", 0, None, raw=b"what does the \xff sign say?")
    assert "column 'question' is not UTF-8 text (invalid start byte at byte 14)" in one_bad_row(
        tiny, textvqa_copy, "textvqa")


def test_a_gqa_question_whose_image_is_not_there_is_one_error_naming_the_image_id(tiny, fixtures_dir, tmp_path):
    shutil.copytree(fixtures_dir / "gqa", tmp_path / "gqa")
    questions = next((tmp_path / "gqa" / "testdev_balanced_instructions").glob("*.parquet"))
    set_value(questions, "imageId", 1, "n999999")
    error = one_bad_row(tiny, tmp_path, "gqa", row=1)
    assert "column 'imageId': 'n999999' has no image in testdev_balanced_images" in error


def test_an_image_over_the_pixel_budget_is_one_error_before_it_is_decoded(tiny, textvqa_copy):
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, format="PNG")  # 81 M pixels in a few hundred KB
    set_image(textvqa_copy / TEXTVQA, 2, {"bytes": buffer.getvalue(), "path": None})
    error = one_bad_row(tiny, textvqa_copy, "textvqa", row=2)
    assert "a 9000 x 9000 image (81 M pixels) is over the 64 M pixel budget" in error


def test_a_second_shard_with_other_columns_is_named_before_model_work(textvqa_copy):
    first = textvqa_copy / TEXTVQA
    second = first.with_name("validation-00001-of-00002.parquet")
    table = pq.read_table(first)
    pq.write_table(table.set_column(table.schema.get_field_index("question_id"), "question_id",
                                    pa.array([str(v) for v in table.column("question_id").to_pylist()])), second)
    with pytest.raises(DataLayoutError) as caught:
        check_data(["textvqa"], textvqa_copy)
    assert f"{second}'s columns differ from {first}'s (question_id: int64 vs string)" in str(caught.value)
