"""pytest helpers: ``assert_parity`` fails with the first diverging layer and its errors."""

from __future__ import annotations

from parity.compare import DEFAULT_RTOL, ParityReport, compare


def assert_parity(torch_model, keras_model, x, *, rtol: float = DEFAULT_RTOL) -> ParityReport:
    """Assert that the two models agree layer by layer on ``x`` (float32 NCHW); returns the report."""
    report = compare(torch_model, keras_model, x, rtol=rtol)
    if not report.ok:
        raise AssertionError(f"{report.verdict()}\n\n{report}")
    return report
