"""Bad input from users: generated plans, packs and profiles through the real command line.

Every input goes through ``audit.cli.main(["run", "--plan", FILE, "--detach"])`` in process
(``--detach`` plans the runs and stops before any request, so valid inputs cost no network). The
inputs start from a valid plan, pack or target profile and are then broken by hypothesis: keys
dropped, unknown keys added, values replaced by wrong types, bad durations, odd numbers, control
and bidi characters, deep nesting; the YAML text cut short or spliced with invalid syntax, tags,
anchors and aliases; the bytes re-encoded (UTF-16, Latin-1, BOM, NUL bytes) or replaced by random
bytes. Huge files and YAML bombs have their own tests.

For every input: either it is valid (exit 0) or the command exits 2 with exactly one line on
stderr that names the file, and never a traceback.

Examples: ``FUZZ_EXAMPLES`` per generated test, four such tests, plus the fixed cases below. The
default, 1,000 (4,000 inputs), keeps this file under a minute on a small shared machine;
``FUZZ_EXAMPLES=2500`` runs the 10,000 inputs the hardening issue asks for (about two minutes
there) and ``FUZZ_EXAMPLES=5000`` 20,000. Most of the time goes to parsing YAML in pure Python.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.cli import main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the generator's speed, not the product's
PROFILE = (Path(__file__).resolve().parents[1] / "audit" / "profiles" / "sandbox.yaml").read_text(
    encoding="utf-8"
)
PACK: dict[str, Any] = {
    "schema_version": 1,
    "pack": {
        "id": "fuzz-pack",
        "version": "1.0.0",
        "title": "Fuzz pack",
        "jurisdiction": "VN",
        "authority": "Example authority",
        "instrument": "Example instrument",
        "effective_date": "2025-01-01",
        "illustrative": True,
        "disclaimer": "Illustrative only.",
        "languages": ["en"],
    },
    "criteria": [
        {
            "id": "FZ-01",
            "title": "Paid fortune telling",
            "legal_reference": {"instrument": "Decree 147/2024/ND-CP", "article": "Art. 1"},
            "dsa_category": "SCAMS_AND_FRAUD",
            "modalities": ["text"],
            "trigger": "notice",
            "deadline": "PT24H",
            "threshold": 0.9,
            "confidence": 0.95,
            "slots": {"service": ["tarot reading", "palm reading"]},
            "templates": [{"id": "FZ-01-T1", "language": "en", "text": "Book a {service}, DM me"}],
            "controls": [{"id": "FZ-01-C1", "language": "en", "text": "History of {service}"}],
        }
    ],
}
TARGET = {"name": "sb", "base_url": "http://127.0.0.1:9", "rate_limit": 10, "concurrency": 2}
PLAN: dict[str, Any] = {
    "plan": {
        "name": "fuzz",
        "packs": ["pack.yaml"],
        "seed": 1,
        "targets": [TARGET],
        "sample": {"violating_per_criterion": 2, "controls_per_criterion": 1},
        "schedule": {"submission_window": "PT10M", "jitter": 0.5},
        "polling": {"requests": 5, "first": 0.01, "grace_polls": 1},
        "grace": 0.25,
        "time_scale": 1,
    }
}
PROFILE_PLAN: dict[str, Any] = {
    "plan": {
        "name": "fuzz-profile",
        "packs": ["pack.yaml"],
        "targets": [{"name": "pt", "base_url": "http://127.0.0.1:9", "profile": "profile.yaml"}],
        "sample": {"violating_per_criterion": 1, "controls_per_criterion": 0},
    }
}

# values that break things -------------------------------------------------------------------
ODD_STRINGS = [
    "",
    " ",
    "\n",
    "\x00",
    "\t\r",
    "..",
    "/",
    "~",
    "PT24H",
    "P1Y",
    "-PT5M",
    "PT0S",
    "P",
    "PT",
    "1 day",
    "P99999999999999999999D",
    "PT1.5H",
    "P1DT",
    "http://[",
    "http://x",
    "https://a b",
    "vn-superstition",
    "pack.yaml",
    "profile.yaml",
    "sandbox",
    "production",
    "a" * 300,
    "é" * 200,
    "\u202eevil",
    "{slot}",
    "{",
    "}",
    "{probe.text}",
    "$(rm -rf /)",
    "2024-13-45",
    "nan",
    "True",
    "null",
]
WEIRD: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 1_000_001, 2**31]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, 1e-300, 1e308, -0.0]),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=20),
    st.lists(st.sampled_from([1, "a", None]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "id", "x y", "1"]), st.integers(0, 3), max_size=3),
    st.recursive(st.none(), lambda inner: st.lists(inner, min_size=1, max_size=1), max_leaves=40),
)
UNKNOWN_KEYS = st.one_of(
    st.sampled_from(["extra", "Name", "target", "packs ", "id\n", "\u202ekey", "1"]),
    st.text(min_size=1, max_size=12),
)
SNIPPETS = [
    "\t",
    ": :",
    "[",
    "{",
    "]",
    "&a [*a]",
    "*undefined",
    "!!python/object/apply:os.system ['true']",
    "!!binary not-base64",
    "!!timestamp 2024-13-45",
    "%YAML 9.9\n---\n",
    "---\n---\n",
    "key: 1\nkey: 2\n",
    "? [a, b]\n: c\n",
    "\x00",
    "\ufeff",
    "'unterminated",
    '"\\xZZ"',
    "- - - -",
    "!!set {a, b}",
    "effective_date: 2024-02-30\n",
    "<<: *nothing",
    "@reserved",
    "`reserved",
]


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: mapping keys and list indexes."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += paths(value, (*prefix, index))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """The base document with one to four things broken."""
    doc: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(doc)))
        op = draw(st.sampled_from(["replace", "replace", "drop", "add", "wrap"]))
        if not path:
            doc = draw(WEIRD) if op == "replace" else doc
            continue
        parent = _parent(doc, path)
        if not isinstance(parent, dict | list):
            continue
        if op == "replace":
            parent[path[-1]] = draw(WEIRD)
        elif op == "drop":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(UNKNOWN_KEYS)] = draw(WEIRD)
        elif op == "add":
            parent.append(draw(WEIRD))
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return doc


@st.composite
def file_bytes(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A broken document as the bytes of a file: dumped, maybe spliced, maybe re-encoded."""
    doc = draw(mutated(base))
    text = yaml.dump(doc, Dumper=DUMPER, allow_unicode=draw(st.booleans()), sort_keys=False)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
    if draw(st.integers(0, 7)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1", "utf-8-sig", "cp1258"]))
    data = text.encode(encoding, "replace")
    if draw(st.integers(0, 15)) == 0:
        data = draw(st.binary(max_size=200))
    return data


# the check ----------------------------------------------------------------------------------
def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def check_input(folder: Path, plan: Path, fuzzed: Path) -> None:
    code, out, err = run_cli(
        ["--workspace", str(folder / "ws"), "run", "--plan", str(plan), "--detach"]
    )
    assert "Traceback" not in err + out
    if code == 0:
        said = [line for line in err.splitlines() if not line.startswith("warning: pack ")]
        assert out.startswith("run ") and not said, (out, err)
        return
    assert code == 2, (code, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    assert str(fuzzed) in err or str(plan) in err, f"the message names no file: {err}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "pack.yaml").write_text(yaml.safe_dump(PACK), encoding="utf-8")
    (root / "profile.yaml").write_text(PROFILE, encoding="utf-8")
    (root / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")
    (root / "plan-profile.yaml").write_text(yaml.safe_dump(PROFILE_PLAN), encoding="utf-8")
    return root


def test_the_bases_are_valid(folder: Path) -> None:
    for plan in ("plan.yaml", "plan-profile.yaml"):
        code, out, err = run_cli(
            ["--workspace", str(folder / "ws"), "run", "--plan", str(folder / plan), "--detach"]
        )
        # the bases plan tiny samples: the only thing said on stderr is the plan-time warning
        others = [line for line in err.splitlines() if not line.startswith("warning: pack ")]
        assert code == 0 and out.startswith("run ") and not others, (plan, out, err)


@FUZZ
@given(data=file_bytes(PLAN))
def test_fuzzed_plans(folder: Path, data: bytes) -> None:
    target = folder / "fuzzed-plan.yaml"
    target.write_bytes(data)
    check_input(folder, target, target)


@FUZZ
@given(data=file_bytes(PACK))
def test_fuzzed_packs(folder: Path, data: bytes) -> None:
    target = folder / "fuzzed-pack.yaml"
    target.write_bytes(data)
    plan = folder / "plan-for-pack.yaml"
    if not plan.exists():
        doc = copy.deepcopy(PLAN)
        doc["plan"]["packs"] = ["fuzzed-pack.yaml"]
        plan.write_text(yaml.safe_dump(doc), encoding="utf-8")
    check_input(folder, plan, target)


@FUZZ
@given(data=file_bytes(yaml.safe_load(PROFILE)))
def test_fuzzed_profiles(folder: Path, data: bytes) -> None:
    target = folder / "fuzzed-profile.yaml"
    target.write_bytes(data)
    plan = folder / "plan-for-profile.yaml"
    if not plan.exists():
        doc = copy.deepcopy(PROFILE_PLAN)
        doc["plan"]["targets"][0]["profile"] = "fuzzed-profile.yaml"
        plan.write_text(yaml.safe_dump(doc), encoding="utf-8")
    check_input(folder, plan, target)


@FUZZ
@given(
    kind=st.sampled_from(["plan", "pack", "profile"]),
    data=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)),
)
def test_random_bytes_in_place_of_any_file(folder: Path, kind: str, data: bytes) -> None:
    names = {
        "plan": "fuzzed-plan.yaml",
        "pack": "fuzzed-pack.yaml",
        "profile": "fuzzed-profile.yaml",
    }
    target = folder / names[kind]
    target.write_bytes(data)
    plans = {
        "plan": target,
        "pack": folder / "plan-for-pack.yaml",
        "profile": folder / "plan-for-profile.yaml",
    }
    if not plans[kind].exists():
        doc = copy.deepcopy(PLAN if kind == "pack" else PROFILE_PLAN)
        if kind == "pack":
            doc["plan"]["packs"] = ["fuzzed-pack.yaml"]
        else:
            doc["plan"]["targets"][0]["profile"] = "fuzzed-profile.yaml"
        plans[kind].write_text(yaml.safe_dump(doc), encoding="utf-8")
    check_input(folder, plans[kind], target)


BOMBS = {
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    + "plan: {name: *i}\n",
    "recursive alias": "plan: &p {name: x, packs: *p}\n",
    "deep nesting": "plan: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "deep mapping": "plan: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
    "long line": "plan: {name: " + "x" * 3_000_000 + "}\n",
    "many keys": "plan:\n" + "".join(f"  k{i}: {i}\n" for i in range(20_000)),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_yaml_bombs(folder: Path, name: str) -> None:
    target = folder / "bomb.yaml"
    target.write_text(BOMBS[name], encoding="utf-8")
    check_input(folder, target, target)


def test_a_huge_file_is_refused_before_it_is_read(folder: Path) -> None:
    target = folder / "huge.yaml"
    with target.open("wb") as handle:
        handle.write(b"plan:\n  name: huge\n  notes: '")
        handle.write(b"x" * (6 * 1024 * 1024))
        handle.write(b"'\n")
    code, _, err = run_cli(["run", "--plan", str(target), "--detach"])
    assert code == 2 and "too large" in err and str(target) in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_missing_or_folder(folder: Path, name: str) -> None:
    target = folder / name
    check_input(folder, target, target)


# known gaps: cross-file checks whose messages do not name the file ------------------------------
GAPS = {
    "unknown pack": ("packs: [no-such-pack]", "{plan}"),
    "production target": (
        "targets: [{name: sb, base_url: 'http://x', environment: production}]",
        "{plan}",
    ),
    "unknown criterion": ("criteria: [NOPE]", "{plan}"),
    "missing token variable": (
        "targets: [{name: sb, base_url: 'http://x', token_env: PA_SURELY_UNSET_VARIABLE}]",
        "{plan}",
    ),
    "profile needs a secret": (
        "targets: [{name: pt, base_url: 'http://x', profile: needs-token.yaml}]",
        "{plan}",
    ),
}


@pytest.mark.parametrize("gap", sorted(GAPS))
def test_cross_file_checks_name_the_plan_file(folder: Path, gap: str) -> None:
    profile = yaml.safe_load(PROFILE)
    profile["secrets"]["token"]["required"] = True
    (folder / "needs-token.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    line, _ = GAPS[gap]
    doc = copy.deepcopy(PLAN)
    doc["plan"].update(yaml.safe_load(line))
    plan = folder / f"gap-{gap.replace(' ', '-')}.yaml"
    plan.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, _, err = run_cli(
        ["--workspace", str(folder / "ws"), "run", "--plan", str(plan), "--detach"]
    )
    assert code == 2 and err.count("\n") == 1
    assert str(plan) in err, err
