"""Standalone host: a txt2img-like gradio page with the Textual Inversion tab, without a WebUI.

``create_app(library) -> fastapi.FastAPI`` builds the page (prompt ``#txt2img_prompt``, negative prompt
``#txt2img_neg_prompt``, a model-family selector, an Encode button and report, the tab from ``shell.pane_html``)
and mounts the tab's routes (``http_routes.make_router``). ``serve(...)`` runs it with uvicorn on 127.0.0.1 by
default; a watcher thread rescans when a folder changes, and the page notices by polling ``/version``.

Who may use it (``tab/host_auth.py``): on another address than loopback ``serve`` needs ``credentials`` (HTTP
Basic on every request) or an explicit ``no_auth``; on loopback requests must name a loopback ``Host``. The page
carries the page token (``guard.token_meta_html``) the script sends with each write, and the app has its own,
closed CORS policy, so gradio adds none (gradio's lets any ``localhost`` origin read with credentials).
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from .library import Library
from .records import Family, Prefix
from .tab import guard, host_auth, shell
from .tab import routes as http_routes

logger = logging.getLogger(__name__)
# The pane carries its first cards document in <script type="application/json"> (data, never run); gradio 5+
# warns about any <script> in gr.HTML at every start, which only alarms users.
warnings.filterwarnings("ignore", message=r"A `<script>` tag was found in the content of a `gr\.HTML`",
                        category=UserWarning)

ROOT = Path(__file__).resolve().parent.parent
WATCH_MS = 2000


def _asset(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def head_html(bare_keywords: bool = True) -> str:
    """The tab's script and style, inlined so the page needs no static-file route. The script reads the
    bare-keywords setting where the WebUI keeps its settings for scripts (``window.opts``)."""
    scripts = "".join(f"<script>{_asset(name)}</script>" for name in shell.SCRIPTS)
    setting = json.dumps({Prefix.setting("bare_keywords"): bare_keywords})
    opts = f"<script>window.opts = Object.assign(window.opts || {{}}, {setting});</script>"
    return f"<style>{_asset('style.css')}</style>{opts}{scripts}"


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _warnings_html(warnings: list) -> str:
    texts = [str(w.get("message", w)) if isinstance(w, dict) else str(w) for w in warnings or []]
    return "".join(f'<p class="sdemb-warning">&#9888; {html.escape(text)}</p>' for text in texts)


def _side_html(title: str, side: dict) -> str:
    """One prompt of ``encoding.encode_report``: token count, chunks, embeddings used, warnings, shape."""
    parts = [f"<h4>{html.escape(title)}: {side.get('token_count', '?')}/{side.get('token_limit', '?')} tokens</h4>"]
    parts.append(_table(["chunk", "tokens"], [[i + 1, c.get("token_count", "?")]
                                              for i, c in enumerate(side.get("chunks") or [])]))
    if side.get("extra_networks"):
        parts.append(f"<p>Extra networks (not text): <code>{html.escape(' '.join(side['extra_networks']))}</code></p>")
    if len(side.get("parts") or []) > 1:
        parts.append(_parts_html(side["parts"]))
    used = side.get("embeddings") or []
    if used:
        parts.append(_table(["embedding", "file", "vectors", "weight", "chunk"],
                            [[u.get("keyword", ""), u.get("file", ""), u.get("vectors", ""), u.get("weight", ""),
                              (u.get("chunk") or 0) + 1] for u in used]))
    else:
        parts.append("<p>No embeddings used.</p>")
    parts.append(_warnings_html(side.get("warnings")))
    shape = side.get("shape")
    if shape:
        checksum = side.get("checksum")
        parts.append(f"<p>Conditioning shape <code>{html.escape(str(shape))}</code>"
                     + (f", checksum <code>{checksum:.6g}</code>" if isinstance(checksum, float) else "") + "</p>")
    return "".join(parts)


def _parts_html(prompt_parts: list) -> str:
    """The distinct texts the encoder sees (``AND`` sub-prompts, prompt-editing steps), one row each."""
    def steps(part: dict) -> str:
        return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in part.get("steps") or [])

    return _table(["part", "AND", "weight", "steps", "text", "tokens"],
                  [[i + 1, p.get("and_index", 0) + 1, p.get("weight", ""), steps(p), p.get("text", ""),
                    p.get("token_count", "")] for i, p in enumerate(prompt_parts)])


def report_html(report: dict) -> str:
    """The Encode report (``encoding.encode_report`` output) as escaped HTML, positive then negative."""
    body = "".join(_side_html(title, report[key]) for key, title in (("positive", "Prompt"),
                                                                     ("negative", "Negative prompt"))
                   if isinstance(report.get(key), dict))
    hashes = report.get("ti_hashes_item") or "TI hashes: (no embeddings used)"
    body += f"<p><code>{html.escape(hashes)}</code></p>"
    if report.get("random_weights"):
        body += "<p><small>Text encoder with random weights (tests only): the numbers mean nothing.</small></p>"
    elif not report.get("encoded"):
        body += ("<p><small>No text encoder ran (no model given): tokens, chunks, embeddings and shapes are "
                 "exact; start the host with <code>--model PATH</code> for conditioning values.</small></p>")
    return f'<div class="sdemb-report">{body}</div>'


def encode(library: Library, positive: str, negative: str, family: str | None = None, model: str | None = None,
           progress: Callable[..., object] | None = None, bare_keywords: bool = True) -> str:
    """The Encode report for the family the page's dropdown shows (``family``; the library's when None).

    Without ``model`` no text encoder runs (fast, light); a model loads once, with ``progress``, and stays."""
    from .encode import loading
    from .encode.encoding import encode_report

    try:
        chosen = Family.parse(family) if family else library.family
        if model and loading.loaded(model) is None and progress is not None:
            progress(0, desc=f"Loading the text encoder from {model} (first Encode only)")
        report = encode_report(library, positive, negative, family=chosen, model=model, bare_keywords=bare_keywords)
    except Exception as e:  # show the failure on the page; the host keeps running
        logger.exception("Encode failed")
        return f'<p class="sdemb-warning">Encode failed: {html.escape(type(e).__name__)}: {html.escape(str(e))}</p>'
    return report_html(report)


def encode_handler(library: Library, model: str | None, bare_keywords: bool = True) -> Callable[..., str]:
    """The Encode click handler; gradio shows a progress bar for a ``gr.Progress`` default argument."""
    import gradio as gr

    def handler(positive: str, negative: str, family: str, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        return encode(library, positive, negative, family, model, progress, bare_keywords)

    return handler


def build_blocks(library: Library, model: str | None = None, bare_keywords: bool = True):
    import gradio as gr

    with gr.Blocks(title="Textual Inversion embeddings") as blocks:
        gr.Markdown("## Textual Inversion embeddings")
        with gr.Row():
            with gr.Column(scale=4):
                positive = gr.Textbox(label="Prompt", lines=3, elem_id="txt2img_prompt")
                negative = gr.Textbox(label="Negative prompt", lines=2, elem_id="txt2img_neg_prompt")
            with gr.Column(scale=1, min_width=180):
                family = gr.Dropdown([("SD1.5", "sd1"), ("SD2.x", "sd2"), ("SDXL", "sdxl")], label="Model family",
                                     value=lambda: library.family.value if library.family else "sd1",
                                     elem_id="sdemb_family")  # a function: each page load shows the current one
                button = gr.Button("Encode", variant="primary", elem_id="sdemb_encode")
        report = gr.HTML(elem_id="sdemb_report", js_on_load=None)
        with gr.Tab("Textual Inversion", elem_id="txt2img_textual_inversion"):
            gr.HTML(lambda: shell.pane_html(library, "txt2img", watch_ms=WATCH_MS), js_on_load=None,
                    elem_id="txt2img_textual_inversion_cards_html")

        def switch(value: str) -> None:
            library.set_family(Family.parse(value))

        family.change(switch, inputs=family, outputs=None).then(
            None, js="() => { if (window.sdEmbeddings) window.sdEmbeddings.reload(); }")
        button.click(encode_handler(library, model, bare_keywords), inputs=[positive, negative, family], outputs=report)
    return blocks


def create_app(library: Library, model: str | None = None, credentials: host_auth.Credentials | None = None,
               loopback_only: bool = False, bare_keywords: bool = True):
    """FastAPI app: the tab's routes plus the gradio page at ``/``; ``credentials``: HTTP Basic on everything;
    ``loopback_only``: refuse requests whose ``Host`` is not a loopback name; ``bare_keywords=False``: only
    ``embedding:name`` uses an embedding (Encode, and what a card click inserts)."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    app = FastAPI(title="sd-embeddings")
    app.include_router(http_routes.make_router(lambda: library))
    app.add_middleware(CORSMiddleware, allow_origins=[])  # no other origin may read or write; gradio then adds none
    app.add_middleware(host_auth.SameOriginWritesMiddleware)
    if credentials is not None:
        app.add_middleware(host_auth.BasicAuthMiddleware, credentials=credentials)
    if loopback_only:
        app.add_middleware(host_auth.LoopbackHostMiddleware)
    return gr.mount_gradio_app(app, build_blocks(library, model, bare_keywords), path="/",
                               head=head_html(bare_keywords) + guard.token_meta_html())


def watch(library: Library, stop: threading.Event, every: float = WATCH_MS / 1000) -> threading.Thread:
    """Rescan whenever a folder's listing changes (one stat per folder per tick)."""

    def loop() -> None:
        while not stop.wait(every):
            try:
                if library.folders_changed():
                    library.refresh()
            except Exception:  # keep watching; the next tick tries again
                logger.exception("Watching the embeddings folders failed")

    thread = threading.Thread(target=loop, name="sd-embeddings-watch", daemon=True)
    thread.start()
    return thread


def serve(folder: str, host: str = "127.0.0.1", port: int = 7861, family: Family | None = Family.SD1,
          model: str | None = None, sock: socket.socket | None = None,
          credentials: host_auth.Credentials | None = None, no_auth: bool = False, bare_keywords: bool = True) -> None:
    """``sock``: already bound by the caller (the CLI binds first, so a busy port is one line, not a traceback).
    A ``host`` other than loopback needs ``credentials`` or ``no_auth`` (else ``host_auth.PolicyError``)."""
    import uvicorn

    if credentials is None and not no_auth and not host_auth.is_loopback(host):
        raise host_auth.PolicyError(f"--host {host} needs --auth USER:PASS (or --no-auth)")

    Path(folder).mkdir(parents=True, exist_ok=True)
    library = Library([folder], family=family)
    library.refresh()
    stop = threading.Event()
    watch(library, stop)
    logger.info("Serving %s on http://%s:%d", folder, host, port)
    try:
        app = create_app(library, model, credentials, loopback_only=host_auth.is_loopback(host),
                         bare_keywords=bare_keywords)
        if sock is None:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        else:
            config = uvicorn.Config(app, host=host, port=port, log_level="warning")
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        stop.set()
