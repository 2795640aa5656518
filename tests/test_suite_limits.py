"""The suite ends within CI's 90 minutes even when a test hangs: each test has a time limit."""

CI_SECONDS = 5400


def test_every_test_has_a_time_limit_well_inside_ci(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is in the test extra: make install"
    limit = float(pytestconfig.getini("timeout") or 0)
    assert 0 < limit <= CI_SECONDS / 4, limit


def test_two_tiers_fast_for_make_test_everything_for_ci(pytestconfig):
    """`make test` is the fast tier (-m "not slow"); `make test-all`, what CI runs, is every test."""
    import re

    from tests.reference import ROOT

    assert any(m.startswith("slow:") for m in pytestconfig.getini("markers")), "the slow marker is registered"
    makefile = (ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^(test|test-all):[^\n]*\n\t([^\n]+)", makefile, re.M))
    assert recipes.keys() == {"test", "test-all"}, recipes
    assert recipes["test"].endswith('-m pytest -m "not slow"'), recipes["test"]
    assert recipes["test-all"].endswith("-m pytest"), recipes["test-all"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test-all" in ci, ci
