import torch

from evalkit.imagen.toy_eval import toy_accuracy
from evalkit.toyworld.data import heldout_prompts
from evalkit.toyworld.render import render_array
from evalkit.toyworld.scenes import Scene

from .helpers import tiny_cascade


def test_toy_accuracy_scores_each_image_against_its_own_prompt_in_the_chosen_set():
    """A cascade that draws exactly what is asked scores 100%; prompt_seed 1 (validation) is another prompt set."""
    for prompt_seed in (0, 1):
        prompts = heldout_prompts(12, seed=prompt_seed)
        truth = {p["prompt"]: torch.from_numpy(render_array(Scene.from_dict(p["scene"]), 64)) for p in prompts}
        cascade = tiny_cascade()
        asked = []

        def draw(texts, seeds, sampling=None, progress=None):
            asked.extend(texts)
            return torch.stack([truth[t] for t in texts]).permute(0, 3, 1, 2).float() / 127.5 - 1

        cascade.generate = draw
        result = toy_accuracy(cascade, 12, batch_size=5, prompt_seed=prompt_seed)
        assert asked == [p["prompt"] for p in prompts]
        assert result["n_colour"] == 12 and result["colour"] == 1.0 and result["all"] == 1.0
    assert heldout_prompts(12, seed=0) != heldout_prompts(12, seed=1)
