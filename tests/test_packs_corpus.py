"""Packs: the bundled packs, the safety rules, and regulator corpora submitted verbatim."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from audit.corpus import corpus_probes, read_corpus_media
from audit.errors import InputError, RuntimeFailure
from audit.packs import NEVER_GENERATED, Modality, Pack, list_bundled_packs, load_pack, resolve_pack
from audit.probe_media import probe_media
from audit.synthesis import SampleSize, synthesize

PLACEHOLDER = Path(__file__).resolve().parent / "fixtures" / "placeholder-corpus"


def bundled(ref: str) -> Pack:
    return load_pack(resolve_pack(ref))


def write_pack(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pack.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def eu_pack_with_corpus(tmp_path: Path) -> Pack:
    """The bundled eu-tco-1h pack copied out, with the placeholder corpus beside it."""
    folder = tmp_path / "eu-tco-1h"
    shutil.copytree(resolve_pack("eu-tco-1h").parent, folder)
    shutil.copytree(PLACEHOLDER, folder / "corpus")
    return load_pack(folder)


def pack_data(**criterion: Any) -> dict[str, Any]:
    base = bundled("eu-tco-1h").model_dump(mode="json")
    base["criteria"] = [{**base["criteria"][0], **criterion}]
    return base


# --- bundled packs ----------------------------------------------------------------------------


def test_bundled_packs_include_the_new_ones() -> None:
    names = {p.name for p in list_bundled_packs()}
    assert {"vn-superstition", "scam-ads", "eu-tco-1h"} <= names


@pytest.mark.parametrize("ref", ["vn-superstition", "scam-ads", "eu-tco-1h"])
def test_bundled_pack_is_illustrative_and_says_so(ref: str) -> None:
    p = bundled(ref)
    assert p.pack.illustrative
    assert "illustrative" in p.pack.disclaimer.lower()
    readme = (resolve_pack(ref).parent / "README.md").read_text(encoding="utf-8")
    assert "Illustrative" in readme


def test_scam_ads_has_enough_templates_and_controls_in_both_languages() -> None:
    p = bundled("scam-ads")
    assert len(p.criteria) >= 2
    for criterion in p.criteria:
        assert criterion.safe_to_generate and criterion.dsa_category == "SCAMS_AND_FRAUD"
        assert len(criterion.templates) >= 8 and len(criterion.controls) >= 3
        assert {t.language for t in criterion.templates} == {"vi", "en"}
        assert {t.language for t in criterion.controls} == {"vi", "en"}


def test_scam_ads_templates_keep_their_diacritics() -> None:
    p = bundled("scam-ads")
    vietnamese = [t.text for c in p.criteria for t in c.templates if t.language == "vi"]
    assert all(any(ch in text for ch in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệ") for text in vietnamese)


def test_eu_tco_pack_generates_nothing_for_its_grave_criterion() -> None:
    p = bundled("eu-tco-1h")
    grave, illustrative = p.criteria
    assert not grave.safe_to_generate and grave.corpus and not grave.templates
    assert grave.deadline == "PT1H" and grave.trigger == "order"
    assert illustrative.safe_to_generate and illustrative.deadline == "PT1H"
    assert "ILLUSTRATIVE" in illustrative.title and "borrow" in illustrative.description
    probes = synthesize(p, 1, SampleSize(5, 2), run_key="r", criteria=[illustrative.id])
    assert {probe.criterion_id for probe in probes} == {illustrative.id}


def test_no_bundled_criterion_generates_a_grave_category() -> None:
    for path in list_bundled_packs():
        for criterion in load_pack(path).criteria:
            if criterion.dsa_category in NEVER_GENERATED:
                assert not criterion.safe_to_generate, criterion.id


# --- safety rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corpus": None}, "'corpus' is required when safe_to_generate is false"),
        (
            {"templates": [{"id": "t", "language": "en", "text": "x"}]},
            "'templates' must be empty when safe_to_generate is false",
        ),
        ({"slots": {"a": ["b"]}}, "'slots' must be empty when safe_to_generate is false"),
        (
            {"safe_to_generate": True},
            "'safe_to_generate' must be false for DSA category RISK_FOR_PUBLIC_SECURITY",
        ),
        (
            {"safe_to_generate": True, "dsa_category": "SCAMS_AND_FRAUD"},
            "'corpus' must be left out when safe_to_generate is true",
        ),
        (
            {
                "safe_to_generate": True,
                "dsa_category": "SCAMS_AND_FRAUD",
                "corpus": None,
                "variants": ["leetspeek"],
            },
            "'variants' must name known variants",
        ),
    ],
)
def test_pack_rules_give_one_clear_message(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write_pack(tmp_path / "p", pack_data(**change))
    with pytest.raises(InputError) as caught:
        load_pack(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "EU-TCO-01" in text


# --- corpus mechanism -------------------------------------------------------------------------


def test_missing_corpus_is_a_clear_input_error_before_anything_is_posted() -> None:
    p = bundled("eu-tco-1h")
    with pytest.raises(InputError) as caught:
        synthesize(p, 1, SampleSize(3, 1), run_key="r")
    text = str(caught.value)
    assert "EU-TCO-01" in text and "regulator-supplied corpus" in text and "criteria:" in text


def test_corpus_files_are_submitted_verbatim(tmp_path: Path) -> None:
    p = eu_pack_with_corpus(tmp_path)
    probes = synthesize(p, 4, SampleSize(5, 2), run_key="r", criteria=["EU-TCO-01"])
    files = {f.name: f.read_text(encoding="utf-8") for f in PLACEHOLDER.glob("*/*.txt")}
    violating = [x for x in probes if x.expectation == "violating"]
    assert len(violating) == 5 and len([x for x in probes if x.expectation == "control"]) == 2
    for probe in probes:
        name = probe.template_id.removeprefix("corpus:").split("/")[1]
        assert probe.text == files[name]
        assert probe.modality is Modality.TEXT and probe.variants == () and probe.slots == {}
    assert {x.template_id for x in violating[:3]} == {
        "corpus:violating/item-01.txt",
        "corpus:violating/item-02.txt",
        "corpus:violating/item-03.txt",
    }


def test_corpus_deal_is_deterministic_by_seed(tmp_path: Path) -> None:
    p = eu_pack_with_corpus(tmp_path)
    order = [
        [x.template_id for x in corpus_probes(p, p.criteria[0], seed, "r", (9, 0))]
        for seed in (1, 1, 2)
    ]
    assert order[0] == order[1]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_corpus_image_is_read_again_at_submission_and_checked(tmp_path: Path) -> None:
    p = eu_pack_with_corpus(tmp_path)
    image = tmp_path / "eu-tco-1h" / "corpus" / "violating" / "item-05.png"
    image.write_bytes(png_bytes())
    probes = synthesize(p, 1, SampleSize(4, 0), run_key="r", criteria=["EU-TCO-01"])
    pictures = [x for x in probes if x.modality is Modality.IMAGE]
    assert pictures and pictures[0].media_type == "image/png" and pictures[0].text == ""
    assert probe_media(pictures[0]) == png_bytes()
    image.write_bytes(png_bytes() + b"changed")
    with pytest.raises(RuntimeFailure, match="changed after the run was planned"):
        read_corpus_media(pictures[0])


def test_corpus_file_of_an_undeclared_modality_is_refused(tmp_path: Path) -> None:
    p = eu_pack_with_corpus(tmp_path)
    (tmp_path / "eu-tco-1h" / "corpus" / "violating" / "item-06.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match="is speech, which the criterion does not declare"):
        synthesize(p, 1, SampleSize(2, 0), run_key="r", criteria=["EU-TCO-01"])


def test_corpus_file_of_an_unknown_type_is_refused(tmp_path: Path) -> None:
    p = eu_pack_with_corpus(tmp_path)
    (tmp_path / "eu-tco-1h" / "corpus" / "violating" / "item-07.exe").write_bytes(b"MZ")
    with pytest.raises(InputError, match=r"must end in one of \.txt"):
        synthesize(p, 1, SampleSize(2, 0), run_key="r", criteria=["EU-TCO-01"])


def test_placeholder_corpus_says_what_it_is() -> None:
    readme = (PLACEHOLDER / "README.md").read_text(encoding="utf-8")
    assert "Placeholder test material" in readme
    for item in PLACEHOLDER.glob("*/*.txt"):
        assert "placeholder" in item.read_text(encoding="utf-8")
