"""The public face: ``signalkit.__all__`` is what the package exports, and importing is cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import signalkit as sk

# Submodules that are public in their own right (documented: ``signalkit.events.read_jsonl``,
# ``signalkit.scoring.ActionRule``, ``signalkit.tokens.TokenSigner``, ``signalkit.testing``).
PUBLIC_SUBMODULES = {
    "analytics",
    "cli",
    "events",
    "exporters",
    "relay",
    "web",
    "scoring",
    "testing",
    "tokens",
}
INCLUDED_PRIVATE_MEMBERS = {"__version__"}

# What DESIGN.md §2 and docs/api.md promise users can type.
CONTRACT = {
    "Client",
    "configure",
    "recommendation",
    "exposure",
    "action",
    "correction",
    "toggle",
    "outcome",
    "feedback",
    "flush",
    "aflush",
    "shutdown",
    "verify",
    "stats",
    "current_exposure",
    "context",
    "Exposure",
    "Item",
    "Score",
    "ScoringPolicy",
    "DEFAULT_POLICY",
    "rescore",
    "score",
    "JsonlExporter",
    "ConsoleExporter",
    "MemoryExporter",
    "HttpExporter",
    "OtelExporter",
    "Exporter",
    "ExportResult",
    "InvalidToken",
    "InvalidEvent",
    "ConfigError",
    "SignalkitError",
    "Event",
    "ExposureEvent",
    "ActionEvent",
    "CorrectionEvent",
    "ToggleEvent",
    "OutcomeEvent",
    "FeedbackEvent",
}


def test_every_name_in___all___is_exported() -> None:
    missing = [name for name in sk.__all__ if not hasattr(sk, name)]
    assert missing == []


def test___all___has_no_duplicates() -> None:
    assert len(sk.__all__) == len(set(sk.__all__))


def test_the_documented_contract_is_exported() -> None:
    assert sorted(CONTRACT - set(sk.__all__)) == []


def test_every_public_object_signalkit_defines_is_in___all__() -> None:
    leaked = sorted(
        name
        for name, value in vars(sk).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and (getattr(value, "__module__", None) or "").startswith("signalkit")
        and name not in sk.__all__
    )
    assert leaked == []


def test___all___matches_the_public_names_of_the_namespace() -> None:
    # like httpx's tests/test_exported_members.py ("@py_builtins"/"@pytest_ar" are what
    # pytest's assertion rewriting adds to modules of a pytest plugin such as signalkit's)
    public = {
        name
        for name, value in vars(sk).items()
        if (not name.startswith(("_", "@")) or name in INCLUDED_PRIVATE_MEMBERS)
        and not (isinstance(value, types.ModuleType) and name in PUBLIC_SUBMODULES)
    }
    assert sorted(public) == sorted(sk.__all__)


def test_exported_classes_and_functions_have_docstrings() -> None:
    undocumented = [
        name
        for name in sk.__all__
        if (inspect.isclass(getattr(sk, name)) or inspect.isfunction(getattr(sk, name)))
        and not inspect.getdoc(getattr(sk, name))
    ]
    assert undocumented == []


def test_exported_errors_share_a_base_class() -> None:
    for error in (sk.InvalidToken, sk.InvalidEvent, sk.ConfigError):
        assert issubclass(error, sk.SignalkitError)
        assert issubclass(error, ValueError)


def test_the_version_is_a_string() -> None:
    assert isinstance(sk.__version__, str)
    assert sk.__version__.count(".") >= 1


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(out.split())


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_import_signalkit_does_not_import_opentelemetry_or_httpx() -> None:
    tops = _tops(_modules_after("import signalkit"))
    assert "signalkit" in tops
    assert "opentelemetry" not in tops
    assert "httpx" not in tops


def test_recording_events_does_not_import_opentelemetry_or_httpx() -> None:
    code = (
        "import signalkit as sk\n"
        "c = sk.Client('svc', exporters=[sk.MemoryExporter()], secret='s' * 32)\n"
        "with c.exposure('s') as exp:\n"
        "    pass\n"
        "c.action(exp.token, 'accepted')\n"
        "c.flush(5)\n"
        "c.shutdown(5)\n"
    )
    tops = _tops(_modules_after(code))
    assert "opentelemetry" not in tops
    assert "httpx" not in tops


def test_import_signalkit_starts_no_thread() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import threading, signalkit\n"
            "c = signalkit.Client('svc', exporters=[signalkit.MemoryExporter()])\n"
            "print(threading.active_count())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == "1"
