"""easy-VQA (the `easy-vqa` package, MIT): 64x64 images of one shape, questions on colour and shape.

Real images and questions shipped in a pip package, so it is always available offline. The test
split has 9,673 questions over 1,000 images; the score is exact match after lowercasing and
stripping a final period.
"""

from .sample import Sample

NAME = "easyvqa"
METRIC = "exact_match"
PROMPT_SUFFIX = "Answer the question using a single word or phrase."
MAX_NEW_TOKENS = 16


def load_samples(limit: int | None = None, split: str = "test"):
    import easy_vqa

    if split == "test":
        questions, answers, image_ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    else:
        questions, answers, image_ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    count = len(questions) if limit is None else min(limit, len(questions))
    return [
        Sample(id=f"{split}-{i}", image=paths[image_ids[i]], question=questions[i], target=answers[i])
        for i in range(count)
    ]


def normalize(text: str) -> str:
    return text.strip().lower().rstrip(".").strip()


def score(prediction: str, target: str) -> float:
    return float(normalize(prediction) == normalize(target))
