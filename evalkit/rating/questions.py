"""The study questions and answers, worded as in the Imagen paper's human evaluation."""

from __future__ import annotations

from evalkit.errors import EvalkitError

QUESTIONS = {
    "quality": "Which set of images is of higher quality?",
    "alignment": "Which set of images better represents the text caption: {caption}?",
}

# Votes are stored against the study's canonical sides (A = the trial's first model), never screen sides.
CHOICES = ("A", "tie", "B")


def parse_questions(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in QUESTIONS]
    if not names or unknown:
        raise EvalkitError(f"--questions must be a comma list of {', '.join(QUESTIONS)}; got {text!r}")
    return list(dict.fromkeys(names))


def question_text(question: str, caption: str) -> str:
    return QUESTIONS[question].format(caption=caption)
