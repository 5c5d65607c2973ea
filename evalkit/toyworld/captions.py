"""Templated captions for toy scenes, and the spec that says what an image must show to match one.

The spec is plain JSON (it travels in a benchmark row's ``extra``):
    {"category": str,
     "groups": [{"colour": str, "shape": str, "size": str | None, "count": int}, ...],
     "exact_count": bool,                 # the caption states numbers: counts must match exactly
     "relation": {"a": 0, "b": 1, "rel": "left_of" | "right_of" | "above" | "below"} | None,
     "region": {"a": 0, "region": "left" | "right" | "top" | "bottom"} | None}
Group ``size`` is None when the caption does not name sizes.
"""

from __future__ import annotations

from typing import Any

from evalkit.errors import EvalkitError
from evalkit.toyworld.scenes import Scene, _Draw

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}

# Paraphrases; {a}/{b} are noun phrases like "a red circle".
_RELATION_TEMPLATES = {
    "left_of": ("{a} to the left of {b}", "{a} left of {b}", "{a} on the left of {b}"),
    "right_of": ("{a} to the right of {b}", "{a} right of {b}", "{a} on the right of {b}"),
    "above": ("{a} above {b}", "{a} over {b}", "{a} on top of {b}"),
    "below": ("{a} below {b}", "{a} under {b}", "{a} beneath {b}"),
}
_REGION_TEMPLATES = {
    "left": ("{a} on the left", "{a} on the left side", "{a} at the left of the image"),
    "right": ("{a} on the right", "{a} on the right side", "{a} at the right of the image"),
    "top": ("{a} at the top", "{a} at the top of the image", "{a} near the top"),
    "bottom": ("{a} at the bottom", "{a} at the bottom of the image", "{a} near the bottom"),
}
_COLOR_TEMPLATES = ("{article} {adj}{colour} {shape}", "{article} {adj}{shape} that is {colour}",
                    "{article} {adj}{colour} coloured {shape}")


def _groups(scene: Scene) -> list[dict[str, Any]]:
    """Objects grouped by (colour, shape, size) in first-appearance order, with counts."""
    groups: list[dict[str, Any]] = []
    for obj in scene.objects:
        key = (obj.colour, obj.shape, obj.size)
        for group in groups:
            if (group["colour"], group["shape"], group["_size"]) == key:
                group["count"] += 1
                break
        else:
            groups.append({"colour": obj.colour, "shape": obj.shape, "_size": obj.size, "count": 1})
    return groups


def scene_spec(scene: Scene) -> dict[str, Any]:
    groups = [
        {"colour": g["colour"], "shape": g["shape"], "size": g["_size"] if scene.say_size else None, "count": g["count"]}
        for g in _groups(scene)
    ]
    return {
        "category": scene.category,
        "groups": groups,
        "exact_count": scene.category == "Counting",
        "relation": {"a": 0, "b": 1, "rel": scene.relation} if scene.relation else None,
        "region": {"a": 0, "region": scene.region} if scene.region else None,
    }


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(colour: str, shape: str, size: str | None) -> str:
    words = ([size] if size else []) + [colour, shape]
    return f"{_article(words[0])} {' '.join(words)}"


def caption(scene: Scene, rng: Any = None) -> str:
    """A caption for the scene; ``rng`` (random.Random or numpy Generator) picks a paraphrase, None the first."""
    draw = _Draw(rng) if rng is not None else None
    pick = (lambda options: draw.choice(options)) if draw else (lambda options: options[0])
    spec = scene_spec(scene)
    groups = spec["groups"]
    if scene.category == "Colors":
        g = groups[0]
        adj = f"{g['size']} " if g["size"] else ""
        template = pick(_COLOR_TEMPLATES)
        first = adj or (g["shape"] if template == _COLOR_TEMPLATES[1] else g["colour"])
        return template.format(article=_article(first), adj=adj, colour=g["colour"], shape=g["shape"])
    if scene.category == "Counting":
        parts = []
        for g in groups:
            noun = g["shape"] if g["count"] == 1 else PLURALS[g["shape"]]
            number = pick((NUMBERS[g["count"]], str(g["count"])))
            parts.append(f"{number} {g['colour']} {noun}")
        return " and ".join(parts)
    if scene.category == "Positional":
        a = scene.objects[0]
        phrase_a = _noun_phrase(a.colour, a.shape, None)
        if scene.region:
            return pick(_REGION_TEMPLATES[scene.region]).format(a=phrase_a)
        b = scene.objects[1]
        return pick(_RELATION_TEMPLATES[scene.relation]).format(a=phrase_a, b=_noun_phrase(b.colour, b.shape, None))
    if scene.category == "Binding":
        phrases = [_noun_phrase(g["colour"], g["shape"], g["size"]) for g in groups]
        if draw is not None and draw.coin(0.5):
            phrases.reverse()
        return pick(("{} and {}", "{} next to {}", "{} with {}")).format(*phrases)
    raise EvalkitError(f"no caption templates for toy-world category {scene.category!r}")

