"""Dict keys whose hashes a file could make collide are refused before any insert: tuples, floats and ints at or
over 2**61 - 1 (ints k * (2**61 - 1) all hash to 0, so each insert would compare with every key before it).
Text keys (salted hashes) and small ints stay readable. Pickles written at test time with the stdlib."""

from __future__ import annotations

import pickle

import pytest

from sd_embeddings.errors import EmbeddingError
from sd_embeddings.formats import pickles

MODULUS = 2**61 - 1


@pytest.mark.parametrize("keys", [
    [i * MODULUS for i in range(1, 2001)],  # all hash to 0
    [(i, -i) for i in range(200)],
    [i + 0.5 for i in range(200)],
], ids=["colliding-ints", "tuples", "floats"])
def test_keys_with_predictable_hashes_are_refused(keys):
    raw = pickle.dumps(dict.fromkeys(keys, 1), protocol=2)
    with pytest.raises(EmbeddingError) as caught:
        pickles.load_pickle(raw, "keys.pt")
    assert caught.value.status == "corrupt" and "dictionary key" in caught.value.reason


def test_text_and_small_int_keys_stay_readable():
    raw = pickle.dumps({"string_to_token": {"*": 265}, 7: "seven", -3: None, True: b"x"}, protocol=2)
    with pytest.raises(EmbeddingError) as caught:  # readable, but not a torch save: classified, not refused
        pickles.load_pickle(raw, "plain.pt")
    assert caught.value.status == "not-an-embedding"
