"""Conditioning: substituted rows equal a hand-built model with the vectors as new tokens; weights, layers, SDXL."""

from __future__ import annotations

import copy

import pytest
import torch
from factories import sdxl_vectors, vectors
from prompt_helpers import library_with

from sd_embeddings.encode import conditioning, loading, text_encoders
from sd_embeddings.prompt.chunks import indexes_for, tokenize_prompt
from sd_embeddings.prompt.tokenizer import bundled
from sd_embeddings.records import Family

pytest.importorskip("transformers")

SHALLOW_LAYERS = 2
"""tests/conftest.py's depth for ``shallow_models``: the same cached encoders serve both (built once a session)."""


@pytest.fixture(scope="module")
def sd1():
    """The session's shared 2-layer random encoders (the ones ``shallow_models`` reports use; built once)."""
    return loading.encoders_for(Family.SD1, None, SHALLOW_LAYERS)


@pytest.fixture(scope="module")
def sdxl():
    return loading.encoders_for(Family.SDXL, None, SHALLOW_LAYERS)


def with_new_tokens(model, rows: torch.Tensor):
    """A copy of the model whose vocabulary has ``rows`` appended: the classic way to add TI tokens."""
    model = copy.deepcopy(model)
    old = model.get_input_embeddings().weight.data
    new = torch.nn.Embedding(old.shape[0] + rows.shape[0], old.shape[1])
    new.weight.data[:old.shape[0]] = old
    new.weight.data[old.shape[0]:] = rows
    model.set_input_embeddings(new)
    return model, list(range(old.shape[0], old.shape[0] + rows.shape[0]))


def hand_built(model, spec, ids: list[int], row: int, rows: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """One chunk by hand: new token ids at the embedding rows, the family's layer, then "Original" emphasis."""
    model, new_ids = with_new_tokens(model, rows)
    ids = list(ids)
    ids[row:row + rows.shape[0]] = new_ids
    if spec.pad_id is not None:
        end = ids.index(49407)
        ids = ids[:end + 1] + [spec.pad_id] * (len(ids) - end - 1)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        z = out.hidden_states[spec.hidden_index]
        if spec.final_norm:
            z = conditioning.final_norm_of(model)(z)
    w = torch.tensor(weights)[None, :, None]
    scaled = z * w
    return scaled * (z.mean() / scaled.mean())


def encode(library, family, encoders, text: str, use_library: bool = True, **kwargs):
    tok = bundled()
    tokens = tokenize_prompt(text, tok, indexes_for(library, tok, family) if use_library else None)
    return tokens, conditioning.encode(tokens, encoders, library.load, **kwargs)


@pytest.mark.parametrize("weight", [1.0, 1.5, 0.8])
def test_substitution_equals_hand_built_new_tokens(tmp_path, sd1, weight: float) -> None:
    library = library_with(tmp_path, {"four": vectors(4, seed=3)})
    tokens, cond = encode(library, Family.SD1, sd1, f"a cat, (four:{weight}) on a hill")
    (placement,) = tokens.placements
    spec, model = sd1.encoders[0]
    expected = hand_built(model, spec, tokens.chunks[0].tokens, placement.offset + 1, vectors(4, seed=3),
                          tokens.chunks[0].weights)
    assert cond.shape == [1, 77, 768]
    torch.testing.assert_close(cond.tensor, expected, atol=1e-5, rtol=1e-5)


def test_embedding_changes_the_conditioning(tmp_path, sd1) -> None:
    library = library_with(tmp_path, {"four": vectors(4, seed=3)})
    _, with_embedding = encode(library, Family.SD1, sd1, "a cat, four")
    _, as_plain_text = encode(library, Family.SD1, sd1, "a cat, four", use_library=False)
    assert not torch.allclose(with_embedding.tensor, as_plain_text.tensor, atol=1e-3)
    other = library_with(tmp_path / "other", {"four": vectors(4, seed=99)})
    _, other_vectors = encode(other, Family.SD1, sd1, "a cat, four")
    assert not torch.allclose(with_embedding.tensor, other_vectors.tensor, atol=1e-3)


def test_weight_scales_the_embedding_rows_and_restores_the_mean(tmp_path, sd1) -> None:
    # a random final layer norm makes the mean about 0, where restoring it is numerically meaningless: shift it
    spec, model = sd1.encoders[0]
    sd1 = text_encoders.TextEncoders(Family.SD1, [(spec, copy.deepcopy(model))], random_weights=True)
    torch.nn.init.constant_(conditioning.final_norm_of(sd1.encoders[0][1]).bias, 0.5)
    library = library_with(tmp_path, {"four": vectors(4, seed=3)})
    tokens, plain = encode(library, Family.SD1, sd1, "a cat, four")
    _, weighted = encode(library, Family.SD1, sd1, "a cat, (four:1.7)")
    rows = slice(tokens.placements[0].offset + 1, tokens.placements[0].offset + 5)
    z = plain.tensor
    ratio = z.mean() / (z.mean() + z[:, rows].sum() * 0.7 / z.numel())
    torch.testing.assert_close(weighted.tensor[:, rows], z[:, rows] * 1.7 * ratio, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weighted.tensor[:, :rows.start], z[:, :rows.start] * ratio, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weighted.tensor.mean(), z.mean(), atol=1e-6, rtol=1e-4)
    _, ignored = encode(library, Family.SD1, sd1, "a cat, (four:1.7)", emphasis="Ignore")
    torch.testing.assert_close(ignored.tensor, z)


def test_clip_skip_takes_an_earlier_layer_through_the_final_norm(tmp_path, sd1) -> None:
    library = library_with(tmp_path, {"four": vectors(4, seed=3)})
    tokens, cond = encode(library, Family.SD1, sd1, "a cat, four", clip_skip=2)
    spec, model = sd1.encoders[0]
    skipped = text_encoders.EncoderSpec("", 768, -2, True, None)
    row = tokens.placements[0].offset + 1
    expected = hand_built(model, skipped, tokens.chunks[0].tokens, row, vectors(4, seed=3), tokens.chunks[0].weights)
    torch.testing.assert_close(cond.tensor, expected, atol=1e-5, rtol=1e-5)
    _, last = encode(library, Family.SD1, sd1, "a cat, four")
    assert not torch.allclose(cond.tensor, last.tensor, atol=1e-3)


def test_sdxl_routes_clip_l_and_clip_g_to_their_encoders(tmp_path, sdxl) -> None:
    vec = sdxl_vectors(3, seed=5)
    library = library_with(tmp_path, {"xlemb": vec}, family=Family.SDXL)
    tokens, cond = encode(library, Family.SDXL, sdxl, "a cat, xlemb BREAK a dog")
    assert cond.shape == [1, 154, 2048]
    assert list(cond.pooled.shape) == [1, 1280]
    row = tokens.placements[0].offset + 1
    chunk = tokens.chunks[0]
    (spec_l, model_l), (spec_g, model_g) = sdxl.encoders
    expected_l = hand_built(model_l, spec_l, chunk.tokens, row, vec["clip_l"], chunk.weights)
    expected_g = hand_built(model_g, spec_g, chunk.tokens, row, vec["clip_g"], chunk.weights)
    torch.testing.assert_close(cond.tensor[:, :77, :768], expected_l, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cond.tensor[:, :77, 768:], expected_g, atol=1e-4, rtol=1e-4)


def test_sdxl_parts_only_change_their_own_half(tmp_path, sdxl) -> None:
    vec = sdxl_vectors(3, seed=5)
    base = library_with(tmp_path / "a", {"xlemb": vec}, family=Family.SDXL)
    other_l = library_with(tmp_path / "b", {"xlemb": {"clip_l": vec["clip_l"] * 3, "clip_g": vec["clip_g"]}},
                           family=Family.SDXL)
    _, first = encode(base, Family.SDXL, sdxl, "a cat, xlemb")
    _, second = encode(other_l, Family.SDXL, sdxl, "a cat, xlemb")
    assert not torch.allclose(first.tensor[..., :768], second.tensor[..., :768], atol=1e-3)
    torch.testing.assert_close(first.tensor[..., 768:], second.tensor[..., 768:])


def test_openclip_encoders_pad_with_zero_after_the_end_token(tmp_path) -> None:
    tokens = tokenize_prompt("a cat", bundled())
    ids = conditioning.chunk_ids(tokens.chunks, text_encoders.OPENCLIP_H, 49407)
    assert ids[0, :4].tolist() == [49406, 320, 2368, 49407] and set(ids[0, 4:].tolist()) == {0}
    sd1_ids = conditioning.chunk_ids(tokens.chunks, text_encoders.CLIP_L, 49407)
    assert set(sd1_ids[0, 3:].tolist()) == {49407}


def test_sd2_shape(tmp_path) -> None:
    encoders = loading.encoders_for(Family.SD2, None, SHALLOW_LAYERS)
    library = library_with(tmp_path, {"wide": vectors(2, 1024)}, family=Family.SD2)
    tokens, cond = encode(library, Family.SD2, encoders, "a wide cat")
    assert cond.shape == [1, 77, 1024] and len(tokens.placements) == 1


def test_real_vit_l14_configuration(tmp_path) -> None:
    encoders = text_encoders.random_encoders(Family.SD1)
    spec, model = encoders.encoders[0]
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.hidden_act) == (12, 768,
                                                                                                   "quick_gelu")
    library = library_with(tmp_path, {"EasyNegative": vectors(2, seed=7)})
    tokens, cond = encode(library, Family.SD1, encoders, "(EasyNegative:1.2), a photo of a cat")
    chunk = tokens.chunks[0]
    expected = hand_built(model, spec, chunk.tokens, 1, vectors(2, seed=7), chunk.weights)
    torch.testing.assert_close(cond.tensor, expected, atol=1e-4, rtol=1e-4)


def to_openclip(model) -> dict[str, torch.Tensor]:
    """Inverse of the loader's mapping, written out by hand: transformers names -> OpenCLIP text-tower names."""
    state = {k.removeprefix("text_model."): v for k, v in model.state_dict().items()}
    out = {"token_embedding.weight": state["embeddings.token_embedding.weight"],
           "positional_embedding": state["embeddings.position_embedding.weight"],
           "ln_final.weight": state["final_layer_norm.weight"], "ln_final.bias": state["final_layer_norm.bias"]}
    for i in range(model.config.num_hidden_layers):
        p, q = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{q}attn.in_proj_{kind}"] = torch.cat([state[f"{p}self_attn.{n}_proj.{kind}"] for n in "qkv"])
            out[f"{q}attn.out_proj.{kind}"] = state[f"{p}self_attn.out_proj.{kind}"]
            out[f"{q}ln_1.{kind}"] = state[f"{p}layer_norm1.{kind}"]
            out[f"{q}ln_2.{kind}"] = state[f"{p}layer_norm2.{kind}"]
            out[f"{q}mlp.c_fc.{kind}"] = state[f"{p}mlp.fc1.{kind}"]
            out[f"{q}mlp.c_proj.{kind}"] = state[f"{p}mlp.fc2.{kind}"]
    return out


def test_single_file_sd2_checkpoint_loads_openclip_weights(tmp_path) -> None:
    from safetensors.torch import save_file

    from sd_embeddings.encode.checkpoint_weights import SD2_PREFIX, encoders_from_checkpoint

    source = text_encoders.random_encoders(Family.SD2, layers=2, seed=7)
    tensors = {SD2_PREFIX + k: v.contiguous() for k, v in to_openclip(source.encoders[0][1]).items()}
    tensors["model.diffusion_model.dummy"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "sd2.safetensors"))
    loaded = encoders_from_checkpoint(tmp_path / "sd2.safetensors")
    assert loaded.family is Family.SD2 and not loaded.random_weights
    library = library_with(tmp_path / "emb", {"wide": vectors(2, 1024)}, family=Family.SD2)
    _, expected = encode(library, Family.SD2, source, "a wide cat")
    _, actual = encode(library, Family.SD2, loaded, "a wide cat")
    torch.testing.assert_close(actual.tensor, expected.tensor)


@pytest.mark.parametrize("clip_skip", [1, 3])
def test_sdxl_clip_l_skip_reads_clip_l_at_the_skipped_layer_only_when_asked(tmp_path, sdxl, clip_skip) -> None:
    vec = sdxl_vectors(3, seed=5)
    library = library_with(tmp_path, {"xlemb": vec}, family=Family.SDXL)
    tokens, default = encode(library, Family.SDXL, sdxl, "a cat, xlemb", clip_skip=clip_skip)
    _, skipped = encode(library, Family.SDXL, sdxl, "a cat, xlemb", clip_skip=clip_skip, sdxl_clip_l_skip=True)
    (spec_l, model_l), _ = sdxl.encoders
    chunk, row = tokens.chunks[0], tokens.placements[0].offset + 1
    assert spec_l.hidden_index == -2  # without the option CLIP skip is ignored: the penultimate layer
    torch.testing.assert_close(default.tensor[..., :768],
                               hand_built(model_l, spec_l, chunk.tokens, row, vec["clip_l"], chunk.weights),
                               atol=1e-4, rtol=1e-4)
    at_skip = text_encoders.EncoderSpec("clip_l", 768, -clip_skip, False, None)
    torch.testing.assert_close(skipped.tensor[..., :768],
                               hand_built(model_l, at_skip, chunk.tokens, row, vec["clip_l"], chunk.weights),
                               atol=1e-4, rtol=1e-4)
    assert not torch.allclose(default.tensor[..., :768], skipped.tensor[..., :768], atol=1e-3)
    torch.testing.assert_close(default.tensor[..., 768:], skipped.tensor[..., 768:])  # CLIP-G untouched


def test_sdxl_clip_l_skip_does_not_touch_sd1(tmp_path, sd1) -> None:
    library = library_with(tmp_path, {"four": vectors(4, seed=3)})
    _, plain = encode(library, Family.SD1, sd1, "a cat, four")
    _, asked = encode(library, Family.SD1, sd1, "a cat, four", sdxl_clip_l_skip=True)
    torch.testing.assert_close(plain.tensor, asked.tensor)
