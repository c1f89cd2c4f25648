"""One call for every host: prompt + negative prompt -> what the text encoder sees, as a JSON-able dict.

``encode_report(library, positive, negative)`` returns (shape kept stable; the CLI's ``--json`` and the
standalone page show exactly this)::

    {
      "family": "sd1" | "sd2" | "sdxl",
      "model": str | None,            # the local model path; None: no encoder is run (no checksum)
      "encoded": bool,                # whether a text encoder ran (checksums are numbers only then)
      "random_weights": bool,         # tests only: a random-weight encoder ran (shapes real, values not)
      "positive": PROMPT, "negative": PROMPT,
      "embeddings": [EMBEDDING, ...], # both prompts, positive first
      "warnings": [WARNING, ...],     # both prompts
      "ti_hashes": "name: hash12, ...",     # the infotext value ("" if none); each embedding once
      "ti_hashes_item": 'TI hashes: "..."', # the whole infotext item, "" if none
      "steps": int,                   # sampling steps the prompt-editing schedule is expanded for (default 20)
    }
    PROMPT = {
      "text": str,
      "token_count": int, "token_limit": int,  # the WebUI counter "N/limit" (embedding vectors counted)
      "chunks": [{"tokens": [77 ids], "weights": [77 floats], "token_count": int}, ...],
      "embeddings": [EMBEDDING, ...], "warnings": [WARNING, ...],
      "shape": [1, 77 * chunks, width],       # width 768 / 1024 / 2048
      "pooled_shape": [1, 1280] | None,       # SDXL only
      "checksum": float | None,               # sum of |conditioning|; None without a model or when NaN/Inf
      "extra_networks": [str, ...],           # <lora:name:0.8>-style tags removed (positive prompt only)
      "parts": [PART, ...],                   # every distinct text the encoder sees, in order
    }
    PART = {"text", "token_count", "token_limit", "chunks", "embeddings", "warnings", "shape", "pooled_shape",
            "checksum" (as in PROMPT, for this text alone), "and_index": int (which AND sub-prompt),
            "weight": float (its ":weight", 1.0 without), "steps": [[first, last], ...] (step ranges using it)}
    EMBEDDING = {"keyword", "file" (relative path), "vectors" (rows placed), "weight", "prompt": "positive" |
                 "negative", "chunk" (index), "position" (index into that chunk's 77 "tokens": the first row),
                 "part" (index into the prompt's "parts"; "chunk"/"position" are within that part)}

As in the WebUI (``prompt_syntax``): extra-network tags are stripped from the positive prompt, which is split on
``AND`` into sub-prompts encoded separately; prompt editing (``[from:to:when]``, ``[to:when]``, ``[from::when]``)
and alternation (``[a|b]``) are expanded over ``steps`` and each distinct text is encoded once (embeddings inside
edited parts are found there). The negative prompt is only expanded (no tags, no ``AND``, as the WebUI). A PROMPT's
``chunks``, ``shape``, ``pooled_shape`` and ``checksum`` are those of its first part (the whole prompt when it uses
none of this syntax); ``token_count`` is the largest part's (the WebUI's counter); ``embeddings`` and ``warnings``
cover every part. ``sdxl_clip_l_skip=True`` applies ``clip_skip`` to SDXL's CLIP-L too (the WebUI option).
    WARNING = {"kind": "incompatible" | "failed" | "near-miss" | "too-long" | "common-word" | "explicit-only" |
               "not-found" | "not-finite", "word", "message", "prompt"}

Chunk ``tokens`` are the ids fed to the encoder: start id, body, end-id padding, end id; embedding rows hold the
placeholder id 0 and are replaced by the file's vectors. Text models are cached per (family, model path).
Without a model nothing is encoded (no torch, no transformers): everything above but the checksums is reported.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ChangedFileError
from ..library import Library
from ..prompt import infotext
from ..prompt import syntax as prompt_syntax
from ..prompt.chunks import ChunkOptions, PromptTokens, indexes_for, tokenize_prompt
from ..prompt.diagnostics import warnings_for
from ..prompt.tokenizer import Tokenizer, for_model
from ..records import Family
from . import loading, text_encoders

if TYPE_CHECKING:
    from .conditioning import Conditioning

logger = logging.getLogger(__name__)

TEST_RANDOM_ENCODERS_ENV = "SD_EMBEDDINGS_TEST_RANDOM_ENCODERS"
"""Tests only, never a user setting: a layer count N makes a report without a model run random-weight encoders of
the family's real widths and N layers, so the encoding code path is exercised without a checkpoint."""


def _test_encoders(family: Family) -> text_encoders.TextEncoders | None:
    value = os.environ.get(TEST_RANDOM_ENCODERS_ENV, "").strip()
    return loading.encoders_for(family, None, int(value)) if value else None


def pick_family(library: Library, family: Family | None, model: str | None) -> Family:
    if family is not None:
        return family
    if model:
        return loading.encoders_for(None, model).family
    return library.family if library.family not in (None, Family.UNKNOWN) else Family.SD1


def encode_report(library: Library, positive: str, negative: str = "", family: Family | None = None,
                  model: str | None = None, tokenizer: Tokenizer | None = None, conditioning: bool = True,
                  *, clip_skip: int = 1, emphasis: str = "Original", options: ChunkOptions | None = None,
                  steps: int = prompt_syntax.DEFAULT_STEPS, sdxl_clip_l_skip: bool = False,
                  bare_keywords: bool = True) -> dict[str, Any]:
    """Tokenize, match, chunk and (optionally) encode both prompts; see the module docstring for the result.
    ``bare_keywords=False``: only ``embedding:name`` uses an embedding (when ``options`` is not given).

    A file replaced between the scan and the read of its vectors (``ChangedFileError``) makes the matches stale:
    the library is rescanned and the whole report made again, once; a second such error is raised.
    """
    options = options or ChunkOptions(parse_attention=emphasis != "None", bare_keywords=bare_keywords)
    settings = {"clip_skip": clip_skip, "emphasis": emphasis, "options": options, "steps": steps,
                "sdxl_clip_l_skip": sdxl_clip_l_skip}
    try:
        return _report(library, positive, negative, family, model, tokenizer, conditioning, **settings)
    except ChangedFileError as e:
        logger.info("%s; rescanning and encoding again", e)
        library.refresh()
        return _report(library, positive, negative, family, model, tokenizer, conditioning, **settings)


def _report(library: Library, positive: str, negative: str, family: Family | None, model: str | None,
            tokenizer: Tokenizer | None, conditioning: bool, *, clip_skip: int, emphasis: str,
            options: ChunkOptions, steps: int, sdxl_clip_l_skip: bool) -> dict[str, Any]:
    family = pick_family(library, family, model)
    text_encoders.check_clip_skip(family, clip_skip)
    if steps < 1:
        raise ValueError(f"steps {steps} is out of range: use 1 or more")
    tokenizer = tokenizer or for_model(model)
    indexes = indexes_for(library, tokenizer, family, bare=options.bare_keywords)
    encoders = None
    if conditioning:
        encoders = loading.encoders_for(family, model) if model else _test_encoders(family)
    report: dict[str, Any] = {"family": family.value, "model": model, "encoded": encoders is not None,
                              "random_weights": bool(encoders and encoders.random_weights), "steps": steps}
    used = []

    def one_text(name: str, text: str) -> dict[str, Any]:
        tokens = tokenize_prompt(text, tokenizer, indexes, options)
        cond = None
        if encoders:
            from .conditioning import encode  # torch: only when an encoder runs

            cond = encode(tokens, encoders, library.load, eos_id=tokenizer.eos_id, clip_skip=clip_skip,
                          emphasis=emphasis, sdxl_clip_l_skip=sdxl_clip_l_skip)
        used.extend(placement.entry for placement in tokens.placements)
        return prompt_report(name, tokens, cond, family, library)

    for name, text in (("positive", positive), ("negative", negative)):
        report[name] = syntax_report(name, text, steps, one_text)
    report["embeddings"] = report["positive"]["embeddings"] + report["negative"]["embeddings"]
    report["warnings"] = report["positive"]["warnings"] + report["negative"]["warnings"]
    report["ti_hashes"] = infotext.ti_hashes(used, library)
    report["ti_hashes_item"] = infotext.infotext_item(report["ti_hashes"]) if report["ti_hashes"] else ""
    return report


def syntax_report(name: str, text: str, steps: int,
                  one_text: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    """One prompt as the WebUI treats it: tags stripped and ``AND`` split (positive only), each sub-prompt's
    schedule expanded; every distinct text is encoded once and reported as a part (see the module docstring)."""
    tags = prompt_syntax.extra_networks(text) if name == "positive" else []
    subprompts = prompt_syntax.split_and(prompt_syntax.strip_extra_networks(text)) if name == "positive" \
        else [(text, 1.0)]
    parts: list[dict[str, Any]] = []
    for and_index, (subprompt, weight) in enumerate(subprompts):
        for variant, ranges in prompt_syntax.distinct_texts(subprompt, steps):
            part = one_text(name, variant)
            for embedding in part["embeddings"]:
                embedding["part"] = len(parts)
            parts.append({**part, "and_index": and_index, "weight": weight,
                          "steps": [list(step_range) for step_range in ranges]})
    counted = max(parts, key=lambda part: part["token_count"])
    warnings = {(w["kind"], w["word"], w["message"]): w for part in parts for w in part["warnings"]}
    first = {key: parts[0][key] for key in ("chunks", "shape", "pooled_shape", "checksum")}
    return {"text": text, "token_count": counted["token_count"], "token_limit": counted["token_limit"], **first,
            "embeddings": [e for part in parts for e in part["embeddings"]], "warnings": list(warnings.values()),
            "extra_networks": tags, "parts": parts}


def prompt_report(name: str, tokens: PromptTokens, cond: Conditioning | None, family: Family,
                  library: Library) -> dict[str, Any]:
    """One text's report; a NaN/Inf conditioning gets a null checksum and a warning (JSON has no NaN)."""
    width = sum(spec.width for spec in text_encoders.SPECS[family])
    chunks = [{"tokens": chunk.tokens, "weights": [round(w, 6) for w in chunk.weights],
               "token_count": chunk.token_count} for chunk in tokens.chunks]
    embeddings = []
    for p in tokens.placements:
        embeddings.append({"keyword": p.entry.keyword, "file": p.entry.relpath, "vectors": p.vectors,
                           "weight": round(p.weight, 6), "prompt": name, "chunk": p.chunk,
                           "position": p.offset + 1})
    warnings = [dict(w.as_dict(), prompt=name) for w in warnings_for(tokens, library, family)]
    checksum = cond.checksum() if cond else None
    if checksum is not None and not math.isfinite(checksum):
        checksum = None
        used = ", ".join(sorted({p.entry.keyword for p in tokens.placements})) or "none"
        warnings.append({"kind": "not-finite", "word": "", "prompt": name,
                         "message": f"The conditioning contains NaN or infinite values (embeddings used: {used}); "
                                    "the WebUI would draw noise or black. Check the files with `inspect`."})
    return {
        "text": tokens.text,
        "token_count": tokens.token_count,
        "token_limit": tokens.token_limit,
        "chunks": chunks,
        "embeddings": embeddings,
        "warnings": warnings,
        "shape": cond.shape if cond else [1, 77 * len(tokens.chunks), width],
        "pooled_shape": list(cond.pooled.shape) if cond and cond.pooled is not None
        else ([1, 1280] if family is Family.SDXL else None),
        "checksum": checksum,
    }
